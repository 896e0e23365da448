import CortexCore
import Posix
import XCTest

/// `cortex restart` after the daemon's program was removed from its path (an uninstall, or a
/// build directory cleaned): the exec failed, the daemon logged `restart_failed` and carried on,
/// but `cortex restart` waited out its whole timeout (60 s) and then said the daemon "did not come
/// back", while it ran on unchanged. It now says at once that the restart failed, and why.
final class NewUserRestartFailureTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testARestartWhoseExecFailsSaysSoAtOnce() throws {
    let copy = c.scratch + "/cortex-copy"
    try c.copyBinary(to: copy)
    try c.initialize()
    XCTAssertEqual(try c.start(program: copy, workers: 1), .exited(0))
    let id = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    c.eventually("the task runs") { c.ok(["list", "--state", "running"]).out.contains(id) }
    try FileSystem.remove(copy)
    let t0 = Clock.monotonicMs()
    let r = c.run(["restart", "--timeout", "30"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertLessThan(Clock.monotonicMs() - t0, 10_000, "restart said so at once, not after its timeout: \(r.err)")
    XCTAssertTrue(r.err.contains("could not restart: execve \(copy): No such file or directory; it carries on as it was"), r.err)
    // Nothing was lost: the same daemon answers, its task still runs.
    XCTAssertTrue(c.ok(["show", id]).out.contains("state           running"))
    XCTAssertTrue(c.events().contains { $0.type == "daemon.warning" && $0["reason"]?.string == "restart_failed" })
    c.ok(["cancel", id])
  }
}
