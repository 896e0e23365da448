/// Certification of benchmark evidence: gates checked against a summary's observed values.
/// A metric missing from the summary is invalid evidence, never a pass and never a zero.
public struct Gate: Equatable, Sendable {
  public var metric: String
  public var op: String
  public var value: Double

  public static let ops = ["<=", ">=", "<", ">", "=="]

  /// `{"gates": [{"metric": "completion_pct", "op": ">=", "value": 100}, ...]}`
  public static func parse(_ v: JSON) throws(SpecError) -> [Gate] {
    guard let list = v["gates"]?.array else { throw SpecError("gates", "must be an array of {metric, op, value}") }
    var out: [Gate] = []
    for (i, g) in list.enumerated() {
      guard let m = g["metric"]?.string, !m.isEmpty else { throw SpecError("gates[\(i)].metric", "must be a non-empty string") }
      guard let op = g["op"]?.string, ops.contains(op) else {
        throw SpecError("gates[\(i)].op", "must be one of \(ops.joined(separator: " "))")
      }
      guard let value = g["value"]?.double else { throw SpecError("gates[\(i)].value", "must be a number") }
      out.append(Gate(metric: m, op: op, value: value))
    }
    return out
  }

  /// The observed value at a dotted path (`latency_ms.submit_ack.p99`); booleans count as 1/0.
  public static func lookup(_ summary: JSON, _ path: String) -> Double? {
    var v: JSON? = summary
    for part in path.split(separator: ".") { v = v?[String(part)] }
    if let b = v?.bool { return b ? 1 : 0 }
    return v?.double
  }

  public func holds(_ observed: Double) -> Bool {
    switch op {
    case "<=": observed <= value
    case ">=": observed >= value
    case "<": observed < value
    case ">": observed > value
    default: observed == value
    }
  }

  public struct Verdict: Sendable {
    public var passed: [String] = []
    public var failed: [String] = []
    public var missing: [String] = []
  }

  public static func evaluate(_ summary: JSON, _ gates: [Gate]) -> Verdict {
    var v = Verdict()
    for g in gates {
      guard let observed = lookup(summary, g.metric) else {
        v.missing.append("\(g.metric): missing from the summary (a missing metric is never a pass)")
        continue
      }
      let line = "\(g.metric) \(g.op) \(fmt(g.value)): observed \(fmt(observed))"
      if g.holds(observed) {
        v.passed.append(line)
      } else {
        let by = abs(observed - g.value)
        v.failed.append(line + ", off by \(fmt(by))" + (g.value != 0 ? " (\(fmt(by / abs(g.value) * 100))%)" : ""))
      }
    }
    return v
  }

  static func fmt(_ d: Double) -> String {
    guard d.isFinite, abs(d) < 1e12 else { return String(d) }
    return d == d.rounded() ? String(Int64(d)) : String(Double(Int64(d * 1000)) / 1000)
  }
}
