import CortexCore

/// The web view's own picture of the fleet, built by reading the decision log (the same lines
/// `jq` reads): tasks with their history, counters and histograms for `/metrics`, per-second
/// series for the charts, and the most recent events for replay. Owned by the web thread only;
/// the daemon's loop never waits on it.
final class FleetModel {
  /// Tasks kept in memory; past this the oldest finished ones are forgotten (the API then says
  /// so, and `cortex show` still answers from the task's files).
  static let maxTasks = 200_000
  static let ringCapacity = 5_000

  var tasks: [Int: TaskRow] = [:]
  /// Task numbers in submission order (increasing).
  var order: [Int] = []
  var lastSeq: UInt64 = 0
  var linesRead = 0

  /// The last events, raw, for replay to a new stream (`Last-Event-ID`, `since`).
  var ring: [RingEvent] = []
  var ringHead = 0

  var metrics = FleetMetrics()

  struct RingEvent {
    var seq: UInt64
    var type: String
    var task: Int?
    var line: [UInt8]
  }

  /// Applies one log line; returns the parsed summary for the stream's filters (nil: not an event).
  @discardableResult
  func apply(line: ArraySlice<UInt8>) -> RingEvent? {
    guard let v = try? JSON.parse(line), let type = v["type"]?.string, let seqV = v["seq"]?.int else { return nil }
    linesRead += 1
    let seq = UInt64(max(0, seqV))
    if seq > lastSeq { lastSeq = seq }
    let ts = v["ts"]?.string.flatMap(Timestamp.parse) ?? 0
    let n = v["task_id"]?.string.flatMap(TaskID.parse)
    let worker = v["worker_id"]?.string.flatMap(WorkerID.parse)
    let ev = RingEvent(seq: seq, type: type, task: n, line: Array(line))
    if ring.count < Self.ringCapacity {
      ring.append(ev)
    } else {
      ring[ringHead] = ev
      ringHead = (ringHead + 1) % Self.ringCapacity
    }
    if type == "task.rejected" {
      metrics.finished(outcome: "rejected", count: Int(v["count"]?.int ?? 1), tsMs: ts, latencyMs: nil)
    }
    guard let n, type.hasPrefix("task.") || type.hasPrefix("budget.") else { return ev }
    var row = tasks[n] ?? newRow(n)
    row.record(TaskRow.Step(seq: seq, tsMs: ts, type: type, reason: v["reason"]?.string, worker: worker))
    if let a = v["attempt"]?.int { row.attempt = Int(a) }
    switch type {
    case "task.submitted":
      row.submittedMs = ts
      row.queuedMs = ts
      row.state = .queued
      if let p = v["priority"]?.string { row.priority = p }
      if let b = v["token_budget"]?.int { row.tokenBudget = Int(b) }
      if let m = v["max_attempts"]?.int { row.maxAttempts = Int(m) }
      if let spec = v["spec"] {
        row.spec = spec
        row.type = spec["type"]?.string
        row.title = TaskRow.title(of: spec)
        row.labels = (spec["labels"]?.object ?? []).map { ($0.0, $0.1.string ?? $0.1.encoded()) }
      }
      row.search = ([TaskID.format(n), row.title, row.type ?? ""] + row.labels.map { "\($0.0)=\($0.1)" }).joined(separator: " ")
        .lowercased()
    case "task.assigned":
      row.state = .assigned
      row.worker = worker
    case "task.started":
      row.state = .running
      row.startedMs = ts
      if let w = worker { row.worker = w }
      if let q = row.queuedMs { metrics.queueWait.observe(Double(ts - q) / 1000) }
    case "task.progress":
      if let t = v["tokens_used"]?.int { row.tokensUsed = Int(t) }
      if let p = v["progress"]?.double { row.progress = p }
    case "task.retrying":
      row.state = .queued
      row.queuedMs = ts
      row.worker = nil
      row.reason = v["reason"]?.string
    case "task.succeeded", "task.failed", "task.cancelled", "task.timed_out":
      let outcome = String(type.dropFirst(5))
      row.state = TaskState(rawValue: outcome) ?? row.state
      row.endedMs = ts
      row.reason = v["reason"]?.string
      if let t = v["tokens_used"]?.int { row.tokensUsed = Int(t) }
      if let c = v["exit_code"]?.int { row.exitCode = Int(c) }
      if let s = row.startedMs, type != "task.cancelled" || v["duration_ms"] != nil { metrics.run.observe(Double(ts - s) / 1000) }
      metrics.finished(outcome: outcome, count: 1, tsMs: ts, latencyMs: row.submittedMs.map { ts - $0 })
    default: break
    }
    tasks[n] = row
    return ev
  }

  private func newRow(_ n: Int) -> TaskRow {
    if tasks.count >= Self.maxTasks { evict() }
    order.append(n)
    return TaskRow(number: n)
  }

  /// Forgets the oldest finished tasks (a tenth of the cap at a time).
  private func evict() {
    var dropped = 0
    var i = 0
    while i < order.count && dropped < Self.maxTasks / 10 {
      if let t = tasks[order[i]], t.state.isTerminal {
        tasks[order[i]] = nil
        dropped += 1
      }
      i += 1
    }
    order = order.filter { tasks[$0] != nil }
  }

  /// Events after `seq` still in the ring, oldest first.
  func events(after seq: UInt64) -> [RingEvent] {
    let ordered = ring.count < Self.ringCapacity ? ring : Array(ring[ringHead...] + ring[..<ringHead])
    guard let first = ordered.firstIndex(where: { $0.seq > seq }) else { return [] }
    return Array(ordered[first...])
  }

  // MARK: queries

  struct TaskQuery {
    var state: String?
    var type: String?
    var priority: String?
    var label: (String, String?)?
    var text: String?
    var offset = 0
    var limit = 50
  }

  /// Newest first; returns the page and how many match in all.
  func query(_ q: TaskQuery) -> (rows: [TaskRow], total: Int) {
    var rows: [TaskRow] = []
    var total = 0
    let text = q.text?.lowercased()
    var i = order.count - 1
    while i >= 0 {
      defer { i -= 1 }
      guard let t = tasks[order[i]] else { continue }
      if let s = q.state {
        switch s {
        case "active": if t.state.isTerminal { continue }
        case "done": if !t.state.isTerminal { continue }
        default: if t.state.rawValue != s { continue }
        }
      }
      if let ty = q.type, t.type != ty { continue }
      if let p = q.priority, t.priority != p { continue }
      if let (k, v) = q.label {
        guard let have = t.labels.first(where: { $0.0 == k }) else { continue }
        if let v, have.1 != v { continue }
      }
      if let text, !text.isEmpty, !t.search.contains(text) { continue }
      if total >= q.offset && rows.count < q.limit { rows.append(t) }
      total += 1
    }
    return (rows, total)
  }
}
