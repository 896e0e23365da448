import CortexCore

/// The web view's own picture of the fleet, built by reading the decision log (the same lines
/// `jq` reads): tasks with their history, counters and histograms for `/metrics`, per-second
/// series for the charts, and the most recent events for replay. Owned by the web thread only;
/// the daemon's loop never waits on it.
final class FleetModel {
  /// Tasks kept in memory; past this the oldest finished ones are forgotten (the API then says
  /// so, and `cortex show` still answers from the task's files).
  static let defaultMaxTasks = 200_000
  static let ringCapacity = 5_000
  /// `defaultMaxTasks`, smaller in tests.
  let maxTasks: Int

  init(maxTasks: Int = FleetModel.defaultMaxTasks) { self.maxTasks = maxTasks }

  /// Tasks in submission order (increasing numbers), and where each one is.
  private(set) var rows: [TaskRow] = []
  private var position: [Int: Int] = [:]

  func task(_ n: Int) -> TaskRow? { position[n].map { rows[$0] } }
  var taskCount: Int { rows.count }
  var lastSeq: UInt64 = 0
  /// The seq of the last event that changed a task's row (a followed list is sent again after it).
  private(set) var taskChangeSeq: UInt64 = 0
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

  /// The scanner's field table, reused from line to line.
  private var scratch: LogLine.Fields = []

  /// Applies one log line; returns the parsed summary for the stream's filters (nil: not an event).
  /// `fullParse`: read it as the unusual events are (tests compare the two).
  @discardableResult
  func apply(line: ArraySlice<UInt8>, fullParse: Bool = false) -> RingEvent? {
    // The frequent events are read with the scanner (a task's spec with SpecSummary); everything
    // else is parsed in full.
    let scanned = LogLine(bytes: line, reusing: &scratch)
    defer { scratch = scanned.release() }
    if !fullParse, scanned.flat, let t = scanned.string("type"), LogLine.flatTypes.contains(t), let s = scanned.int("seq") {
      if t == "task.submitted" || t == "task.edited", let b = scanned.value("spec") {
        if let spec = SpecSummary.read(b) { return apply(scanned, type: t, seq: s, spec: spec, line: line) }
      } else {
        return apply(scanned, type: t, seq: s, spec: nil, line: line)
      }
    }
    guard let j = try? JSON.parse(line), let t = j["type"]?.string, let s = j["seq"]?.int else { return nil }
    let spec = t == "task.submitted" || t == "task.edited" ? j["spec"].map(SpecSummary.init(json:)) : nil
    return apply(ParsedEvent(json: j), type: t, seq: s, spec: spec, line: line)
  }

  /// The rest of `apply(line:)`, for either reader (one copy of it for each: no enum to copy the
  /// reader out of, which cost a retain and a release of the line at every field read).
  private func apply<E: EventFields>(_ v: E, type: String, seq seqV: Int64, spec: SpecSummary?, line: ArraySlice<UInt8>) -> RingEvent {
    linesRead += 1
    let seq = UInt64(max(0, seqV))
    if seq > lastSeq { lastSeq = seq }
    let ts = v.timestamp("ts") ?? 0
    let n = v.task
    let worker = v.worker
    let ev: RingEvent
    if ring.count < Self.ringCapacity {
      ev = RingEvent(seq: seq, type: type, task: n, line: Array(line))
      ring.append(ev)
    } else {
      // The oldest slot's bytes are reused (an allocation and a free per event less): the event
      // it held left the streams' batch long ago; if something still holds it, the array copies.
      ring[ringHead].seq = seq
      ring[ringHead].type = type
      ring[ringHead].task = n
      ring[ringHead].line.removeAll(keepingCapacity: true)
      ring[ringHead].line.append(contentsOf: line)
      ev = ring[ringHead]
      ringHead = (ringHead + 1) % Self.ringCapacity
    }
    if type == "task.rejected" {
      metrics.finished(outcome: "rejected", count: Int(v.int("count") ?? 1), tsMs: ts, latencyMs: nil)
    }
    guard let n, type.hasPrefix("task.") || type.hasPrefix("budget.") else { return ev }
    let at = position[n] ?? newRow(n)
    taskChangeSeq = max(taskChangeSeq, seq)
    apply(type, v, spec: spec, ts: ts, seq: seq, worker: worker, to: &rows[at])
    return ev
  }

  private func apply<E: EventFields>(
    _ type: String, _ v: E, spec: SpecSummary?, ts: Int64, seq: UInt64, worker: Int?, to row: inout TaskRow
  ) {
    row.record(TaskRow.Step(seq: seq, tsMs: ts, type: type, reason: v.string("reason"), worker: worker))
    if let a = v.int("attempt") { row.attempt = Int(a) }
    switch type {
    case "task.submitted":
      row.submittedMs = ts
      row.queuedMs = ts
      row.state = .queued
      if let p = v.string("priority") { row.priority = p }
      if let b = v.int("token_budget") { row.tokenBudget = Int(b) }
      if let m = v.int("max_attempts") { row.maxAttempts = Int(m) }
      take(spec, into: &row)
    case "task.edited":
      // cortex edit (or the task page's priority control): the new spec, priority included.
      if let p = spec?.priority { row.priority = p }
      take(spec, into: &row)
    case "task.assigned":
      row.state = .assigned
      row.worker = worker
    case "task.started":
      row.state = .running
      // Logged at a re-adoption, it carries the worker's own start (and a terminal event the
      // worker's end, `ended_ms`, for a task that ended while no daemon ran).
      row.startedMs = v.int("started_ms") ?? ts
      if let w = worker { row.worker = w }
      if let q = row.queuedMs { metrics.queueWait.observe(Double(ts - q) / 1000) }
    case "task.progress":
      if let t = v.int("tokens_used") { row.tokensUsed = Int(t) }
      if let p = v.double("progress") { row.progress = p }
    case "task.retrying":
      row.state = .queued
      row.queuedMs = ts
      row.worker = nil
      row.reason = v.string("reason")
    case "task.succeeded", "task.failed", "task.cancelled", "task.timed_out":
      let outcome = String(type.dropFirst(5))
      row.state = TaskState(rawValue: outcome) ?? row.state
      let end = v.int("ended_ms") ?? ts
      row.endedMs = end
      row.reason = v.string("reason")
      if let t = v.int("tokens_used") { row.tokensUsed = Int(t) }
      if let c = v.int("exit_code") { row.exitCode = Int(c) }
      if let s = row.startedMs, type != "task.cancelled" || v.has("duration_ms") { metrics.run.observe(Double(end - s) / 1000) }
      metrics.finished(outcome: outcome, count: 1, tsMs: ts, latencyMs: row.submittedMs.map { ts - $0 })
    default: break
    }
  }

  /// A task's spec (from task.submitted or task.edited), and what the list shows and searches of it.
  private func take(_ spec: SpecSummary?, into row: inout TaskRow) {
    if let spec {
      row.specBytes = spec.bytes
      row.type = spec.type
      row.title = spec.title
      row.labels = spec.labels
    }
    row.search = Array(
      ([TaskID.format(row.number), row.title, row.type ?? ""] + row.labels.map { "\($0.0)=\($0.1)" }).joined(separator: " ")
        .lowercased().utf8)
  }

  /// Appends a row for task `n` (they arrive in increasing order); returns its position.
  private func newRow(_ n: Int) -> Int {
    if rows.count >= maxTasks { evict() }
    rows.append(TaskRow(number: n))
    position[n] = rows.count - 1
    return rows.count - 1
  }

  /// Forgets the oldest finished tasks, a quarter of the cap at a time, in place (the rows kept
  /// are moved, not copied), and rebuilds the index. A pass at the cap costs the web thread a few
  /// tenths of a second, so it comes every 50,000 new tasks, not every 20,000 (docs/bench/web.md,
  /// fifth round).
  private func evict() {
    var dropped = 0
    let limit = maxTasks / 4
    // Front to back, each row once: the oldest finished ones go first.
    rows.removeAll { r in
      guard dropped < limit, r.state.isTerminal else { return false }
      dropped += 1
      return true
    }
    position.removeAll(keepingCapacity: true)
    for (i, r) in rows.enumerated() { position[r.number] = i }
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

  /// Newest first; returns the page and how many match in all. Reads the rows in place (no copy
  /// of a row unless it is on the page): 100,000 tasks are a few milliseconds.
  func query(_ q: TaskQuery) -> (rows: [TaskRow], total: Int) {
    var page: [TaskRow] = []
    let noFilter = q.state == nil && q.type == nil && q.priority == nil && q.label == nil && (q.text ?? "").isEmpty
    if noFilter {
      let end = rows.count - q.offset
      var i = end - 1
      while i >= 0 && i >= end - q.limit {
        page.append(rows[i])
        i -= 1
      }
      return (page, rows.count)
    }
    let text = Array((q.text ?? "").lowercased().utf8)
    let needle = Needle(text)
    let wanted = q.state.flatMap { TaskState(rawValue: $0) }
    var total = 0
    rows.withUnsafeBufferPointer { all in
      var i = all.count - 1
      while i >= 0 {
        defer { i -= 1 }
        let st = all[i].state
        if let s = q.state {
          switch s {
          case "active": if st.isTerminal { continue }
          case "done": if !st.isTerminal { continue }
          default: if st != wanted { continue }
          }
        }
        if let ty = q.type, all[i].type != ty { continue }
        if let p = q.priority, all[i].priority != p { continue }
        if let (k, v) = q.label {
          guard let have = all[i].labels.first(where: { $0.0 == k }) else { continue }
          if let v, have.1 != v { continue }
        }
        if !text.isEmpty && !needle.found(in: all[i].search) { continue }
        if total >= q.offset && page.count < q.limit { page.append(all[i]) }
        total += 1
      }
    }
    return (page, total)
  }

  /// Byte substring search (the search text is lower-cased UTF-8, like `needle`).
  static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool { Needle(needle).found(in: hay) }

  /// A search text and its Knuth-Morris-Pratt table, made once per query: each row's text is
  /// then read once. The byte-by-byte search compared up to the whole needle at every position:
  /// an 8 KB `q` against five tasks with 60 KB descriptions held the web thread 28 s (debug build).
  struct Needle {
    let bytes: [UInt8]
    /// `next[k]`: the length of the longest proper prefix of `bytes[0...k]` that is also its suffix.
    let next: [Int]

    init(_ bytes: [UInt8]) {
      self.bytes = bytes
      var next = [Int](repeating: 0, count: bytes.count)
      var k = 0
      for i in bytes.indices.dropFirst() {
        while k > 0 && bytes[i] != bytes[k] { k = next[k - 1] }
        if bytes[i] == bytes[k] { k += 1 }
        next[i] = k
      }
      self.next = next
    }

    func found(in hay: [UInt8]) -> Bool {
      let n = bytes.count
      guard n > 0 else { return true }
      guard n <= hay.count else { return false }
      return hay.withUnsafeBufferPointer { h in
        bytes.withUnsafeBufferPointer { x in
          next.withUnsafeBufferPointer { f in
            var k = 0
            for c in h {
              while k > 0 && c != x[k] { k = f[k - 1] }
              if c == x[k] {
                k += 1
                if k == n { return true }
              }
            }
            return false
          }
        }
      }
    }
  }
}
