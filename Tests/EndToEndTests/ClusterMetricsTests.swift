import CortexCore
import Posix
import XCTest

/// Prometheus in cluster mode (docs/web.md, "/metrics"; docs/fleet.md, "Where to see it"): each
/// node exports its own gauges, every series labelled with the node, the same group gauges in
/// its `metrics.prom` and on `/metrics`; the cluster's are the sum over the nodes.
final class ClusterMetricsTests: ClusterTestCase {
  func metricsFile(_ c: Cortex) -> String {
    String(decoding: ((try? FileSystem.read(c.paths.metrics)) ?? nil) ?? [], as: UTF8.self)
  }

  func webMetrics(_ c: Cortex) -> String {
    guard let port = c.webPort, let r = try? RawHTTP(port: port).get("/metrics", headers: ["Authorization: Bearer \(c.webToken)"]),
      r.status == 200
    else { return "" }
    return r.body
  }

  /// The sample lines (not comments) of `text` whose metric name starts with `prefix`.
  func samples(_ text: String, _ prefix: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") && $0.hasPrefix(prefix) }
  }

  /// Found by comparing `cortex status` with the metrics of two nodes: `cortex status` counted a
  /// limited group's tasks in the whole cluster while `metrics.prom` counted the node's own,
  /// with no label saying which node (two nodes' files in one node_exporter textfile directory
  /// were duplicate series), and `/metrics` had no group gauges at all.
  func testEachNodesGroupGaugesAreItsOwnLabelledWithItInMetricsPromAndOnMetrics() throws {
    let a = try startNode("a", workers: 1)
    XCTAssertEqual(a.run(["group", "set", "api", "--parallel", "3"]).code, 0)
    let first = a.ok(["submit", "-p", "--no-env", "--group", "api", "--shell", "sleep 60"]).out.trimmed
    a.eventually("a runs the first api task") { sql("SELECT node FROM cortex_task WHERE state = 'running'") == "a" }
    // a has no worker free: a limited group's task is claimed only where it can start (b).
    let b = try startNode("b", workers: 1)
    let second = b.ok(["submit", "-p", "--no-env", "--group", "api", "--shell", "sleep 60"]).out.trimmed
    b.eventually("b runs the second api task") {
      sql("SELECT string_agg(node, ',' ORDER BY node) FROM cortex_task WHERE state = 'running'") == "a,b"
    }
    for (node, name) in [(a, "a"), (b, "b")] {
      node.eventually("\(name)'s metrics.prom and /metrics count its own api task") {
        samples(metricsFile(node), "cortex_group_running").contains(#"cortex_group_running{node="\#(name)",group="api"} 1"#)
          && samples(webMetrics(node), "cortex_group_running").contains(#"cortex_group_running{node="\#(name)",group="api"} 1"#)
      }
      let file = metricsFile(node)
      let web = webMetrics(node)
      // The same group gauges in both, the limit being the cluster's on every node.
      XCTAssertEqual(samples(file, "cortex_group_"), samples(web, "cortex_group_"), "metrics.prom:\n\(file)\n/metrics:\n\(web)")
      XCTAssertTrue(samples(file, "cortex_group_parallel").contains(#"cortex_group_parallel{node="\#(name)",group="api"} 3"#), file)
      XCTAssertEqual(samples(file, "cortex_queue_paused"), samples(web, "cortex_queue_paused"))
      // Every series names its node; none shows the node's placeholder budget.
      for (what, text) in [("metrics.prom", file), ("/metrics", web)] {
        let all = samples(text, "cortex_")
        XCTAssertFalse(all.isEmpty, what)
        for line in all { XCTAssertTrue(line.contains(#"node="\#(name)""#), "\(what) of \(name): \(line)") }
        XCTAssertFalse(text.contains("cortex_tokens{"), "\(what) of \(name) shows the placeholder budget")
      }
    }
    // `cortex status` on a shows the cluster's count: the sum of the nodes' gauges.
    a.eventually("a's status counts both api tasks") { a.ok(["status"]).out.contains("2/3") }
    a.ok(["cancel", first, second])
  }
}
