import CortexCore
import Posix
import XCTest

/// What `wait` and `list` answer for tasks that ended before a restart, which the daemon holds
/// only as compact records (SPEC §13): the same as for a task it holds in memory.
final class CompactRecordAnswerTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func restart() {
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])
  }

  /// Before, a compact record's `wait` said no reason at all ("task-000001 failed (exit code 127)
  /// (ended …)"), where the same task held in memory said "(spawn_failed: command not found:
  /// /nonexistent/cmd)". The reason and its sentence now come from result.json, which keeps the
  /// sentence (`detail`) too.
  func testWaitAfterARestartSaysWhyATaskEndedAsBefore() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let ids = [
      c.ok(["submit", "-p", "--", "/nonexistent/cmd"]).out.trimmed,
      c.ok(["submit", "-p", "--timeout", "1s", "--", "sleep", "5"]).out.trimmed,
      c.ok(["submit", "-p", "--", "sh", "-c", "exit 3"]).out.trimmed,
    ]
    let before = c.run(["wait"] + ids)
    XCTAssertEqual(before.code, 1, before.err)
    let beforeJSON = try JSON.parse(Array(c.ok(["--json", "wait"] + ids, code: 1).out.utf8))
    XCTAssertTrue(before.err.contains("(spawn_failed: command not found: /nonexistent/cmd)"), before.err)
    XCTAssertTrue(before.err.contains("(timeout: ran longer than 1000 ms)"), before.err)
    restart()
    let after = c.run(["wait"] + ids)
    XCTAssertEqual(after.code, 1, after.err)
    let (was, now) = (before.err.split(separator: "\n"), after.err.split(separator: "\n"))
    XCTAssertEqual(was.count, ids.count, before.err)
    XCTAssertEqual(now.count, ids.count, after.err)
    for (b, a) in zip(was, now) {
      // The compact record adds when the task ended.
      XCTAssertTrue(a.hasPrefix(b + " (ended "), "after the restart: \(a)\nbefore: \(b)")
    }
    let afterJSON = try JSON.parse(Array(c.ok(["--json", "wait"] + ids, code: 1).out.utf8))
    for (b, a) in zip(beforeJSON["tasks"]?.array ?? [], afterJSON["tasks"]?.array ?? []) {
      for k in ["id", "state", "exit_code", "signal", "reason", "detail"] {
        XCTAssertEqual(a[k], b[k], "\(k) of \(a.encoded()) against \(b.encoded())")
      }
    }
  }

  /// The result.json such a wait reads is read on the daemon's files thread, not its loop: with
  /// one that is a FIFO nobody writes yet, the daemon answers other requests meanwhile, and the
  /// wait answers with the reason once the file gives it.
  func testWaitReadsResultFilesOffTheLoop() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--", "/nonexistent/cmd"]).out.trimmed
    XCTAssertEqual(c.run(["wait", id]).code, 127)
    restart()
    let give = try c.holdBack(c.paths.taskDir(TaskID.parse(id)!) + "/result.json")
    defer { give() }  // a daemon blocked on it must not outlive a failed test
    let wait = try c.background(["wait", id])
    sleepMs(500)  // the request is read and the FIFO opened
    for _ in 0..<3 {
      let started = Clock.monotonicMs()
      c.ok(["workers"], timeoutS: 5)
      XCTAssertLessThan(Clock.monotonicMs() - started, 3000, "the daemon answered late while a result.json was read")
    }
    XCTAssertNil(Processes.reap(wait.pid), "the wait answered before the result.json could be read")
    give()
    let r = c.collect(wait)
    XCTAssertEqual(r.code, 127, r.err)
    XCTAssertTrue(r.err.contains("(spawn_failed: command not found: /nonexistent/cmd) (ended "), r.err)
  }

  /// `cortex list` fills the rows of tasks held only as compact records from their files. It read
  /// result.json and spec.json of every one (a list of 20,000 old tasks took most of a second);
  /// result.json now holds what the list shows of the spec, so it reads that file alone: the
  /// table and --json are the same with every spec.json gone. Before, such rows lost their
  /// priority, description, group, labels and retry_of.
  func testListOfOldTasksReadsOnlyTheirResultFiles() throws {
    try c.initialize([("groups", .object([("batch", .object([("parallel", .int(2))]))]))])
    c.ok(["start", "--workers", "2"])
    var ids = [
      c.ok([
        "submit", "-p", "--priority", "high", "--description", "first one", "--label", "team=infra", "--label", "API_TOKEN=s3cr3t-v4lue",
        "--", "true",
      ]).out.trimmed,
      c.ok(["submit", "-p", "--group", "batch", "--", "sh", "-c", "exit 3"]).out.trimmed,
      c.ok(["submit", "-p", "--priority", "low", "--shell", "exit 0", "--description", "tab\tand 'quotes'"]).out.trimmed,
    ]
    c.run(["wait"] + ids)
    ids += c.ok(["retry", "-p", ids[1]]).out.split(separator: "\n").map { String($0) }
    c.run(["wait", ids[3]])
    restart()
    let asked = [["list"], ["--json", "list"], ["list", "--label", "team=infra"], ["list", "--group", "batch"]]
    let before = asked.map { c.ok($0).out }
    let rows = try JSON.parse(Array(before[1].utf8)).array ?? []
    XCTAssertEqual(rows.count, 4, before[1])
    for r in rows {
      XCTAssertEqual(r["compact"]?.bool, true, "held only as a compact record: \(r.encoded())")
      XCTAssertNotNil(r["priority"], r.encoded())
    }
    XCTAssertEqual(rows.last?["retry_of"]?.string, ids[1], before[1])
    XCTAssertTrue(before[0].contains("first one") && before[0].contains("GROUP"), before[0])
    for n in ids.compactMap(TaskID.parse) {
      try FileSystem.remove(c.paths.taskDir(n) + "/spec.json")
      // What result.json copies of the spec is redacted, as spec.json is.
      let result = String(decoding: try FileSystem.read(c.paths.taskDir(n) + "/result.json") ?? [], as: UTF8.self)
      XCTAssertTrue(result.contains("\"priority\"") && !result.contains("s3cr3t-v4lue"), result)
    }
    for (args, was) in zip(asked, before) {
      XCTAssertEqual(c.ok(args).out, was, "cortex \(args.joined(separator: " ")) without the spec.json files")
    }
  }
}
