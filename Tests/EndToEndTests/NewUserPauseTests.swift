import CortexCore
import Posix
import XCTest

/// `cortex wait` and `submit --wait` on a task a pause holds blocked with no word, as if hung,
/// and `submit -v`/`show` promised a start "in about 1.67s". They say what it waits for.
final class NewUserPauseTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testAWaitOnAPausedTaskSaysWhatItWaitsFor() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["pause"])
    let first = c.ok(["submit", "-p", "--", "true"]).out.trimmed
    let second = c.ok(["submit", "-v", "--", "true"])
    XCTAssertTrue(second.err.contains("queued at position 2, held by a pause: it starts after cortex resume\n"), second.err)
    let id = second.out.trimmed
    XCTAssertTrue(c.ok(["show", id]).out.contains("estimated start after cortex resume (held by a pause)"))
    // The wait blocks (that is right: nothing starts); what it said by then is on its stderr.
    let errPath = c.scratch + "/wait.err"
    let e = try FileDescriptor.open(errPath, [.writeOnly, .create, .truncate])
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"]
    let pid = try Processes.spawn(
      [Cortex.binary, "--dir", c.root, "wait", first, id], environment: env, stdin: nil, stdout: nil, stderr: e, newProcessGroup: false)
    e.close()
    var waited = ""
    try c.eventually("wait names both tasks") {
      waited = String(decoding: (try FileSystem.read(errPath)) ?? [], as: UTF8.self)
      return waited.contains(id)
    }
    _ = Processes.signal(pid, Signal.kill)
    _ = Processes.wait(pid)
    XCTAssertTrue(waited.contains("cortex: \(first) is held by a pause: it starts after cortex resume\n"), waited)
    XCTAssertTrue(waited.contains("cortex: \(id) is held by a pause"), waited)
    c.ok(["resume"])
    c.ok(["wait", first, id])
    c.ok(["pause", "batch"])
    let grouped = c.ok(["submit", "-v", "--group", "batch", "--", "true"])
    XCTAssertTrue(grouped.err.contains("held by a pause: it starts after cortex resume batch"), grouped.err)
    let unpaused = c.ok(["submit", "-v", "--wait", "--", "true"])
    XCTAssertFalse(unpaused.err.contains("pause"), unpaused.err)
    c.ok(["resume", "batch"])
  }

  /// `cortex pause`, later `cortex resume api`: it said "group api resumed" and the group's tasks
  /// stayed queued under the queue's pause with no word why. It says the queue is still paused.
  func testResumingAGroupUnderAPausedQueueSaysTheQueueIsStillPaused() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["pause"])
    c.ok(["pause", "api"])
    let id = c.ok(["submit", "-p", "--group", "api", "--", "true"]).out.trimmed
    let resumed = c.ok(["resume", "api"])
    XCTAssertTrue(resumed.err.contains("cortex: group api resumed\n"), resumed.err)
    XCTAssertTrue(
      resumed.err.contains("the whole queue is still paused, so group api starts nothing yet (cortex resume, with no group, resumes it)"),
      resumed.err)
    let state = c.ok(["show", id]).out.split(separator: "\n").first { $0.hasPrefix("state ") }
    XCTAssertEqual(state, "state           queued")
    c.ok(["resume"])
    c.ok(["wait", id])
    // With the queue running, a group's resume says only that.
    c.ok(["pause", "api"])
    XCTAssertEqual(c.ok(["resume", "api"]).err, "cortex: group api resumed\n")
  }

  /// `cortex log` of a task cancelled while a pause held it said it "has no output (yet)", and
  /// exited 0, promising output that can never come. It says the task ended before it ran.
  func testLogOfATaskCancelledWhileQueuedSaysItNeverRan() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["pause"])
    let id = c.ok(["submit", "-p", "--", "echo", "never"]).out.trimmed
    XCTAssertEqual(c.ok(["log", id]).err, "cortex: \(id) has no output yet\n")
    c.ok(["cancel", id])
    XCTAssertEqual(c.ok(["log", id]).err, "cortex: \(id) has no output: it ended cancelled before it ran\n")
    c.ok(["resume"])
  }

  /// `cortex resume aip` (a typo) said "group aip was not paused" and made the group: a group is
  /// never forgotten, so `aip` stayed a row of `cortex group`, groups.json and the metrics.
  func testResumingAGroupNothingNamedChangesNothing() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    XCTAssertEqual(c.ok(["resume", "aip"]).err, "cortex: group aip was not paused\n")
    let groups = try JSON.parse(Array(c.ok(["--json", "group"]).out.utf8))
    XCTAssertEqual(groups["groups"]?.array?.compactMap { $0["name"]?.string }.contains("aip"), false, "\(groups)")
    XCTAssertFalse(c.events().contains { $0["group"]?.string == "aip" })
    // A group that exists resumes as before, and the pause of a new one still makes it.
    c.ok(["pause", "api"])
    XCTAssertEqual(c.ok(["resume", "api"]).err, "cortex: group api resumed\n")
  }
}
