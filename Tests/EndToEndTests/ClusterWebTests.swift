import CortexCore
import Posix
import XCTest

/// Issue 14 item 6: in cluster mode the pages (and their API) of any node show every node.
final class ClusterWebTests: ClusterTestCase {
  /// GET `path` on `node`'s web view with its token; the answer's JSON (nil unless 200).
  func api(_ node: Cortex, _ path: String) throws -> JSON? {
    guard let port = node.webPort else { return nil }
    let a = try RawHTTP(port: port).get(path, headers: ["Authorization: Bearer \(node.webToken)"])
    return a.status == 200 ? try JSON.parse(Array(a.body.utf8)) : nil
  }

  func testNodeAsPagesShowNodeBAndTheTasksThatRanOnB() throws {
    // B alone first: what is submitted now can only run on B.
    let b = try startNode("b", workers: 2, leaseS: 5, budget: 1_000_000)
    let done = b.ok(["submit", "-p", "--description", "ran on b", "--synthetic", "10:5"]).out.trimmed
    XCTAssertEqual(b.run(["wait", done], timeoutS: 30).code, 0)
    let long = b.ok(["submit", "-p", "--description", "runs on b", "--synthetic", "600000:5"]).out.trimmed
    b.eventually("\(long) running on b") {
      sql("SELECT coalesce(node, '') FROM cortex_task WHERE id = \(TaskID.parse(long)!) AND state = 'running'") == "b"
    }
    let a = try startNode("a", workers: 2, leaseS: 5, budget: 1_000_000)

    // /api/cluster and the status (pushed to the overview) on A list both nodes, B with its task.
    var cluster: JSON?
    try a.eventually("A's /api/cluster to show node b running \(long)") {
      cluster = try api(a, "/api/cluster")?["cluster"]
      let bRow = cluster?["nodes"]?.array?.first { $0["name"]?.string == "b" }
      return bRow?["tasks"]?.array?.contains { $0.string == long } == true && bRow?["running"]?.int == 1
        && cluster?["nodes"]?.array?.count == 2
    }
    XCTAssertEqual(cluster?["node"]?.string, "a")
    let bRow = cluster?["nodes"]?.array?.first { $0["name"]?.string == "b" }
    XCTAssertEqual(bRow?["state"]?.string, "alive")
    XCTAssertNotNil(bRow?["epoch"]?.int)
    XCTAssertGreaterThan(bRow?["lease_left_s"]?.double ?? 0, 0)
    XCTAssertEqual(bRow?["running"]?.int, 1)
    XCTAssertEqual(bRow?["workers"]?.int, 2)
    XCTAssertGreaterThanOrEqual(cluster?["tasks"]?["done"]?.int ?? 0, 1)
    let status = try api(a, "/api/status")
    XCTAssertEqual(status?["cluster"]?["nodes"]?.array?.map { $0["name"]?.string ?? "" }, ["a", "b"])

    // A's task list is the cluster's: both of B's tasks, each naming b.
    let list = try XCTUnwrap(try api(a, "/api/tasks?limit=50"))
    XCTAssertEqual(list["scope"]?.string, "cluster")
    let rows = list["tasks"]?.array ?? []
    for id in [done, long] {
      let row = rows.first { $0["id"]?.string == id }
      XCTAssertEqual(row?["node"]?.string, "b", "\(id) in A's task list: \(row.map { $0.encoded() } ?? "missing")")
    }
    XCTAssertEqual(rows.first { $0["id"]?.string == done }?["state"]?.string, "succeeded")
    // The task page of a task that ran on B, asked of A.
    let shown = try api(a, "/api/tasks/\(done)")?["task"]
    XCTAssertEqual(shown?["node"]?.string, "b")
    XCTAssertEqual(shown?["state"]?.string, "succeeded")
    // The same in a real browser: A's overview shows B and its task; A's task list names B.
    let python = WebBrowserTests.repo + "/.build/web-venv/bin/python"
    if !FileSystem.exists(python) || !FileSystem.exists("/usr/bin/chromedriver") {
      let (code, out) = try a.runProgram(["/bin/bash", WebBrowserTests.repo + "/scripts/web/install"], timeoutS: 600)
      XCTAssertEqual(code, 0, "scripts/web/install failed:\n\(out)")
    }
    let shots = Environment.get("CORTEX_WEB_SCREENSHOTS") ?? (a.scratch + "/shots")
    try FileSystem.makeDirectories(shots)
    let url = "http://127.0.0.1:\(try XCTUnwrap(a.webPort))/?token=\(a.webToken)"
    let (code, out) = try a.runProgram(
      [python, WebBrowserTests.repo + "/scripts/web/cluster-browser-test.py", url, "b", long, done, "1000000", shots], timeoutS: 120)
    XCTAssertEqual(code, 0, "cluster browser test failed:\n\(out)")

    // A single host has no cluster: /api/cluster says so.
    let single = try Cortex()
    nodes.append(single)
    try single.initialize()
    single.ok(["start", "--workers", "1"])
    let port = try XCTUnwrap(single.webPort)
    XCTAssertEqual(try RawHTTP(port: port).get("/api/cluster", headers: ["Authorization: Bearer \(single.webToken)"]).status, 404)
    XCTAssertNil(try api(single, "/api/status")?["cluster"])
  }
}
