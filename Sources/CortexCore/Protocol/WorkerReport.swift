/// A worker's account of itself (SPEC §14): who it is and where its current task stands. The
/// worker keeps it in memory and, before each report it sends, in its spool file
/// (`fifo/worker-NNN.spool`, one JSON line); it answers a new daemon's `adopt` with it (`hello`).
/// It holds the last task's outcome until a daemon has taken it: the next `run` (a daemon sends
/// one only to a worker whose previous task it has logged as done) or an adoption that settles it.
public struct WorkerReport: Equatable, Sendable {
  public var slot: Int
  public var pid: Int32
  /// The token the daemon gave this worker at spawn (`CORTEX_WORKER_TOKEN`).
  public var token: String
  /// The current task, or the last one while its outcome is held; nil when idle.
  public var task: Int?
  public var attempt = 0
  /// The task's process group (0 for synthetic tasks, which run inside the worker).
  public var taskPid: Int32 = 0
  public var startedMs: Int64 = 0
  public var tokensUsed = 0
  public var progress: Double?
  /// Set once the task ended; nil while it runs.
  public var outcome: TaskOutcome?
  /// The task ended after a daemon asked to stop it (cancel, timeout, budget, `cortex stop`). Why
  /// it asked is not in the log, so such an outcome is never accepted by a later daemon: the task
  /// is retried instead (docs/readopt.md).
  public var cancelled = false

  public init(slot: Int, pid: Int32, token: String) {
    self.slot = slot
    self.pid = pid
    self.token = token
  }

  public var running: Bool { task != nil && outcome == nil }

  /// The JSON object; `op` first when given (`"hello"` on the FIFO, nil in the spool).
  public func encodedLine(op: String?) -> [UInt8] {
    var w = JSONWriter(capacity: 256)
    w.beginObject()
    w.field("op", op)
    w.field("slot", slot)
    w.field("pid", pid)
    w.field("token", token)
    if let task {
      w.field("task", task)
      w.field("attempt", attempt)
      w.field("task_pid", taskPid)
      w.field("started", startedMs)
      w.field("tokens", tokensUsed)
      if let progress { w.field("progress", progress) }
    }
    if let o = outcome {
      w.key("outcome")
      w.beginObject()
      o.writeFields(into: &w)
      if cancelled { w.field("cancelled", true) }
      w.endObject()
    }
    w.endObject()
    w.bytes.append(10)
    return w.bytes
  }

  public static func decode(_ v: JSON) throws(SpecError) -> WorkerReport {
    guard let p = v["pid"]?.int, p > 0, p <= Int64(Int32.max) else { throw SpecError("pid", "missing or invalid") }
    guard let token = v["token"]?.string, !token.isEmpty, token.utf8.count <= 128 else {
      throw SpecError("token", "missing or invalid")
    }
    guard let sv = v["slot"] else { throw SpecError("slot", "missing") }
    var r = WorkerReport(slot: try Numbers.int("slot", sv, min: 1, max: 1024), pid: Int32(p), token: token)
    guard let tv = v["task"], !tv.isNull else { return r }
    r.task = try taskNumber(tv)
    r.attempt = try Numbers.int("attempt", v["attempt"] ?? .int(1), min: 1, max: 1_000_000)
    r.taskPid = Int32(try Numbers.int("task_pid", v["task_pid"] ?? .int(0), min: 0, max: Int(Int32.max)))
    r.startedMs = try timestamp("started", v["started"])
    if let tk = v["tokens"], !tk.isNull { r.tokensUsed = try Numbers.int("tokens", tk, min: 0, max: Numbers.maxTokens) }
    if let pv = v["progress"], !pv.isNull { r.progress = try Numbers.double("progress", pv, min: 0, max: 1) }
    if let o = v["outcome"], !o.isNull {
      r.outcome = try TaskOutcome.decode(o, task: r.task!, prefix: "outcome.")
      r.cancelled = o["cancelled"]?.bool == true
    }
    return r
  }
}
