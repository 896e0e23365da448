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

  /// The key map of `task-queue.json` (the daemon must be stopped, so it is the final one).
  func snapshotKeys(file: StaticString = #filePath, line: UInt = #line) throws -> [String: JSON] {
    let v = try JSON.parse(XCTUnwrap(FileSystem.read(c.paths.taskQueue), file: file, line: line))
    return Dictionary(uniqueKeysWithValues: try XCTUnwrap(v["idempotency"]?.object, file: file, line: line))
  }

  func keyed(_ key: String, _ work: [String], code: Int32 = 0) -> String {
    c.ok(["submit", "-p", "--idempotency-key", key] + work, code: code).out.trimmed
  }

  /// The key map grew with every key ever used. A key is now forgotten with its task's files
  /// (`cortex clean` here): the snapshot no longer lists it and it makes a new task; a key whose
  /// task `clean` did not select keeps its task. Forgetting is logged, so a `kill -9` before
  /// any snapshot forgets the same keys at the next start (snapshot + replay).
  func testCleanForgetsTheKeysOfTheTasksItCleansAlsoAfterAKill() throws {
    // Snapshots only when the daemon stops: the kill below leaves the forgetting to replay.
    try c.initialize([("snapshot_interval_s", .double(3600))])
    c.ok(["start", "--workers", "2"])
    let done = keyed("k-done", ["--wait", "--shell", "true"])
    let syn = keyed("k-syn", ["--wait", "--synthetic", "1"])
    let failed = keyed("k-failed", ["--wait", "--shell", "exit 3"], code: 3)
    c.ok(["stop"])
    var keys = try snapshotKeys()
    XCTAssertEqual(keys["k-done"]?.array?.first?.string, done, "a finished task's key is kept with its end time: \(keys)")
    XCTAssertNotNil(keys["k-done"]?.array?.last?.int, "\(keys)")

    c.ok(["start", "--workers", "2"])
    XCTAssertEqual(keyed("k-done", ["--shell", "true"]), done, "after a restart, the key was forgotten before its task")
    let clean = c.ok(["--json", "clean", "--state", "succeeded"])
    XCTAssertEqual(try JSON.parse(clean.out)["keys_forgotten"]?.int, 2, clean.out)
    XCTAssertTrue(
      c.events().contains { $0.type == "idempotency.forgotten" && $0["keys"]?.int == 2 && $0["state"]?.string == "succeeded" },
      "no idempotency.forgotten event")
    let pid = try XCTUnwrap(c.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the daemon (pid \(pid)) is gone") { !Processes.isAlive(pid) }

    c.ok(["start", "--workers", "2"])
    c.ok(["stop"])
    keys = try snapshotKeys()
    XCTAssertNil(keys["k-done"], "the cleaned task's key is still in the snapshot: \(keys)")
    XCTAssertNil(keys["k-syn"], "the cleaned synthetic task's key is still in the snapshot: \(keys)")
    XCTAssertEqual(keys["k-failed"]?.array?.first?.string, failed, "\(keys)")

    c.ok(["start", "--workers", "2"])
    let again = keyed("k-done", ["--shell", "true"])
    XCTAssertNotEqual(again, done, "a forgotten key must make a new task")
    XCTAssertNotEqual(keyed("k-syn", ["--synthetic", "1"]), syn, "a forgotten key must make a new task")
    XCTAssertEqual(keyed("k-failed", ["--shell", "true"]), failed, "clean --state succeeded forgot a failed task's key")
    XCTAssertEqual(keyed("k-done", ["--shell", "true"]), again, "the key must now name its new task")
    XCTAssertEqual(submitted().count, 5)
    c.ok(["wait", again])
  }

  /// `retention.task_days` forgets keys by itself, with the task files it removes.
  func testTaskDaysForgetsTheKeysOfTasksItCleans() throws {
    // 0.00002 days: 1.7 s, swept every second.
    try c.initialize([("retention", .object([("task_days", .double(0.00002))]))])
    c.ok(["start", "--workers", "2"])
    let first = keyed("k-old", ["--wait", "--shell", "true"])
    c.eventually("idempotency.forgotten by retention.task_days") {
      c.events().contains { $0.type == "idempotency.forgotten" && $0["reason"]?.string == "task_days" }
    }
    let second = keyed("k-old", ["--wait", "--shell", "true"])
    XCTAssertNotEqual(second, first, "a key forgotten by task_days must make a new task")
  }
}
