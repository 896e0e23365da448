import CortexCore

/// The query parameters of the read endpoints (docs/web.md): each is checked, and a value that is
/// not what the parameter takes is a 400 naming the parameter and the value, never a silent default.
extension WebServer {
  typealias Failure = HTTPRequestParser.Failure

  /// `GET /api/tasks`: the filters, the page (`offset`, `limit` 1–1000).
  func taskQuery(_ r: HTTPRequest) -> Result<FleetModel.TaskQuery, Failure> {
    var q = FleetModel.TaskQuery()
    func bad(_ m: String) -> Result<FleetModel.TaskQuery, Failure> { .failure(.init(status: 400, message: m)) }
    if let s = r.param("state"), !s.isEmpty {
      guard Request.listStates.contains(s) else {
        return bad("state: unknown state \(quoted(Self.shown(s))) (use \(Request.listStates.sorted().joined(separator: ", ")))")
      }
      q.state = s
    }
    if let s = r.param("type"), !s.isEmpty { q.type = s }
    if let s = r.param("priority"), !s.isEmpty {
      guard Priority(name: s) != nil else {
        return bad("priority: unknown priority \(quoted(Self.shown(s))) (use critical, high, medium, low)")
      }
      q.priority = s
    }
    if let s = r.param("label"), !s.isEmpty {
      let kv = s.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
      // A label always has a key: `=x` matched nothing, silently, as if no task had the label.
      guard !kv[0].isEmpty else { return bad("label: \(quoted(Self.shown(s))) has no key (use key or key=value)") }
      q.label = (kv[0], kv.count > 1 ? kv[1] : nil)
    }
    if let s = r.param("q"), !s.isEmpty { q.text = s }
    do {
      q.offset = try Self.number(r, "offset", 0...UInt64(Int.max)).map { Int($0) } ?? q.offset
      q.limit = try Self.number(r, "limit", 1...1000).map { Int($0) } ?? q.limit
    } catch { return .failure(error) }
    return .success(q)
  }

  /// `GET /api/events`: the filter, and where to replay from (`since`, or the browser's
  /// `Last-Event-ID`, which is ignored when it is not a seq).
  func streamQuery(_ r: HTTPRequest) -> Result<(StreamFilter, since: UInt64?), Failure> {
    var f = StreamFilter()
    do { try Self.filter(r, into: &f) } catch { return .failure(error) }
    do {
      f.status = try Self.flag(r, "status", default: false)
      f.events = try Self.flag(r, "events", default: true)
      f.batch = try Self.flag(r, "batch", default: false)
      f.newest = try Self.number(r, "newest", 1...100_000).map { Int($0) }
      let since = try Self.number(r, "since", 0...UInt64.max)
      // The browser's Last-Event-ID (on its own reconnect) is newer than the `since` in the URL it reuses.
      return .success((f, r.header("last-event-id").flatMap { UInt64($0) } ?? since))
    } catch { return .failure(error) }
  }

  /// `GET /api/events/recent`: the filter, how many (1–5,000, default 200), and after which seq.
  func recentQuery(_ r: HTTPRequest) -> Result<(StreamFilter, limit: Int, after: UInt64), Failure> {
    var f = StreamFilter()
    do {
      try Self.filter(r, into: &f)
      let limit = try Self.number(r, "limit", 1...5000) ?? 200
      let after = try Self.number(r, "after", 0...UInt64.max) ?? 0
      return .success((f, Int(limit), after))
    } catch { return .failure(error) }
  }

  /// `type` and `task`, shared by the stream and the recent events.
  static func filter(_ r: HTTPRequest, into f: inout StreamFilter) throws(Failure) {
    try f.setTypes(r.param("type") ?? "")
    if let tk = r.param("task"), !tk.isEmpty {
      guard let n = TaskID.parse(tk) else {
        throw Failure(status: 400, message: "task: \(quoted(shown(tk))) is not a task id like task-000012")
      }
      f.task = n
    }
  }

  /// A whole-number parameter within `range` (absent or empty: nil).
  static func number(_ r: HTTPRequest, _ name: String, _ range: ClosedRange<UInt64>) throws(Failure) -> UInt64? {
    guard let v = r.param(name), !v.isEmpty else { return nil }
    guard let n = UInt64(v), range.contains(n) else {
      let want = range.upperBound >= UInt64(Int.max) ? "≥ \(range.lowerBound)" : "from \(range.lowerBound) to \(range.upperBound)"
      throw Failure(status: 400, message: "\(name): \(quoted(shown(v))) is not a whole number \(want)")
    }
    return n
  }

  /// A `0`/`1` parameter (absent or empty: `default`).
  static func flag(_ r: HTTPRequest, _ name: String, default d: Bool) throws(Failure) -> Bool {
    guard let v = r.param(name), !v.isEmpty else { return d }
    guard v == "0" || v == "1" else { throw Failure(status: 400, message: "\(name): \(quoted(shown(v))) is not 0 or 1") }
    return v == "1"
  }
}
