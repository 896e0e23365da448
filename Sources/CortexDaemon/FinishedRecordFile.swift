public import CortexCore
public import Posix

/// `finished-tasks.bin`: the compact record of every finished task (`FinishedRecord`), at a fixed
/// offset per task number. The loop reads it (`show`, `wait` of old ids); the snapshot thread
/// writes records in batches and fdatasyncs before each snapshot, so a durable snapshot implies
/// durable records for every task it counts as finished; the lifecycle thread writes the records
/// of older logs when it seals their segments. Positional reads and writes on one descriptor are
/// safe from several threads.
public final class FinishedRecordFile: Sendable {
  public let path: String
  private let fd: FileDescriptor

  public init(path: String) throws(PosixError) {
    self.path = path
    fd = try FileDescriptor.open(path, [.readWrite, .create])
    if try fd.size() < FinishedRecord.headerSize { try fd.writeAll(FinishedRecord.header, at: 0) }
  }

  /// Writes records, one pwrite per run of consecutive task numbers. Not durable until `sync`.
  public func write(_ records: [(task: Int, record: FinishedRecord)]) throws(PosixError) {
    guard !records.isEmpty else { return }
    let sorted = records.sorted { $0.task < $1.task }
    var runStart = sorted[0].task
    var run: [UInt8] = []
    var last = runStart - 1
    for (n, r) in sorted {
      if n != last + 1 && n != last {
        try fd.writeAll(run, at: FinishedRecord.offset(runStart))
        run.removeAll(keepingCapacity: true)
        runStart = n
      }
      if n == last {
        // The same task twice in one batch (a cluster task run again): the later record wins.
        run.removeLast(FinishedRecord.size)
      }
      run.append(contentsOf: r.encoded())
      last = n
    }
    try fd.writeAll(run, at: FinishedRecord.offset(runStart))
  }

  public func sync() throws(PosixError) { try fd.fdatasync() }

  /// Task `n`'s record, or nil when it has none (not finished, or finished before records were
  /// kept and not backfilled yet).
  public func read(_ n: Int) -> FinishedRecord? {
    var b = [UInt8](repeating: 0, count: FinishedRecord.size)
    let got =
      (try? b.withUnsafeMutableBytes { p in Result { () throws(PosixError) in try fd.read(at: FinishedRecord.offset(n), into: p) } }.get())
      ?? 0
    guard got == FinishedRecord.size else { return nil }
    return FinishedRecord.decode(b[...])
  }

  public func close() { fd.close() }
}
