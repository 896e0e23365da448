import CortexCore
import Posix
import XCTest

/// What a new user saw change about finished tasks once the daemon had been stopped and started.
final class NewUserRestartTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// `cortex show` of a task that ended before the last start (answered from its files) said
  /// `attempt 3 of 1` for a task given three attempts, and lost its description and priority:
  /// result.json holds neither, and the answer took nothing from the spec beside it.
  func testShowAfterARestartKeepsAttemptsDescriptionAndPriority() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(
      ["submit", "-p", "--wait", "--retries", "2", "--priority", "high", "-d", "always fails", "--shell", "exit 3"], code: 3
    ).out.trimmed
    let before = c.ok(["show", id]).out
    XCTAssertTrue(before.contains("attempt         3 of 3\n"), before)
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])
    let after = c.ok(["show", id]).out
    for row in ["attempt         3 of 3\n", "description     always fails\n", "priority        high\n", "reason          exit_code\n"] {
      XCTAssertTrue(after.contains(row), "no '\(row.trimmed)' after the restart:\n\(after)")
    }
  }
}
