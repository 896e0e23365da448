import CortexCore
import Posix
import XCTest

/// What `wait` and `list` answer for tasks that ended before a restart, which the daemon holds
/// only as compact records (SPEC §13): the same as for a task it holds in memory.
final class CompactRecordAnswerTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func restart() {
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])
  }

  /// Before, a compact record's `wait` said no reason at all ("task-000001 failed (exit code 127)
  /// (ended …)"), where the same task held in memory said "(spawn_failed: command not found:
  /// /nonexistent/cmd)". The reason and its sentence now come from result.json, which keeps the
  /// sentence (`detail`) too.
  func testWaitAfterARestartSaysWhyATaskEndedAsBefore() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let ids = [
      c.ok(["submit", "-p", "--", "/nonexistent/cmd"]).out.trimmed,
      c.ok(["submit", "-p", "--timeout", "1s", "--", "sleep", "5"]).out.trimmed,
      c.ok(["submit", "-p", "--", "sh", "-c", "exit 3"]).out.trimmed,
    ]
    let before = c.run(["wait"] + ids)
    XCTAssertEqual(before.code, 1, before.err)
    let beforeJSON = try JSON.parse(Array(c.ok(["--json", "wait"] + ids, code: 1).out.utf8))
    XCTAssertTrue(before.err.contains("(spawn_failed: command not found: /nonexistent/cmd)"), before.err)
    XCTAssertTrue(before.err.contains("(timeout: ran longer than 1000 ms)"), before.err)
    restart()
    let after = c.run(["wait"] + ids)
    XCTAssertEqual(after.code, 1, after.err)
    let (was, now) = (before.err.split(separator: "\n"), after.err.split(separator: "\n"))
    XCTAssertEqual(was.count, ids.count, before.err)
    XCTAssertEqual(now.count, ids.count, after.err)
    for (b, a) in zip(was, now) {
      // The compact record adds when the task ended.
      XCTAssertTrue(a.hasPrefix(b + " (ended "), "after the restart: \(a)\nbefore: \(b)")
    }
    let afterJSON = try JSON.parse(Array(c.ok(["--json", "wait"] + ids, code: 1).out.utf8))
    for (b, a) in zip(beforeJSON["tasks"]?.array ?? [], afterJSON["tasks"]?.array ?? []) {
      for k in ["id", "state", "exit_code", "signal", "reason", "detail"] {
        XCTAssertEqual(a[k], b[k], "\(k) of \(a.encoded()) against \(b.encoded())")
      }
    }
  }
}
