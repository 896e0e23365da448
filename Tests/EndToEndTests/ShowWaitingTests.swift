import CortexCore
import Posix
import XCTest

/// What `cortex show` says of a queued task that has not started: that it has not (not "attempt
/// 1 of 3"), and, when dependencies hold it, which ones and in what state they are (it said
/// only `waiting dependencies`). The same in `--json` (`not_started`, `waiting_on`).
final class ShowWaitingTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testShowNamesTheDependenciesThatHoldATaskWithTheirStates() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let first = c.ok(["submit", "-p", "--retries", "3", "--", "sleep", "30"]).out.trimmed
    c.eventually("\(first) runs") { c.events().contains { $0.type == "task.started" && $0.taskID == first } }
    let second = c.ok(["submit", "-p", "--after", first, "--", "true"]).out.trimmed
    let third = c.ok(["submit", "-p", "--retries", "2", "--after", "\(first),\(second)", "--", "true"]).out.trimmed

    try c.assertHeldByDependencies(third, [(first, "running"), (second, "queued")])

    // A task that runs has started: its attempt is counted, and nothing holds it.
    let running = c.ok(["show", first]).out
    XCTAssertTrue(running.contains("attempt         1 of "), running)
    XCTAssertFalse(running.contains("not started"), running)
    let runningJSON = try JSON.parse(Array(c.ok(["--json", "show", first]).out.utf8))
    XCTAssertNil(runningJSON["not_started"], runningJSON.encoded())
    XCTAssertNil(runningJSON["waiting_on"], runningJSON.encoded())

    // Once the first fails, the chain ends cancelled (dependency_failed): nothing waits any more.
    c.ok(["cancel", first])
    c.eventually("\(third) cancelled") { c.events().contains { $0.type == "task.cancelled" && $0.taskID == third } }
    let ended = try JSON.parse(Array(c.ok(["--json", "show", third]).out.utf8))
    XCTAssertEqual(ended["state"]?.string, "cancelled", ended.encoded())
    XCTAssertNil(ended["waiting_on"], ended.encoded())
    XCTAssertNil(ended["not_started"], ended.encoded())
    c.ok(["stop"])
  }
}

extension Cortex {
  /// `show ID` and `--json show ID` of a queued task that has not started and that the
  /// dependencies `held` (id, state) hold: both say it has not started and name each of them.
  func assertHeldByDependencies(_ id: String, _ held: [(String, String)], file: StaticString = #filePath, line: UInt = #line) throws {
    let shown = ok(["show", id], file: file, line: line).out
    let named = held.map { "\($0.0) (\($0.1))" }.joined(separator: ", ")
    XCTAssertTrue(shown.contains("state           queued\n"), shown, file: file, line: line)
    XCTAssertTrue(shown.contains("waiting         dependencies: \(named)\n"), shown, file: file, line: line)
    XCTAssertTrue(shown.contains("attempt         not started yet; "), shown, file: file, line: line)
    XCTAssertFalse(shown.contains(" 0 of "), shown, file: file, line: line)
    let json = try JSON.parse(Array(ok(["--json", "show", id], file: file, line: line).out.utf8))
    XCTAssertEqual(json["state"]?.string, "queued", json.encoded(), file: file, line: line)
    XCTAssertEqual(json["not_started"]?.bool, true, json.encoded(), file: file, line: line)
    XCTAssertEqual(json["waiting"]?.string, "dependencies", json.encoded(), file: file, line: line)
    let on = json["waiting_on"]?.array ?? []
    XCTAssertEqual(on.map { $0["id"]?.string ?? "" }, held.map(\.0), json.encoded(), file: file, line: line)
    XCTAssertEqual(on.map { $0["state"]?.string ?? "" }, held.map(\.1), json.encoded(), file: file, line: line)
  }
}
