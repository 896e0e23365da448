import CortexCore
import Posix
import XCTest

/// `--idempotency-key` across daemon lifetimes: a key the daemon has answered for keeps its task
/// through `cortex stop` / `start` and `cortex restart`, whether that task finished or not.
final class IdempotencyTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func submitted() -> [String] { c.events().filter { $0.type == "task.submitted" }.compactMap(\.taskID) }

  /// Found by a burst of keyed submits with `stop`/`start` in the middle: every key whose task had
  /// finished before the final snapshot got a second task after the start (the snapshot keeps
  /// only unfinished tasks' specs, so their keys were all recovery knew).
  func testAKeyKeepsItsTaskAfterStopStartAndRestartAlsoWhenTheTaskFinished() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    let done = c.ok(["submit", "-p", "--wait", "--idempotency-key", "k-done", "--shell", "true"]).out.trimmed
    // A paused queue holds the second one queued, so the snapshot carries its spec (and key).
    c.ok(["pause"])
    let queued = c.ok(["submit", "-p", "--idempotency-key", "k-queued", "--shell", "true"]).out.trimmed
    XCTAssertEqual(c.ok(["submit", "-p", "--idempotency-key", "k-done", "--shell", "true"]).out.trimmed, done)

    c.ok(["stop"])
    c.ok(["start", "--workers", "2"])
    XCTAssertEqual(
      c.ok(["submit", "-p", "--idempotency-key", "k-done", "--shell", "true"]).out.trimmed, done,
      "after stop and start, the key of a finished task named a new task")
    XCTAssertEqual(c.ok(["submit", "-p", "--idempotency-key", "k-queued", "--shell", "true"]).out.trimmed, queued)

    c.ok(["restart"])
    XCTAssertEqual(
      c.ok(["submit", "-p", "--idempotency-key", "k-done", "--shell", "true"]).out.trimmed, done,
      "after a restart, the key of a finished task named a new task")
    XCTAssertEqual(c.ok(["submit", "-p", "--idempotency-key", "k-queued", "--shell", "true"]).out.trimmed, queued)
    XCTAssertEqual(submitted(), [done, queued], "each key must be exactly one task")

    c.ok(["resume"])
    c.ok(["wait", queued])
  }
}
