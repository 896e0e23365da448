import CortexCore
import Posix
import XCTest

/// `cortex edit ID -- CMD` ("run another command", its help says) of a queued agent task kept
/// the task's `agent`: the new command ran under the agent's runner, its output was read as
/// Claude Code's stream-json, and the task failed with agent_output_invalid. `--shell` left the
/// agent in the spec too (shown by `cortex show`, though not used).
final class NewUserEditTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testAnAgentTaskEditedToACommandRunsThatCommand() throws {
    let claude = try AgentTests.standIn(c.scratch + "/bin", "claude-replay", AgentTests.claudeOK)
    let dev: [(String, JSON)] = [
      ("agent", .string("claude")), ("token_budget", .int(100_000)), ("command", .array([.string(claude), .string("{description}")])),
    ]
    try c.initialize([("worker_types", .object([("dev", .object(dev))]))])
    c.ok(["start", "--workers", "1"])
    c.ok(["pause"])
    let command = c.ok(["submit", "-p", "--type", "dev", "-d", "Add README.md"]).out.trimmed
    let shell = c.ok(["submit", "-p", "--type", "dev", "-d", "Add README.md"]).out.trimmed
    c.ok(["edit", command, "--", "echo", "hello"])
    c.ok(["edit", shell, "--shell", "echo from the shell"])
    for id in [command, shell] {
      let spec = try JSON.parse(Array(c.ok(["--json", "show", id]).out.utf8))["spec"]
      XCTAssertNil(spec?["agent"], "\(id) keeps its agent: \(spec?.encoded() ?? "")")
    }
    c.ok(["resume"])
    let waited = c.run(["wait", command, shell], timeoutS: 30)
    XCTAssertEqual(waited.code, 0, waited.err)
    XCTAssertEqual(c.ok(["log", command]).out, "hello\n")
    XCTAssertEqual(c.ok(["log", shell]).out, "from the shell\n")
  }
}

extension NewUserEditTests {
  /// `cortex log -f` of a queued task cancelled before it ran ended with nothing said (without
  /// -f it says "has no output: it ended cancelled before it ran").
  func testFollowingATaskCancelledBeforeItRanSaysSo() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["pause"])
    let id = c.ok(["submit", "-p", "--", "echo", "hi"]).out.trimmed
    let follower = try c.background(["log", "-f", id])
    c.ok(["cancel", id])
    let r = c.collect(follower)
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertEqual(r.out, "")
    XCTAssertTrue(r.err.contains("\(id) has no output: it ended cancelled before it ran"), r.err)
    c.ok(["resume"])
  }
}
