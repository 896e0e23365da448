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

/// `cortex help submit` said `--sla DUR` meant "must start within DUR"; the daemon refuses a task
/// whose estimated wait plus run ends after the deadline, so a 500 ms SLA refused a task that a
/// free worker would have started at once. The help says what is checked.
final class NewUserSLATests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testTheSLAHelpSaysWhatAdmissionChecks() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    c.ok(["submit", "--wait", "--", "sleep", "1"])
    let r = c.ok(["submit", "--sla", "500ms", "--", "true"], code: 75)
    XCTAssertTrue(r.err.contains("sla_unmeetable") && r.err.contains("estimated to finish"), r.err)
    let help = c.ok(["help", "submit"]).out
    XCTAssertFalse(help.contains("must start within"), help)
    XCTAssertTrue(help.contains("--sla DUR                must be done within DUR"), help)
  }
}
