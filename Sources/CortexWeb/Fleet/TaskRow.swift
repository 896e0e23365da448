import CortexCore

/// What the web view knows about one task, built from its events in the decision log.
struct TaskRow {
  struct Step {
    var seq: UInt64
    var tsMs: Int64
    var type: String
    var reason: String?
    var worker: Int?
  }

  let number: Int
  var state: TaskState = .queued
  var type: String?
  var priority = "medium"
  var title = ""
  var labels: [(String, String)] = []
  /// The redacted spec as the log carries it, encoded: one allocation per task instead of a
  /// parsed tree (the daemon's RSS at the 200,000-task cap, specs with a description and two
  /// labels: 348 MB against 390 MB, one run each, not committed); only the task page needs it,
  /// and parses it then.
  var specBytes: [UInt8]?
  var submittedMs: Int64?
  /// When its current attempt was queued (submit or retry), for the queue-wait histogram.
  var queuedMs: Int64?
  var startedMs: Int64?
  var endedMs: Int64?
  var attempt = 1
  var maxAttempts = 1
  var worker: Int?
  var tokensUsed = 0
  var tokenBudget = 0
  var reason: String?
  var exitCode: Int?
  var progress: Double?
  var history: [Step] = []
  /// Lower-cased id, title and labels, for text search.
  var search: [UInt8] = []

  init(number: Int) { self.number = number }

  static let maxHistory = 64

  mutating func record(_ step: Step) {
    // A task's usual life is four steps (submitted, assigned, started, ended): one allocation.
    if history.isEmpty { history.reserveCapacity(4) }
    if history.count >= Self.maxHistory { history.remove(at: Self.maxHistory / 2) }
    history.append(step)
  }

  /// A one-line summary of what the task runs.
  static func title(of spec: JSON) -> String {
    if let d = spec["description"]?.string, !d.isEmpty { return d }
    if let c = spec["command"]?.array { return c.compactMap(\.string).joined(separator: " ") }
    if let s = spec["shell"]?.string { return s }
    if let s = spec["synthetic"] {
      return "synthetic \(s["duration_ms"]?.int ?? 0) ms, \(s["tokens"]?.int ?? 0) tokens"
    }
    return ""
  }

  func summaryJSON() -> JSON {
    var o: [(String, JSON)] = [
      ("id", .string(TaskID.format(number))), ("state", .string(state.rawValue)), ("priority", .string(priority)),
      ("title", .string(String(title.prefix(200)))), ("attempt", .int(Int64(attempt))),
    ]
    if let type { o.append(("type", .string(type))) }
    if !labels.isEmpty { o.append(("labels", .object(labels.map { ($0.0, .string($0.1)) }))) }
    if let worker { o.append(("worker_id", .string(WorkerID.format(worker)))) }
    if let submittedMs { o.append(("submitted_ms", .int(submittedMs))) }
    if let startedMs { o.append(("started_ms", .int(startedMs))) }
    if let endedMs { o.append(("ended_ms", .int(endedMs))) }
    o.append(("tokens_used", .int(Int64(tokensUsed))))
    if let reason { o.append(("reason", .string(reason))) }
    return .object(o)
  }

  func detailJSON() -> JSON {
    var o = summaryJSON().object ?? []
    o.append(("max_attempts", .int(Int64(maxAttempts))))
    o.append(("token_budget", .int(Int64(tokenBudget))))
    if let exitCode { o.append(("exit_code", .int(Int64(exitCode)))) }
    if let progress { o.append(("progress", .double(progress))) }
    if let s = submittedMs, let st = startedMs { o.append(("queue_wait_ms", .int(st - s))) }
    if let st = startedMs, let e = endedMs { o.append(("run_ms", .int(e - st))) }
    if let specBytes, let spec = try? JSON.parse(specBytes) { o.append(("spec", spec)) }
    o.append(
      (
        "history",
        .array(
          history.map { s in
            var h: [(String, JSON)] = [("seq", .int(Int64(s.seq))), ("ts_ms", .int(s.tsMs)), ("type", .string(s.type))]
            if let r = s.reason { h.append(("reason", .string(r))) }
            if let w = s.worker { h.append(("worker_id", .string(WorkerID.format(w)))) }
            return .object(h)
          })
      ))
    return .object(o)
  }
}
