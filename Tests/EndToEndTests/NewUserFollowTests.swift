import CortexCore
import Posix
import XCTest

/// `cortex tail -f | head -1` (or `| grep -m1 …`) never ended: the follower kept going after its
/// reader left, waiting forever in a script. tail -f and log -f end once stdout's reader is gone.
final class NewUserFollowTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testFollowersEndWhenTheirReaderLeaves() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--", "sh", "-c", "echo started; sleep 30"]).out.trimmed
    c.eventually("the task runs") { c.ok(["list", "--state", "running"]).out.contains(id) }
    for args in [["tail", "-f", "-n", "1"], ["log", "-f", id]] { try endsWhenItsReaderLeaves(args) }
    c.ok(["cancel", id])
  }

  /// `cortex top | head -1` never ended either: top ignored the failed writes to its closed
  /// stdout and drew a frame every interval for ever, so the pipeline hung.
  func testTopEndsWhenItsReaderLeaves() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    try endsWhenItsReaderLeaves(["top", "--interval", "50"])
  }

  /// Runs `cortex ARGS` with stdout a pipe, reads its first output, closes the pipe (as `head -1`
  /// does) and expects it to exit 0 within 10 s.
  func endsWhenItsReaderLeaves(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws {
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"]
    let (r, w) = try makePipe()
    let pid = try Processes.spawn(
      [Cortex.binary, "--dir", c.root] + args, environment: env, stdin: nil, stdout: w, stderr: nil, newProcessGroup: false)
    w.close()
    var first: [UInt8] = []
    XCTAssertTrue(r.waitReadable(timeoutMs: 10_000), "\(args) printed nothing", file: file, line: line)
    _ = try r.read(appendingTo: &first, max: 4096)
    XCTAssertFalse(first.isEmpty, "\(args)", file: file, line: line)
    r.close()  // the reader leaves, as head -1 does
    var status: ExitStatus? = nil
    c.eventually("\(args) ends once its reader is gone", timeoutS: 10, file: file, line: line) {
      status = Processes.reap(pid)?.status
      return status != nil
    }
    if status == nil {
      _ = Processes.signal(pid, Signal.kill)
      _ = Processes.wait(pid)
    }
    XCTAssertEqual(status, .exited(0), "\(args)", file: file, line: line)
  }

  /// `cortex tail --type 'task.*' --type 'hook.*'` counted only the last --type (and --task
  /// likewise), so it showed the hooks alone and said nothing of the first. Both are repeatable:
  /// an event matching any of them is shown.
  func testTailTakesSeveralTypesAndTasks() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let a = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    let b = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    let types = c.ok(["--json", "tail", "--type", "task.submitted", "--type", "task.succeeded"]).out
    let seen = try types.split(separator: "\n").map { try JSON.parse(Array($0.utf8)) }
    XCTAssertEqual(seen.compactMap(\.type), ["task.submitted", "task.succeeded", "task.submitted", "task.succeeded"], types)
    let both = try c.ok(["--json", "tail", "--task", a, "--task", b, "--type", "task.started"]).out.split(separator: "\n").map {
      try JSON.parse(Array($0.utf8))
    }
    XCTAssertEqual(both.compactMap(\.taskID), [a, b])
    XCTAssertEqual(c.run(["tail", "--task", a, "--task", "bogus"]).code, 65, "an id that names no task is 65 on every command")
  }

  /// `cortex tail -n2` was "unknown option -n2" (getopt's tools take a one-letter option's value
  /// attached), and `cortex wait` of a failed task said its exit code twice: "failed (exit code 1)
  /// (exit_code)".
  func testAOneLetterOptionTakesItsValueAttachedAndWaitSaysTheExitCodeOnce() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let failed = c.ok(["submit", "-p", "--", "false"]).out.trimmed
    let waited = c.run(["wait", failed])
    XCTAssertEqual(waited.code, 1, waited.err)
    XCTAssertEqual(waited.err.trimmed, "\(failed) failed (exit code 1)")
    c.ok(["submit", "-p", "--wait", "--", "true"])
    XCTAssertEqual(c.ok(["tail", "-n2"]).out, c.ok(["tail", "-n", "2"]).out)
    XCTAssertEqual(c.ok(["tail", "-n2"]).out.split(separator: "\n").count, 2)
    XCTAssertEqual(c.ok(["list", "-n1"]).out, c.ok(["list", "-n", "1"]).out)
    XCTAssertEqual(c.run(["tail", "-nx"]).code, 64)
  }
}
