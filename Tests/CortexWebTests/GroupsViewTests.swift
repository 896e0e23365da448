import CortexCore
import XCTest

@testable import CortexWeb

/// The groups as `/api/groups` and the overview's card show them: each group's state, no limit
/// as null, and in cluster mode the cluster's counts, paused flag and limit for a held group.
final class GroupsViewTests: XCTestCase {
  func row(_ name: String, paused: Bool = false, parallel: Int64 = 0, running: Int64 = 0, queued: Int64 = 0) -> JSON {
    .object([
      ("name", .string(name)), ("paused", .bool(paused)), ("parallel", .int(parallel)), ("running", .int(running)),
      ("queued", .int(queued)), ("started", .int(0)),
    ])
  }

  func named(_ v: JSON, _ name: String) -> JSON? { v["groups"]?.array?.first { $0["name"]?.string == name } }

  func testStates() {
    let v = GroupsView.json(
      groups: [
        row("default"), row("full", parallel: 2, running: 2, queued: 5), row("room", parallel: 3, running: 1),
        row("held", paused: true, parallel: 1, running: 1),
      ], queuePaused: false, cluster: nil, clusterMode: false)
    XCTAssertEqual(named(v, "default")?["state"]?.string, "running")
    XCTAssertEqual(named(v, "default")?["parallel"], .null)
    XCTAssertEqual(named(v, "full")?["state"]?.string, "at_limit")
    XCTAssertEqual(named(v, "room")?["state"]?.string, "running")
    XCTAssertEqual(named(v, "room")?["parallel"]?.int, 3)
    XCTAssertEqual(named(v, "held")?["state"]?.string, "paused", "paused wins over at limit")
    XCTAssertEqual(v["shown"]?.bool, true)
    XCTAssertNil(v["cluster_groups"])
  }

  func testOnlyTheDefaultGroupUnheldIsNotShown() {
    let plain = GroupsView.json(groups: [row("default", running: 3)], queuePaused: true, cluster: nil, clusterMode: false)
    XCTAssertEqual(plain["shown"]?.bool, false)
    XCTAssertEqual(plain["queue_paused"]?.bool, true)
    let limited = GroupsView.json(groups: [row("default", parallel: 4)], queuePaused: false, cluster: nil, clusterMode: false)
    XCTAssertEqual(limited["shown"]?.bool, true)
  }

  func testClusterCountsDecideForAHeldGroup() {
    let held: [JSON] = [
      .object([("name", .string("slow")), ("paused", .bool(false)), ("parallel", .int(1)), ("running", .int(1)), ("queued", .int(2))]),
      .object([("name", .string("later")), ("paused", .bool(true)), ("parallel", .int(0)), ("running", .int(0)), ("queued", .int(3))]),
    ]
    let v = GroupsView.json(groups: [row("slow", parallel: 1)], queuePaused: false, cluster: held, clusterMode: true)
    XCTAssertEqual(named(v, "slow")?["state"]?.string, "at_limit", "this node runs none; the cluster runs its limit")
    XCTAssertEqual(named(v, "slow")?["running"]?.int, 0)
    XCTAssertEqual(named(v, "slow")?["cluster"]?["queued"]?.int, 2)
    // A group the cluster holds that this node has not followed yet is listed too.
    XCTAssertEqual(named(v, "later")?["state"]?.string, "paused")
    XCTAssertEqual(v["groups"]?.array?.map { $0["name"]?.string ?? "" }, ["later", "slow"])
    XCTAssertEqual(v["cluster_groups"]?.array?.count, 2)
    let unread = GroupsView.json(groups: [], queuePaused: false, cluster: nil, clusterMode: true)
    XCTAssertEqual(unread["cluster_groups"], .null)
  }

  func testParallel() {
    XCTAssertEqual(try GroupsView.parallel(.int(4)).get(), 4)
    XCTAssertEqual(try GroupsView.parallel(.null).get(), 0)
    for bad: JSON? in [nil, .int(-1), .double(1.5), .string("4"), .int(1_000_001)] {
      guard case .failure(let e) = GroupsView.parallel(bad) else { return XCTFail("\(String(describing: bad)) accepted") }
      XCTAssertEqual(e.field, "parallel")
    }
  }
}
