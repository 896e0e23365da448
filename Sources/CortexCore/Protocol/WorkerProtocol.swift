/// The newline-delimited JSON spoken over a worker's FIFOs. `.in` carries `DaemonToWorker`,
/// `.out` carries `WorkerToDaemon`. Task ids travel as numbers to keep messages small.
public enum DaemonToWorker: Equatable, Sendable {
  /// Run a task. `dir` is the task's directory; `budget` its reserved tokens; `maxOutput` the
  /// size past which its `output.log` is cut (0: no limit).
  case run(task: Int, attempt: Int, dir: String, budget: Int, spec: TaskSpec, maxOutput: Int = 0)
  /// Stop a task's process group: SIGTERM, then SIGKILL after `graceMs`.
  case cancel(task: Int, graceMs: Int)
  /// Finish (no task may be running) and exit.
  case exit
  /// A new daemon took over the FIFOs: answer with `hello` (SPEC §14).
  case adopt

  public func encodedLine() -> [UInt8] {
    var w = JSONWriter()
    w.beginObject()
    switch self {
    case .run(let task, let attempt, let dir, let budget, let spec, let maxOutput):
      w.field("op", "run")
      w.field("task", task)
      w.field("attempt", attempt)
      w.field("dir", dir)
      w.field("budget", budget)
      if maxOutput > 0 { w.field("max_output", maxOutput) }
      w.key("spec")
      spec.write(to: &w)
    case .cancel(let task, let graceMs):
      w.field("op", "cancel")
      w.field("task", task)
      w.field("grace_ms", graceMs)
    case .exit:
      w.field("op", "exit")
    case .adopt:
      w.field("op", "adopt")
    }
    w.endObject()
    w.bytes.append(10)
    return w.bytes
  }

  public static func decode(_ line: ArraySlice<UInt8>) throws(SpecError) -> DaemonToWorker {
    let v: JSON
    do { v = try JSON.parse(line) } catch { throw SpecError("message", error.description) }
    guard let op = v["op"]?.string else { throw SpecError("op", "missing") }
    switch op {
    case "run":
      guard let tv = v["task"], let av = v["attempt"], let d = v["dir"]?.string, let bv = v["budget"], let s = v["spec"]
      else { throw SpecError("run", "missing task, attempt, dir, budget or spec") }
      var maxOutput = 0
      if let m = v["max_output"] { maxOutput = try Numbers.int("max_output", m, min: 0, max: 1 << 50) }
      return .run(
        task: try taskNumber(tv), attempt: try Numbers.int("attempt", av, min: 1, max: 1_000_000), dir: d,
        budget: try Numbers.int("budget", bv, min: 0, max: Numbers.maxTokens), spec: try TaskSpec.decode(s),
        maxOutput: maxOutput)
    case "cancel":
      guard let tv = v["task"], let gv = v["grace_ms"] else { throw SpecError("cancel", "missing task or grace_ms") }
      return .cancel(task: try taskNumber(tv), graceMs: try Numbers.int("grace_ms", gv, min: 0, max: 86_400_000))
    case "exit": return .exit
    case "adopt": return .adopt
    default: throw SpecError("op", "unknown operation \(quoted(op))")
    }
  }
}

/// What a worker reports. Any message counts as a heartbeat.
public enum WorkerToDaemon: Equatable, Sendable {
  case ready(pid: Int32)
  case heartbeat
  /// A command task's process started (`pid` leads its process group); synthetic tasks send 0.
  case started(task: Int, pid: Int32, atMs: Int64)
  case progress(task: Int, tokensUsed: Int?, progress: Double?, message: String?)
  case done(TaskOutcome)
  /// The answer to `adopt`: who the worker is and where its task stands.
  case hello(WorkerReport)

  public func encodedLine() -> [UInt8] {
    if case .hello(let r) = self { return r.encodedLine(op: "hello") }
    var w = JSONWriter(capacity: 128)
    w.beginObject()
    switch self {
    case .ready(let pid):
      w.field("op", "ready")
      w.field("pid", pid)
    case .heartbeat:
      w.field("op", "hb")
    case .started(let task, let pid, let at):
      w.field("op", "started")
      w.field("task", task)
      w.field("pid", pid)
      w.field("at", at)
    case .progress(let task, let tokens, let progress, let message):
      w.field("op", "progress")
      w.field("task", task)
      w.field("tokens_used", tokens)
      if let progress { w.field("progress", progress) }
      w.field("message", message)
    case .done(let o):
      w.field("op", "done")
      w.field("task", o.task)
      o.writeFields(into: &w)
    case .hello: break
    }
    w.endObject()
    w.bytes.append(10)
    return w.bytes
  }

  public static func decode(_ line: ArraySlice<UInt8>) throws(SpecError) -> WorkerToDaemon {
    let v: JSON
    do { v = try JSON.parse(line) } catch { throw SpecError("message", error.description) }
    guard let op = v["op"]?.string else { throw SpecError("op", "missing") }
    switch op {
    case "ready":
      guard let p = v["pid"]?.int, p > 0, p <= Int64(Int32.max) else { throw SpecError("pid", "missing or invalid") }
      return .ready(pid: Int32(p))
    case "hb": return .heartbeat
    case "started":
      guard let tv = v["task"], let p = v["pid"]?.int, p >= 0, p <= Int64(Int32.max) else {
        throw SpecError("started", "missing task or pid")
      }
      return .started(task: try taskNumber(tv), pid: Int32(p), atMs: try timestamp("at", v["at"]))
    case "progress":
      guard let tv = v["task"] else { throw SpecError("task", "missing") }
      var tokens: Int? = nil
      if let tk = v["tokens_used"], !tk.isNull { tokens = try Numbers.int("tokens_used", tk, min: 0, max: Numbers.maxTokens) }
      var progress: Double? = nil
      if let pv = v["progress"], !pv.isNull { progress = try Numbers.double("progress", pv, min: 0, max: 1) }
      return .progress(task: try taskNumber(tv), tokensUsed: tokens, progress: progress, message: v["message"]?.string)
    case "done":
      guard let tv = v["task"] else { throw SpecError("task", "missing") }
      return .done(try TaskOutcome.decode(v, task: try taskNumber(tv)))
    case "hello": return .hello(try WorkerReport.decode(v))
    default: throw SpecError("op", "unknown operation \(quoted(op))")
    }
  }
}

/// A task number as carried on the FIFOs: 0 to 2^47.
extension TaskOutcome {
  /// The outcome's fields, as a `done` message and a worker's spool (`WorkerReport`) both carry
  /// them: one spelling, so a re-adopted outcome keeps everything a live one has.
  func writeFields(into w: inout JSONWriter) {
    w.field("exit", exitCode)
    w.field("signal", signal)
    w.field("tokens", tokensUsed)
    w.field("started", startedMs)
    w.field("ended", endedMs)
    w.field("error", error)
    w.field("reason", reason)
    if rateLimited { w.field("rate_limited", true) }
    w.field("retry_after_ms", retryAfterMs)
  }

  /// Reads what `writeFields` wrote; `prefix` names the fields in errors (`outcome.` in a spool).
  static func decode(_ v: JSON, task: Int, prefix: String = "") throws(SpecError) -> TaskOutcome {
    var tokens = 0
    if let tk = v["tokens"], !tk.isNull { tokens = try Numbers.int(prefix + "tokens", tk, min: 0, max: Numbers.maxTokens) }
    var o = TaskOutcome(
      task: task, exitCode: v["exit"]?.int.flatMap { Int32(exactly: $0) }, signal: v["signal"]?.int.flatMap { Int32(exactly: $0) },
      tokensUsed: tokens, startedMs: try timestamp(prefix + "started", v["started"]),
      endedMs: try timestamp(prefix + "ended", v["ended"]), error: v["error"]?.string)
    o.reason = v["reason"]?.string
    o.rateLimited = v["rate_limited"]?.bool == true
    if let r = v["retry_after_ms"], !r.isNull {
      o.retryAfterMs = Int64(try Numbers.int(prefix + "retry_after_ms", r, min: 0, max: 86_400_000))
    }
    return o
  }
}

func taskNumber(_ v: JSON) throws(SpecError) -> Int {
  try Numbers.int("task", v, min: 0, max: 1 << 47)
}

/// A wall-clock time in ms since the epoch; absent is 0.
func timestamp(_ field: String, _ v: JSON?) throws(SpecError) -> Int64 {
  guard let v, !v.isNull else { return 0 }
  return Int64(try Numbers.int(field, v, min: 0, max: Int(Numbers.maxTimestampMs)))
}

/// How one attempt of a task ended, as the worker saw it.
public struct TaskOutcome: Equatable, Sendable {
  public var task: Int
  public var exitCode: Int32?
  public var signal: Int32?
  public var tokensUsed: Int
  public var startedMs: Int64
  public var endedMs: Int64
  /// Set when the worker could not run the task at all (spawn failed) or a synthetic failure ("429").
  public var error: String?
  /// The task's own word for why it failed (report line `{"error": …, "reason": …}`); `error`
  /// is then its sentence.
  public var reason: String?
  /// The task said it was rate limited (report line `{"rate_limited": true}`), and how long the
  /// provider asked it to wait (`retry_after_s`).
  public var rateLimited = false
  public var retryAfterMs: Int64?

  public init(
    task: Int, exitCode: Int32?, signal: Int32?, tokensUsed: Int, startedMs: Int64, endedMs: Int64,
    error: String? = nil
  ) {
    self.task = task
    self.exitCode = exitCode
    self.signal = signal
    self.tokensUsed = tokensUsed
    self.startedMs = startedMs
    self.endedMs = endedMs
    self.error = error
  }

  public var succeeded: Bool { exitCode == 0 && signal == nil && error == nil }
}
