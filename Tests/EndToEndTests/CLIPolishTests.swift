import CortexCore
import Posix
import XCTest

/// What the commands say and return: one exit-code rule for `wait` and `submit --wait`, JSON
/// errors under `--json`, batch positions counted from 1, the max_queue hint, `log` of a
/// synthetic task, `tail -f -n`, `status` of a stopped daemon, and `top` quitting on `q`.
final class CLIPolishTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testWaitAndSubmitWaitFollowOneExitCodeRule() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    let cases: [(args: [String], code: Int32)] = [
      (["--shell", "exit 3"], 3),
      (["--shell", "kill -9 $$"], 137),
      (["--timeout", "1s", "--", "sleep", "20"], 124),
      (["--", "true"], 0),
    ]
    for (args, code) in cases {
      let viaSubmit = c.run(["submit", "--wait"] + args, timeoutS: 30)
      XCTAssertEqual(viaSubmit.code, code, "submit --wait \(args): \(viaSubmit.err)")
      let id = viaSubmit.out.trimmed
      let viaWait = c.run(["wait", id], timeoutS: 30)
      XCTAssertEqual(viaWait.code, code, "wait \(id) (\(args)): \(viaWait.err)")
    }
    // Cancelled: 130, through either command.
    let id = c.ok(["submit", "--shell", "sleep 30"]).out.trimmed
    c.eventually("\(id) started") { c.events().contains { $0.type == "task.started" && $0.taskID == id } }
    c.ok(["cancel", id])
    XCTAssertEqual(c.run(["wait", id]).code, 130)
    // Several tasks: 0 only if all succeeded, else 1.
    let ok = c.ok(["submit", "--", "true"]).out.trimmed
    let bad = c.ok(["submit", "--shell", "exit 3"]).out.trimmed
    XCTAssertEqual(c.run(["wait", ok, bad], timeoutS: 30).code, 1)
    XCTAssertEqual(c.run(["wait", ok, ok], timeoutS: 30).code, 0)
  }

  func testUnderJSONAnErrorIsAJSONObjectOnStdoutToo() throws {
    // Daemon not running: 69.
    let down = c.run(["--json", "list"])
    XCTAssertEqual(down.code, 69)
    let d = try JSON.parse(Array(down.out.utf8))
    XCTAssertEqual(d["ok"]?.bool, false)
    XCTAssertEqual(d["code"]?.int, 69)
    XCTAssertTrue(d["error"]?.string?.contains("cortex start") ?? false, down.out)
    XCTAssertTrue(down.err.contains("cortex start"), "the message is on stderr as well: \(down.err)")
    // A usage error: 64.
    let usage = c.run(["--json", "list", "--bogus"])
    XCTAssertEqual(usage.code, 64)
    XCTAssertEqual(try JSON.parse(Array(usage.out.utf8))["code"]?.int, 64)
    // A refusal from the daemon keeps its field.
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let bad = c.run(["submit", "--json", "--priority", "urgent", "--", "true"])
    XCTAssertEqual(bad.code, 65)
    let b = try JSON.parse(Array(bad.out.utf8))
    XCTAssertEqual(b["code"]?.int, 65)
    XCTAssertEqual(b["field"]?.string, "priority")
    XCTAssertTrue(bad.err.contains("priority"), bad.err)
  }

  func testABatchLargerThanMaxQueueSaysWhatToChangeAndExits65() throws {
    try c.initialize([("max_queue", .int(3))])
    c.ok(["start", "--workers", "1"])
    let five = String(repeating: #"{"synthetic":{"duration_ms":0}}"# + "\n", count: 5)
    let r = c.run(["submit", "--from", "-"], input: five)
    XCTAssertEqual(r.code, 65, "retrying cannot help, so not 75: \(r.err)")
    for hint in ["max_queue", "config.json", "HUP", "split"] { XCTAssertTrue(r.err.contains(hint), "no '\(hint)' in: \(r.err)") }
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" })
    XCTAssertEqual(c.events().last { $0.type == "task.rejected" }?["reason"]?.string, "batch_too_large")
    // A batch sent in parts (past 1 MiB) is refused after its first part, naming its whole size
    // (it named the tasks of the parts held so far).
    let many = String(repeating: #"{"synthetic":{"duration_ms":0}}"# + "\n", count: 40_000)
    let big = c.run(["submit", "--from", "-"], input: many)
    XCTAssertEqual(big.code, 65, big.err)
    XCTAssertTrue(big.err.contains("the batch has 40000 tasks and max_queue is 3"), big.err)
    // A full queue is still 75: it can succeed later.
    for _ in 0..<4 { _ = c.run(["submit", "--shell", "sleep 30"]) }
    let full = c.run(["submit", "--", "true"])
    XCTAssertEqual(full.code, 75, full.err)
    c.ok(["stop", "--timeout", "0"], timeoutS: 30)
  }

  /// A failed task without a description: the DESCRIPTION column of `cortex list` said the
  /// reason word `exit_code`; it says `exit code 3` (`killed by signal 9` for a signal). And
  /// `--synthetic 10:-1` said '-1' "is not a whole number", which it is: it says what is allowed.
  func testListSaysWhyATaskEndedInWordsAndSyntheticTokensSayWhatIsAllowed() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let exited = c.ok(["submit", "-p", "--wait", "--shell", "exit 3"], code: 3).out.trimmed
    let killed = c.ok(["submit", "-p", "--wait", "--shell", "kill -9 $$"], code: 137).out.trimmed
    let described = c.ok(["submit", "-p", "--wait", "-d", "the build", "--shell", "exit 2"], code: 2).out.trimmed
    let rows = c.ok(["list", "--state", "failed"]).out.split(separator: "\n").map(String.init)
    func row(_ id: String) -> String { rows.first { $0.hasPrefix(id) } ?? "" }
    XCTAssertTrue(row(exited).hasSuffix("exit code 3"), row(exited))
    XCTAssertTrue(row(killed).hasSuffix("killed by signal 9"), row(killed))
    XCTAssertTrue(row(described).hasSuffix("the build"), row(described))
    XCTAssertFalse(rows.joined().contains("exit_code"), rows.joined(separator: "\n"))
    let negative = c.run(["submit", "--synthetic", "10:-1"])
    XCTAssertEqual(negative.code, 65, negative.err)
    XCTAssertTrue(negative.err.contains("synthetic.tokens: '-1' is not a whole number of 0 or more"), negative.err)
  }

  /// `retry ID --all-failed` was taken though the usage said one or the other; it is meant (the
  /// named tasks, all or nothing, and every other failure), so the usage and help say so.
  func testRetryOfIdsAndAllFailedTogetherIsInItsUsageAndRetriesBoth() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let succeeded = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    let failed = c.ok(["submit", "-p", "--wait", "--", "false"], code: 1).out.trimmed
    let usage = c.ok(["retry", "--help"]).out
    XCTAssertTrue(usage.contains("cortex retry [-p] ID... [--all-failed]"), usage)
    let both = c.ok(["retry", succeeded, "--all-failed"]).out
    XCTAssertTrue(both.contains("(retry of \(succeeded))") && both.contains("(retry of \(failed))"), both)
  }

  func testBatchPositionsCountFromOneInEveryMessage() throws {
    try c.initialize([("token_budget_total", .int(1000))])
    c.ok(["start", "--workers", "1"])
    // A blank line: the file's line and the task's position differ, and both are right.
    let file = c.scratch + "/batch.jsonl"
    try FileSystem.writeAtomically(
      file, Array((#"{"synthetic":{"duration_ms":0}}"# + "\n\n" + #"{"synthetic":{"duration_ms":0},"priority":"urgent"}"# + "\n").utf8))
    let invalid = c.run(["submit", "--json", "--from", file])
    XCTAssertEqual(invalid.code, 65)
    XCTAssertTrue(invalid.err.contains("batch.jsonl line 3: task 2 of 2: priority"), invalid.err)
    let j = try JSON.parse(Array(invalid.out.utf8))
    XCTAssertEqual(j["field"]?.string, "[2].priority")
    XCTAssertEqual(j["position"]?.int, 2)
    // The budget refusal counts the same way.
    let twoSpecs = #"{"synthetic":{"duration_ms":0,"tokens":10}}"# + "\n" + #"{"synthetic":{"duration_ms":0},"token_budget":5000}"#
    let budget = c.run(["submit", "--from", "-"], input: twoSpecs)
    XCTAssertEqual(budget.code, 65)
    XCTAssertTrue(
      budget.err.contains("stdin line 2: refused (token_budget_exhausted): task 2 of 2 needs 5000 tokens"), budget.err)
    // A parse error names the line and the task.
    let garbage = c.run(["submit", "--from", "-"], input: #"{"synthetic":{"duration_ms":0}}"# + "\nnot json\n")
    XCTAssertEqual(garbage.code, 65)
    XCTAssertTrue(garbage.err.contains("stdin line 2: task 2: not JSON"), garbage.err)
  }

  /// 600 specs of 4 KiB (2.4 MiB) go in parts no longer than 1 MiB, and are admitted whole; with a
  /// bad spec in the last part, nothing is.
  func testABigBatchIsSentInPartsAndAdmittedWhole() throws {
    try c.initialize([("max_queue", .int(1000))])
    c.ok(["start", "--workers", "1"])
    let pad = String(repeating: "d", count: 4096)
    var batch = ""
    for _ in 0..<600 { batch += #"{"synthetic":{"duration_ms":0},"description":"\#(pad)"}"# + "\n" }
    var bad = batch
    bad += #"{"synthetic":{"duration_ms":0},"priority":"urgent"}"# + "\n"
    let refused = c.run(["submit", "--from", "-"], input: bad, timeoutS: 60)
    XCTAssertEqual(refused.code, 65, refused.err)
    XCTAssertTrue(refused.err.contains("stdin line 601: task 601 of 601: priority"), refused.err)
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" }, "part of a refused batch was admitted")
    let ok = c.ok(["submit", "--from", "-"], input: batch, timeoutS: 60)
    XCTAssertEqual(ok.out.split(separator: "\n").count, 600)
    XCTAssertEqual(c.events().filter { $0.type == "task.submitted" }.count, 600)
  }

  func testLogOfASyntheticTaskSaysItHasNoOutput() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "--synthetic", "0", "--wait"]).out.trimmed
    let r = c.run(["log", id])
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertTrue(r.err.contains("synthetic task"), r.err)
    XCTAssertFalse(r.err.contains("no such task directory"), r.err)
    let f = c.run(["log", "--follow", id], timeoutS: 10)
    XCTAssertEqual(f.code, 0)
    XCTAssertTrue(f.err.contains("synthetic task"), f.err)
    let unknown = c.run(["log", "task-009999"])
    XCTAssertNotEqual(unknown.code, 0)
    XCTAssertTrue(unknown.err.contains("unknown task"), unknown.err)
  }

  func testTailFollowStartsWithTheLastTwentyEvents() throws {
    // The test counts every event of the log: no periodic snapshot adds a `snapshot.written`
    // between a count and what it is compared with (the default one, 10 s after the tasks, did
    // when the test ran slowly, and `tail` printed one event more than the count before it).
    try c.initialize([("snapshot_interval_s", .int(3600))])
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--from", "-", "--wait"], input: String(repeating: #"{"synthetic":{"duration_ms":0}}"# + "\n", count: 50))
    let all = c.events().count
    XCTAssertGreaterThan(all, 150)
    XCTAssertEqual(c.ok(["tail"]).out.split(separator: "\n").count, all, "without -f, everything")
    XCTAssertEqual(c.ok(["tail", "-n", "5"]).out.split(separator: "\n").count, 5)
    XCTAssertEqual(c.ok(["tail", "-n", "3", "--type", "task.succeeded", "--json"]).out.split(separator: "\n").count, 3)
    // -f: the last 20, then what comes.
    let out = c.scratch + "/tail.out"
    let o = try FileDescriptor.open(out, [.writeOnly, .create, .truncate])
    let devnull = try FileDescriptor.open("/dev/null", .readWrite)
    let pid = try Processes.spawn(
      [Cortex.binary, "--dir", c.root, "tail", "-f", "--json"], environment: Environment.all().filter { !$0.hasPrefix("CORTEX_") },
      stdin: devnull, stdout: o, stderr: devnull, newProcessGroup: false)
    o.close()
    devnull.close()
    defer {
      _ = Processes.signal(pid, Signal.kill)
      _ = Processes.wait(pid)
    }
    func lines() -> [JSON] {
      (((try? FileSystem.read(out)) ?? nil) ?? []).split(separator: 10).compactMap { try? JSON.parse($0) }
    }
    c.eventually("tail -f printed its first lines") { lines().count >= 20 }
    sleepMs(500)
    XCTAssertEqual(lines().count, 20, "tail -f starts with the last 20 events, not the whole history")
    XCTAssertEqual(lines().last?["seq"]?.int, c.events().last?["seq"]?.int)
    let id = c.ok(["submit", "--synthetic", "0", "--wait"]).out.trimmed
    c.eventually("tail -f follows") { lines().contains { $0.taskID == id && $0.type == "task.succeeded" } }
  }

  func testStatusSaysWhenTheDaemonStoppedResponding() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    let fresh = c.ok(["status"])
    XCTAssertTrue(fresh.out.contains("running, pid \(pid)"), fresh.out)
    XCTAssertTrue(fresh.out.contains("updated"), fresh.out)
    _ = Processes.signal(pid, Signal.stop)
    defer { _ = Processes.signal(pid, Signal.cont) }
    sleepMs(6500)
    let stale = c.ok(["status"])
    XCTAssertTrue(stale.out.contains("NOT RESPONDING"), stale.out)
    XCTAssertTrue(stale.out.contains("SIGSTOP"), stale.out)
    let j = try JSON.parse(Array(c.ok(["--json", "status"]).out.utf8))
    XCTAssertEqual(j["running"]?.bool, true)
    XCTAssertEqual(j["responding"]?.bool, false)
    XCTAssertGreaterThan(j["updated_ms_ago"]?.int ?? 0, 5000)
    _ = Processes.signal(pid, Signal.cont)
    c.eventually("status is fresh again") { c.run(["status"]).out.contains("running, pid \(pid)") }
  }

  /// A request to a daemon that stopped responding (SIGSTOP here) sat silent for ever; now the
  /// client says so on stderr after 10 s without an answer, keeps waiting, and gets its answer
  /// when the daemon runs again. A long `wait` on a daemon that runs says nothing.
  func testARequestToAStalledDaemonSaysSoAndAWaitOnALiveOneDoesNot() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    let long = c.ok(["submit", "-p", "--", "sleep", "11"]).out.trimmed
    let waited = c.run(["wait", long], timeoutS: 40)
    XCTAssertEqual(waited.code, 0, waited.err)
    XCTAssertFalse(waited.err.contains("not responding"), waited.err)

    let errPath = c.scratch + "/list.err", outPath = c.scratch + "/list.out"
    let e = try FileDescriptor.open(errPath, [.writeOnly, .create, .truncate])
    let o = try FileDescriptor.open(outPath, [.writeOnly, .create, .truncate])
    _ = Processes.signal(pid, Signal.stop)
    defer { _ = Processes.signal(pid, Signal.cont) }
    let list = try Processes.spawn(
      [Cortex.binary, "--dir", c.root, "list"], environment: ["PATH=/usr/bin:/bin", "NO_COLOR=1"], stdin: nil, stdout: o, stderr: e,
      newProcessGroup: false)
    e.close()
    o.close()
    var status: ExitStatus? = nil
    // Killed and reaped only if the test ends before it did (a reaped pid may be another's).
    defer {
      if status == nil {
        _ = Processes.signal(list, Signal.kill)
        _ = Processes.wait(list)
      }
    }
    func err() -> String { String(decoding: (try? FileSystem.read(errPath)) ?? [], as: UTF8.self) }
    c.eventually("list says the daemon is not responding", timeoutS: 30) { err().contains("not responding") }
    XCTAssertTrue(err().contains("pid \(pid)") && err().contains("still waiting"), err())
    if let early = Processes.reap(list) {
      status = early.status
      XCTFail("list gave up instead of waiting: \(early.status)")
    }
    _ = Processes.signal(pid, Signal.cont)
    c.eventually("list answers once the daemon runs again", timeoutS: 30) {
      status = Processes.reap(list)?.status
      return status != nil
    }
    XCTAssertEqual(status, .exited(0))
    XCTAssertTrue(String(decoding: (try? FileSystem.read(outPath)) ?? [], as: UTF8.self).contains(long), "list printed no tasks")
  }

  /// `cortex top` on a pseudo-terminal: says how to quit, quits on `q` (0) or Ctrl-C (130), and
  /// leaves the terminal as it found it.
  func testTopQuitsOnQAndRestoresTheTerminal() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    for (key, code) in [(UInt8(ascii: "q"), Int32(0)), (3, 130)] {
      let (master, slavePath) = try PseudoTerminal.open()
      defer { master.close() }
      let slave = try FileDescriptor.open(slavePath, .readWrite)
      defer { slave.close() }
      let before = try TerminalMode.current(slave)
      let pid = try Processes.spawn(
        [Cortex.binary, "--dir", c.root, "top", "--interval", "100"],
        environment: Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["TERM=xterm"], stdin: slave, stdout: slave,
        stderr: slave, newProcessGroup: true)
      var screen: [UInt8] = []
      func drain(_ ms: Int32) {
        if master.waitReadable(timeoutMs: ms) { _ = try? master.read(appendingTo: &screen, max: 1 << 16) }
      }
      let deadline = Clock.monotonicMs() + 20_000
      while !String(decoding: screen, as: UTF8.self).contains("q to quit") && Clock.monotonicMs() < deadline { drain(100) }
      XCTAssertTrue(String(decoding: screen, as: UTF8.self).contains("q to quit"), "top does not say how to quit")
      XCTAssertTrue(TerminalMode.isRawInput(slave), "top reads keys one by one")
      try master.writeAll([key])
      var status: ExitStatus?
      let quitBy = Clock.monotonicMs() + 3000
      while status == nil && Clock.monotonicMs() < quitBy {
        drain(20)
        status = Processes.reap(pid)?.status
      }
      if status == nil {
        _ = Processes.signal(pid, Signal.kill)
        _ = Processes.wait(pid)
      }
      XCTAssertEqual(status, .exited(code), "top after key \(key)")
      XCTAssertEqual(try TerminalMode.current(slave), before, "the terminal mode is restored")
      XCTAssertTrue(String(decoding: screen, as: UTF8.self).hasSuffix("\u{1B}[?25h\u{1B}[?1049l"), "cursor and screen are restored")
    }
  }

  /// After a restart the daemon keeps older finished tasks as compact records (id and state);
  /// `list` still shows their priority, type, group, attempt, worker, time and description, from
  /// their files, and `--group` still finds them, a worker type's group included. Once `clean`
  /// removed the files, the row says only what the record keeps.
  func testListShowsOlderFinishedTasksInFullAfterARestart() throws {
    try c.initialize([("worker_types", .object([("scan", .object([("group", .string("scanners"))]))]))])
    c.ok(["start", "--workers", "2"])
    let first = c.ok(["submit", "--wait", "--group", "g1", "--priority", "high", "--description", "first one", "--", "true"]).out.trimmed
    let scan = c.ok(["submit", "--wait", "--type", "scan", "--", "true"]).out.trimmed
    c.ok(["stop"])
    c.ok(["start", "--workers", "2"])
    let rows = try JSON.parse(Array(c.ok(["--json", "list"]).out.utf8)).array ?? []
    let row = rows.first { $0["id"]?.string == first }
    XCTAssertEqual(row?["compact"]?.bool, true, "the restart kept \(first) in full; this test needs a compact record")
    XCTAssertEqual(row?["priority"]?.string, "high")
    XCTAssertEqual(row?["type"]?.string, "exec")
    XCTAssertEqual(row?["group"]?.string, "g1")
    XCTAssertEqual(row?["attempt"]?.int, 1)
    XCTAssertNotNil(row?["worker_id"]?.string)
    XCTAssertEqual(row?["description"]?.string, "first one")
    let table = c.ok(["list"]).out
    let line = table.split(separator: "\n").first { $0.hasPrefix(first) }.map(String.init) ?? ""
    for field in ["high", "exec", "g1", "first one"] { XCTAssertTrue(line.contains(field), "no \(field) in: \(line)") }
    XCTAssertEqual(c.ok(["list", "--group", "g1"]).out.split(separator: "\n").dropFirst().map { String($0.prefix(11)) }, [first])
    XCTAssertEqual(c.ok(["list", "--group", "scanners"]).out.split(separator: "\n").dropFirst().map { String($0.prefix(11)) }, [scan])
    c.ok(["clean"])
    let cleaned = try JSON.parse(Array(c.ok(["--json", "list"]).out.utf8)).array?.first { $0["id"]?.string == first }
    XCTAssertNil(cleaned?["priority"], "\(String(describing: cleaned))")
    XCTAssertEqual(cleaned?["state"]?.string, "succeeded")
  }
}
