import CortexCore
import Posix
import XCTest

/// Cluster mode as an operator runs it on two hosts: node `b` on a host of its own (a network
/// namespace, as in `ClusterPartitionTests`), reaching PostgreSQL over TCP; node `a` (and `c`)
/// on this side. Both "hosts" have the same host name, as hosts cloned from one image often do.
/// Needs root (`ip netns`).
final class ClusterHostsTests: ClusterTestCase {
  var net: NetworkNamespace!

  override func setUpWithError() throws {
    net = try NetworkNamespace()
    pg = try Postgres(tcpAddress: net.hostAddress, trustedNetwork: net.network)
    try Postgres.tool([Cortex.binary, "cluster", "migrate", "--postgres", pg.dsn])
  }

  override func tearDown() {
    try? net?.heal()
    super.tearDown()
    net?.remove()
  }

  /// GET `path` on `node`'s web view (on this side) with its token: status and JSON.
  func api(_ node: Cortex, _ path: String) throws -> (Int, JSON?) {
    let a = try RawHTTP(port: try XCTUnwrap(node.webPort)).get(path, headers: ["Authorization: Bearer \(node.webToken)"])
    return (a.status, try? JSON.parse(Array(a.body.utf8)))
  }

  /// Every host keeps the default `web.bind` (127.0.0.1), with one fixed port, as an operator
  /// copying one config.json to every host would. Node a cannot read b's 127.0.0.1 and must say
  /// so, naming the setting. It decided by host name: with equal names it asked its own
  /// loopback, met its own web view there, and said only "node b's web view answered HTTP 401".
  /// Node c, on a's loopback, is still read.
  func testAWebViewOnTheLoopbackOfAnotherHostIsNamedAsUnreadableWithTheSettingToChange() throws {
    let port = 30_000 + Int(Clock.monotonicNs() / 1000 % 20_000)
    let web = { (p: Int) -> [(String, JSON)] in [("web", .object([("bind", .string("127.0.0.1")), ("port", .int(Int64(p)))]))] }
    let b = try startNode("b", workers: 1, leaseS: 4, config: web(port), dsn: pg.tcpDSN, launcher: net.launcher)
    let ran = b.ok(["submit", "--no-env", "--shell", "echo on-b"]).out.trimmed
    XCTAssertEqual(b.run(["wait", ran], timeoutS: 30).code, 0)
    let a = try startNode("a", workers: 1, leaseS: 4, config: web(port), dsn: pg.tcpDSN)
    try startNode("c", workers: 1, leaseS: 4, config: web(0), dsn: pg.tcpDSN)

    var grids: [JSON] = []
    try a.eventually("A's status to say whether it reads node b's and node c's workers", timeoutS: 15) {
      grids = try api(a, "/api/status").1?["cluster"]?["workers"]?.array ?? []
      let b = grids.first { $0["node"]?.string == "b" }, c = grids.first { $0["node"]?.string == "c" }
      return b?["note"] != nil && c?["ok"]?.bool == true
    }
    let note = grids.first { $0["node"]?.string == "b" }?["note"]?.string ?? ""
    XCTAssertTrue(note.contains("127.0.0.1") && note.contains("cannot reach") && note.contains("\"bind\""), note)
    // The output of the task that ran on b: 502 with the same reason, at once.
    let asked = Clock.monotonicMs()
    let (status, answer) = try api(a, "/api/tasks/\(ran)/output")
    XCTAssertEqual(status, 502)
    XCTAssertTrue(answer?["error"]?.string?.contains("\"bind\"") == true, answer?.encoded() ?? "no answer")
    XCTAssertLessThan(Clock.monotonicMs() - asked, 1000)
  }
}
