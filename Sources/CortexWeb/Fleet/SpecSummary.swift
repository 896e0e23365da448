import CortexCore

/// What the web model keeps of a task's spec (`task.submitted`, `task.edited`): the task list's
/// type, title and labels, the priority an edit sets, and the spec's bytes for the task page.
/// `read` takes them from the spec's bytes with `LogLine`, without building a tree, when the spec
/// is plain (no escape in its top-level keys and strings, every label a string); what it cannot
/// read that way it parses in full, and the answer is the same as `init(json:)`'s
/// (`SpecSummaryTests`).
struct SpecSummary {
  var type: String
  var title: String
  var labels: [(String, String)]
  var priority: String?
  /// The spec encoded (from the log's bytes as they are, on the fast path: the daemon's encoder
  /// wrote them, so they parse to the same spec).
  var bytes: [UInt8]

  /// From a parsed spec, as `cortex list` names its type (TaskRecord.type): a spec without one
  /// runs a command or is synthetic.
  init(json spec: JSON) {
    type = spec["type"]?.string ?? (spec["synthetic"] != nil ? "synthetic" : "exec")
    title = TaskRow.title(of: spec)
    labels = (spec["labels"]?.object ?? []).map { ($0.0, $0.1.string ?? $0.1.encoded()) }
    priority = spec["priority"]?.string
    bytes = spec.encodedBytes()
  }

  private init(type: String, title: String, labels: [(String, String)], priority: String?, bytes: [UInt8]) {
    self.type = type
    self.title = title
    self.labels = labels
    self.priority = priority
    self.bytes = bytes
  }

  /// From a spec's bytes; nil when they are not JSON (as far as this reads them).
  static func read(_ b: ArraySlice<UInt8>) -> SpecSummary? {
    let l = LogLine(bytes: b)
    guard l.flat else { return (try? JSON.parse(b)).map(SpecSummary.init(json:)) }
    let type = l.string("type") ?? (l.valueStart("synthetic") != nil ? "synthetic" : "exec")
    guard let title = title(l), let labels = labels(l.value("labels")) else { return nil }
    return SpecSummary(type: type, title: title, labels: labels, priority: l.string("priority"), bytes: Array(b))
  }

  /// `TaskRow.title(of:)` of a plain spec.
  private static func title(_ l: LogLine) -> String? {
    if let d = l.string("description"), !d.isEmpty { return d }
    if let c = l.value("command"), c.first == 91 {
      guard let a = try? JSON.parse(c) else { return nil }
      return (a.array ?? []).compactMap(\.string).joined(separator: " ")
    }
    if let s = l.string("shell") { return s }
    if let s = l.value("synthetic") {
      var d: Int64 = 0
      var t: Int64 = 0
      if s.first == 123 {
        let o = LogLine(bytes: s)
        if o.flat {
          d = int(o, "duration_ms") ?? 0
          t = int(o, "tokens") ?? 0
        } else {
          guard let j = try? JSON.parse(s) else { return nil }
          d = j["duration_ms"]?.int ?? 0
          t = j["tokens"]?.int ?? 0
        }
      }
      return "synthetic \(d) ms, \(t) tokens"
    }
    return ""
  }

  /// An integer as `JSON.int` reads it (`5.0` is 5).
  private static func int(_ l: LogLine, _ key: StaticString) -> Int64? {
    if let i = l.int(key) { return i }
    return l.value(key).flatMap { try? JSON.parse($0) }?.int
  }

  /// A spec's labels: an object's string values as they are, any other value encoded.
  private static func labels(_ v: ArraySlice<UInt8>?) -> [(String, String)]? {
    guard let v, v.first == 123 else { return [] }
    let o = LogLine(bytes: v)
    if o.flat && o.fields.allSatisfy({ v[$0.value.lowerBound] == 34 }) {
      return o.fields.map {
        (
          String(decoding: v[$0.key], as: UTF8.self),
          String(decoding: v[($0.value.lowerBound + 1)..<($0.value.upperBound - 1)], as: UTF8.self)
        )
      }
    }
    guard let j = try? JSON.parse(v) else { return nil }
    return (j.object ?? []).map { ($0.0, $0.1.string ?? $0.1.encoded()) }
  }
}
