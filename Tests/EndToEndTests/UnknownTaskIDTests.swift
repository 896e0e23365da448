import CortexCore
import Posix
import XCTest

/// One rule for an id that names no task, on every command that takes task ids: exit 65 (bad
/// input, field `id`), with a message that names the id and, where the daemon or the hot state
/// knows it, the newest id. `cancel` and `kill` of an unknown id exited 1 while `show`, `wait`,
/// `log`, `retry`, `edit` and `tail --task` exited 65, and `tail --task` of a malformed id 64.
final class UnknownTaskIDTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testEveryCommandThatTakesATaskIDExits65NamingAnUnknownOne() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let newest = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    let ghost = "task-099999"
    let commands: [[String]] = [
      ["show", ghost], ["wait", ghost], ["wait", newest, ghost], ["log", ghost], ["log", "-f", ghost],
      ["cancel", ghost], ["cancel", newest, ghost], ["kill", ghost], ["retry", ghost], ["edit", ghost, "--priority", "high"],
      ["tail", "--task", ghost], ["tail", "-f", "--task", ghost], ["submit", "--after", ghost, "--", "true"],
    ]
    for args in commands {
      let r = c.run(args, timeoutS: 30)
      XCTAssertEqual(r.code, 65, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("unknown task \(ghost) (the newest is \(newest))"), "\(args): \(r.err)")
      let j = c.run(["--json"] + args, timeoutS: 30)
      XCTAssertEqual(j.code, 65, "--json \(args): \(j.err)")
      let v = try? JSON.parse(Array(j.out.utf8)[...])
      XCTAssertEqual(v?["code"]?.int, 65, "--json \(args): \(j.out)")
      XCTAssertTrue(v?["error"]?.string?.contains("unknown task \(ghost)") ?? false, "--json \(args): \(j.out)")
    }
    // A word that is no task id at all: 65 too, named.
    for args in [["show", "bogus"], ["cancel", "bogus"], ["kill", "bogus"], ["wait", "bogus"], ["retry", "bogus"], ["log", "bogus"]]
      + [["edit", "bogus", "--priority", "high"], ["tail", "--task", "bogus"], ["submit", "--after", "bogus", "--", "true"]]
    {
      let r = c.run(args, timeoutS: 30)
      XCTAssertEqual(r.code, 65, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("'bogus'") && r.err.contains("task id like task-000012"), "\(args): \(r.err)")
    }
    // Nothing was changed by any of them: one task, never retried, cancelled or edited.
    XCTAssertEqual(c.events().filter { $0.type == "task.submitted" }.count, 1)
    XCTAssertFalse(c.events().contains { ["task.edited", "task.cancelled"].contains($0.type ?? "") })
    // With the daemon stopped, the commands that read files still say so: `log -f` of a number
    // not given out waited 30 s for output that could never come, and `log` said "no output".
    c.ok(["stop"])
    for args in [["log", ghost], ["log", "-f", ghost], ["tail", "--task", ghost]] {
      let r = c.run(args, timeoutS: 30)
      XCTAssertEqual(r.code, 65, "\(args) with no daemon: \(r.err)")
      XCTAssertTrue(r.err.contains("unknown task \(ghost) (the newest is \(newest))"), "\(args) with no daemon: \(r.err)")
    }
  }
}
