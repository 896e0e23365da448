import XCTest

@testable import CortexWeb

/// The events API's filter (`GET /api/events?type=…`): names and prefixes, matched by set
/// lookups, and a bounded list.
final class StreamFilterTests: XCTestCase {
  func filter(_ types: String) throws -> StreamFilter {
    var f = StreamFilter()
    try f.setTypes(types)
    return f
  }

  func testNamesAndPrefixesMatchAsBefore() throws {
    let f = try filter("task.succeeded,worker.,,daemon.started")
    XCTAssertTrue(f.matches(type: "task.succeeded", task: nil))
    XCTAssertFalse(f.matches(type: "task.failed", task: nil))
    XCTAssertTrue(f.matches(type: "worker.ready", task: nil))
    XCTAssertTrue(f.matches(type: "worker.pool.scaled", task: nil))
    XCTAssertFalse(f.matches(type: "workers", task: nil), "a prefix ends at a dot")
    XCTAssertFalse(f.matches(type: "daemon.started.late", task: nil), "a name is matched whole")
    XCTAssertTrue(try filter("task.sub.").matches(type: "task.sub.x", task: nil), "a prefix with several dots")
    XCTAssertTrue(try filter("").matches(type: "anything", task: nil), "no list: every type")
    var byTask = try filter("task.")
    byTask.task = 7
    XCTAssertTrue(byTask.matches(type: "task.started", task: 7))
    XCTAssertFalse(byTask.matches(type: "task.started", task: 8))
  }

  func testALongListIsRefusedNamingTheLimit() throws {
    let atLimit = (1...StreamFilter.maxTypes).map { "x.t\($0)" }.joined(separator: ",")
    XCTAssertTrue(try filter(atLimit).matches(type: "x.t64", task: nil))
    XCTAssertThrowsError(try filter(atLimit + ",task.")) {
      let e = $0 as? HTTPRequestParser.Failure
      XCTAssertEqual(e?.status, 400)
      XCTAssertEqual(e?.message.contains("at most 64"), true, e?.message ?? "")
      XCTAssertEqual(e?.message.contains("65 event types"), true, e?.message ?? "")
    }
  }
}
