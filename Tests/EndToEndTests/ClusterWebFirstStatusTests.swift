import CortexCore
import Posix
import XCTest

/// The first `/api/status` of a node in cluster mode answered `"cluster": null`: the web view
/// asks the cluster link for its snapshot, and the link reads it only once asked. The overview
/// drew that as a single host's. The first ask after ten quiet seconds answered the snapshot of
/// before the quiet spell. Both now wait briefly for the link's read; with nothing read (the
/// database gone since the start) the answer says so (docs/web.md, "Cluster mode").
final class ClusterWebFirstStatusTests: ClusterTestCase {
  func status(_ node: Cortex) throws -> JSON {
    let a = try RawHTTP(port: try XCTUnwrap(node.webPort)).get("/api/status", headers: ["Authorization: Bearer \(node.webToken)"])
    XCTAssertEqual(a.status, 200, a.body)
    return try JSON.parse(Array(a.body.utf8))
  }

  func testTheFirstStatusHasTheClusterAndTheFirstAfterAQuietSpellIsCurrent() throws {
    let a = try startNode("a", workers: 2, leaseS: 5)
    // The very first ask.
    let first = try status(a)["cluster"]
    XCTAssertEqual(first?["nodes"]?.array?.map { $0["name"]?.string ?? "" }, ["a"], first?.encoded() ?? "null")
    XCTAssertNil(first?["pending"], first?.encoded() ?? "null")

    // Nobody asks for more than the 10 s the link follows the snapshot after an ask; then a
    // task starts, and the next ask is the first after the quiet spell.
    sleepMs(11_000)
    let long = a.ok(["submit", "-p", "--no-env", "--", "sleep", "600"]).out.trimmed
    a.eventually("\(long) runs on a") { sql("SELECT state FROM cortex_task WHERE id = \(TaskID.parse(long)!)") == "running" }
    let after = try status(a)["cluster"]
    let row = after?["nodes"]?.array?.first { $0["name"]?.string == "a" }
    XCTAssertEqual(row?["tasks"]?.array?.map { $0.string ?? "" }, [long], after?.encoded() ?? "null")
    XCTAssertEqual(after?["tasks"]?["running"]?.int, 1, after?.encoded() ?? "null")
    a.ok(["cancel", long], timeoutS: 30)
  }

  func testAStatusBeforeAnythingCouldBeReadSaysSoInsteadOfNull() throws {
    let a = try startNode("a", workers: 1, leaseS: 30)
    pg.pause()
    let first = try XCTUnwrap(try status(a)["cluster"], "no cluster field")
    XCTAssertEqual(first["pending"]?.bool, true, first.encoded())
    XCTAssertEqual(first["node"]?.string, "a", first.encoded())
    XCTAssertEqual(first["nodes"]?.array?.count, 0, first.encoded())
    XCTAssertTrue(first["note"]?.string?.contains("not been read") == true, first.encoded())
    XCTAssertEqual(first["workers"]?.array?.first?["node"]?.string, "a", first.encoded())
    try pg.start()
    try a.eventually("the cluster's state once PostgreSQL is back") {
      try status(a)["cluster"]?["nodes"]?.array?.count == 1
    }
  }
}
