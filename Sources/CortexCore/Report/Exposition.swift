/// Prometheus text exposition shared by the daemon's `metrics.prom` and the web view's
/// `/metrics`, so that the two say the same thing in the same words (docs/web.md, "/metrics").
///
/// In cluster mode every series a node exports is its own, labelled `node="NAME"`: Prometheus
/// scrapes (or node_exporter reads) every node, and the cluster's figure is the sum over nodes
/// (`sum by (group) (cortex_group_running)`); a gauge that is a cluster-wide setting
/// (`cortex_group_parallel`, `cortex_group_paused`, `cortex_queue_paused`) has the same value on
/// every node (`max by (group)`). Without the label, two nodes' files in one textfile directory
/// were the same series twice.
public enum Exposition {
  /// The queue's and the groups' gauges and counters from the groups' rows as
  /// `Scheduler.groupsJSON` gives them (what `groups.json` holds), sorted by name.
  public static func groups(_ rows: [JSON], queuePaused: Bool) -> String {
    var text = "# HELP cortex_queue_paused Whether the whole queue is paused.\n# TYPE cortex_queue_paused gauge\n"
    text += "cortex_queue_paused \(queuePaused ? 1 : 0)\n"
    func metric(_ name: String, _ help: String, _ type: String, _ values: [(String, String)]) {
      text += "# HELP cortex_\(name) \(help)\n# TYPE cortex_\(name) \(type)\n"
      for (g, v) in values { text += "cortex_\(name){group=\"\(escaped(g))\"} \(v)\n" }
    }
    let named = rows.compactMap { r in r["name"]?.string.map { ($0, r) } }
    func each(_ value: (JSON) -> String?) -> [(String, String)] { named.compactMap { g, r in value(r).map { (g, $0) } } }
    metric("group_running", "Tasks of the group assigned or running.", "gauge", each { String($0["running"]?.int ?? 0) })
    metric("group_queued", "Tasks of the group queued.", "gauge", each { String($0["queued"]?.int ?? 0) })
    metric("group_parallel", "The group's parallel limit (0 = none).", "gauge", each { String($0["parallel"]?.int ?? 0) })
    metric("group_paused", "Whether the group is paused.", "gauge", each { $0["paused"]?.bool == true ? "1" : "0" })
    metric("group_started_total", "Tasks of the group started.", "counter", each { String($0["started"]?.int ?? 0) })
    metric(
      "group_rate_allowed_per_min", "Starts per minute the group's rate limit allows now (AIMD).", "gauge",
      each { $0["rate"]?["starts_per_min_allowed"]?.double.map(Numbers.text) })
    metric(
      "group_rate_limited_total", "Outcomes of the group's tasks reported as rate limited.", "counter",
      each { $0["rate"].map { String($0["rate_limited"]?.int ?? 0) } })
    return text
  }

  /// `text` with `node="NAME"` as the first label of every sample (comments unchanged).
  public static func labelled(_ text: String, node: String) -> String {
    let label = "node=\"\(escaped(node))\""
    var out = ""
    out.reserveCapacity(text.utf8.count + text.utf8.count / 4)
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      if line.isEmpty || line.hasPrefix("#") {
        out += line
      } else if let i = line.firstIndex(where: { $0 == "{" || $0 == " " }) {
        out += line[..<i]
        out += line[i] == "{" ? "{\(label)," + line[line.index(after: i)...] : "{\(label)}" + line[i...]
      } else {
        out += line
      }
      out += "\n"
    }
    out.removeLast()
    return out
  }

  /// A label value as the text format writes it: backslash, double quote and newline escaped.
  public static func escaped(_ v: String) -> String {
    guard v.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return v }
    var s = ""
    for c in v {
      switch c {
      case "\\": s += "\\\\"
      case "\"": s += "\\\""
      case "\n": s += "\\n"
      default: s.append(c)
      }
    }
    return s
  }
}
