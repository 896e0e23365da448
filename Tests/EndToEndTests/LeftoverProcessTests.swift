import CortexCore
import Posix
import XCTest

/// Nothing a task starts outlives it: a process that leaves the task's process group (`setsid`,
/// a tool that daemonizes) escaped the group's kill and ran on, re-parented to the daemon, for
/// ever. The worker is now a subreaper: such a process comes back to it when orphaned and is
/// killed when the task ends, by exit or by cancel, and the daemon's log says so.
final class LeftoverProcessTests: XCTestCase {
  func escaped(_ c: Cortex, _ seconds: String) -> [ProcessEntry] {
    c.leftovers.filter { $0.commandLine == ["sleep", seconds] && !$0.isZombie }
  }

  func testAProcessThatLeftTheTasksGroupEndsWithTheTask() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize()
    c.ok(["start", "--workers", "2"])

    // Ends by itself, leaving a process in a session of its own.
    let quits = c.ok(["submit", "-p", "--", "sh", "-c", "setsid sleep 3001 & sleep 0.3; echo left"]).out.trimmed
    c.ok(["wait", quits], timeoutS: 30)
    c.eventually("the escaped sleep 3001 is gone after its task ended", timeoutS: 10) { self.escaped(c, "3001").isEmpty }
    c.eventually("the daemon's log names what was killed") {
      let log = String(decoding: ((try? FileSystem.read(c.paths.daemonLog)) ?? nil) ?? [], as: UTF8.self)
      return log.contains("\(quits) left 1 process running outside its process group") && log.contains(" sleep); killed")
    }
    let result = try XCTUnwrap(try FileSystem.read(c.paths.taskDir(TaskID.parse(quits)!) + "/result.json"))
    XCTAssertEqual(try JSON.parse(result)["exit_code"]?.int, 0, "the task's own outcome is kept")

    // Cancelled while the escaped process runs beside it.
    let stays = c.ok(["submit", "-p", "--", "sh", "-c", "setsid sleep 3002 & exec sleep 3003"]).out.trimmed
    c.eventually("both sleeps run") { !self.escaped(c, "3002").isEmpty && !self.escaped(c, "3003").isEmpty }
    c.ok(["cancel", stays])
    c.eventually("the escaped sleep 3002 is gone after its task was cancelled", timeoutS: 10) {
      self.escaped(c, "3002").isEmpty && self.escaped(c, "3003").isEmpty
    }
    // The worker still serves.
    c.ok(["submit", "-p", "--wait", "--", "true"], timeoutS: 30)
  }

  /// A background process left in the task's own group is killed with it, and the task ends at
  /// once: as a subreaper the worker gets that process back as a zombie, and it waited for the
  /// group to be gone without reaping it, until its 2 s wait gave up (every such task took 2 s).
  func testATaskThatLeavesABackgroundProcessInItsGroupEndsAtOnce() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--wait", "--", "sh", "-c", "sleep 3004 & echo started"], timeoutS: 30).out.trimmed
    let shown = try JSON.parse(c.ok(["--json", "show", id]).out)
    let took = try XCTUnwrap(shown["ended_ms"]?.int) - (try XCTUnwrap(shown["started_ms"]?.int))
    XCTAssertLessThan(took, 1500, "the task took \(took) ms: its leftover held it")
    XCTAssertTrue(escaped(c, "3004").isEmpty, "the background sleep outlived its task")
  }
}
