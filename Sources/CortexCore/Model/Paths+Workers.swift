/// The per-slot files of re-adoption (SPEC §14), beside the slot's FIFOs.
extension Paths {
  /// Written by the daemon at spawn: the worker's pid, /proc start time and token.
  public func workerIdentity(_ slot: Int) -> String { fifo + "/" + WorkerID.format(slot) + ".id" }
  /// Written by the worker before each report it sends: its `WorkerReport`, one JSON line.
  public func workerSpool(_ slot: Int) -> String { fifo + "/" + WorkerID.format(slot) + ".spool" }
}
