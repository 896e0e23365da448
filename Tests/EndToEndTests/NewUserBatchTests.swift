import CortexCore
import Posix
import XCTest

/// What a new user trips on with `cortex submit --from` (NewUserTests has the rest).
final class NewUserBatchTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// A batch written as a JSON array, or as one pretty-printed object, failed with "must be a
  /// JSON object, not an array" or "not JSON: unexpected end of input" at line 1; the error says
  /// --from takes one task object per line and gives the jq line that makes them.
  func testAJSONArrayOrAPrettyObjectSaysHowToMakeLines() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let cases: [(String, String)] = [
      (#"[{"command":["true"]},{"command":["true"]}]"#, "stdin line 1: a JSON array; --from takes one task object per line: jq -c '.[]'"),
      ("[\n{\"command\":[\"true\"]},\n{\"command\":[\"true\"]}\n]", "the input is one JSON array over several lines"),
      (
        "{\n  \"command\": [\"true\"]\n}", "the input is one JSON object over several lines; --from takes one task object per line: jq -c ."
      ),
    ]
    for (input, says) in cases {
      let r = c.run(["submit", "--from", "-"], input: input + "\n")
      XCTAssertEqual(r.code, 65, r.err)
      XCTAssertTrue(r.err.contains(says), r.err)
    }
    let missing = c.run(["submit", "--from", c.scratch + "/nope.jsonl"])
    XCTAssertEqual(missing.code, 1, missing.err)
    XCTAssertTrue(missing.err.contains("nope.jsonl: it does not exist"), missing.err)
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" })
  }
}

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
}

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
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"]
    for args in [["tail", "-f", "-n", "1"], ["log", "-f", id]] {
      let (r, w) = try makePipe()
      let pid = try Processes.spawn(
        [Cortex.binary, "--dir", c.root] + args, environment: env, stdin: nil, stdout: w, stderr: nil, newProcessGroup: false)
      w.close()
      var first: [UInt8] = []
      XCTAssertTrue(r.waitReadable(timeoutMs: 10_000), "\(args) printed nothing")
      _ = try r.read(appendingTo: &first, max: 4096)
      XCTAssertFalse(first.isEmpty, "\(args)")
      r.close()  // the reader leaves, as head -1 does
      var status: ExitStatus? = nil
      c.eventually("\(args) ends once its reader is gone", timeoutS: 10) {
        status = Processes.reap(pid)?.status
        return status != nil
      }
      if status == nil {
        _ = Processes.signal(pid, Signal.kill)
        _ = Processes.wait(pid)
      }
      XCTAssertEqual(status, .exited(0), "\(args)")
    }
    c.ok(["cancel", id])
  }
}
