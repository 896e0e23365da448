import CortexCore
import Posix
import XCTest

/// What a new user trips on when following the README and `cortex help`: each test is one such
/// mistake or surprise, run against the real binary.
final class NewUserTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// `cortex submit --from` from a project's subdirectory: a line without `cwd` runs there (or
  /// in `--cwd`), as `cortex submit -- CMD` does, not wherever the daemon was started.
  func testABatchRunsInTheSubmittersDirectory() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let project = c.scratch + "/project"
    try FileSystem.makeDirectory(project)
    try FileSystem.makeDirectory(project + "/sub")
    let batch = "{\"command\":[\"pwd\"]}\n{\"shell\":\"pwd\"}\n{\"command\":[\"pwd\"],\"cwd\":\"/\"}\n"
    let r = c.run(raw: ["--dir", c.root, "submit", "--from", "-", "--wait", "-p"], input: batch, directory: project)
    XCTAssertEqual(r.code, 0, r.err)
    let ids = r.out.split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, 3, r.out)
    let real = try XCTUnwrap(FileSystem.realPath(project))
    XCTAssertEqual(ids.map { c.ok(["log", $0]).out.trimmed }, [real, real, "/"])
    let sub = c.run(raw: ["--dir", c.root, "submit", "--from", "-", "--cwd", "sub", "--wait", "-p"], input: batch, directory: project)
    XCTAssertEqual(sub.code, 0, sub.err)
    XCTAssertEqual(c.ok(["log", sub.out.trimmed.split(separator: "\n")[0].description]).out.trimmed, real + "/sub")
    // A relative cwd in a line is taken from the submitter's directory, as --cwd sub is.
    let relative = c.run(
      raw: ["--dir", c.root, "submit", "--from", "-", "--wait", "-p"], input: "{\"command\":[\"pwd\"],\"cwd\":\"sub\"}\n",
      directory: project)
    XCTAssertEqual(relative.code, 0, relative.err)
    XCTAssertEqual(c.ok(["log", relative.out.trimmed]).out.trimmed, real + "/sub")
  }

  /// A task flag beside `--from` was dropped without a word (the batch ran at medium priority);
  /// it is a usage error naming the flag, and nothing is submitted.
  func testTaskFlagsBesideABatchAreRefusedNotDropped() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let line = "{\"command\":[\"true\"]}\n"
    for (flags, named) in [
      (["--priority", "high"], "--priority"), (["--env", "A=1"], "--env"), (["--label", "k=v"], "--label"),
      (["--sla", "1m"], "--sla"), (["--shell", "true"], "--shell"),
    ] {
      let r = c.run(["submit", "--from", "-"] + flags, input: line)
      XCTAssertEqual(r.code, 64, "\(flags): \(r.err)")
      XCTAssertTrue(r.err.contains(named) && r.err.contains("each line"), "\(flags): \(r.err)")
    }
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" }, "a refused batch submitted something")
  }

  /// `cortex task create` is advertised; `cortex task`, `cortex task --help` and `cortex help task`
  /// answered "unknown command 'task'".
  func testTaskAloneNamesItsCreateCommand() {
    let submitHelp = c.run(["help", "submit"]).out
    for args in [["task", "--help"], ["task", "-h"], ["help", "task"], ["help", "task", "create"]] {
      let r = c.run(args)
      XCTAssertEqual(r.code, 0, "\(args): \(r.err)")
      XCTAssertEqual(r.out, submitHelp, "\(args)")
    }
    for args in [["task"], ["task", "list"]] {
      let r = c.run(args)
      XCTAssertEqual(r.code, 64, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("cortex task create") && r.err.contains("usage:"), "\(args): \(r.err)")
      XCTAssertFalse(r.err.contains("unknown command"), "\(args): \(r.err)")
    }
  }

  /// A misspelled command names the command it is most likely a typo of; a word like none names none.
  func testAMisspelledCommandSuggestsTheNearestOne() {
    for (typo, meant) in [("submti", "submit"), ("lsit", "list"), ("stauts", "status"), ("cancle", "cancel")] {
      for args in [[typo], ["help", typo]] {
        let r = c.run(args)
        XCTAssertEqual(r.code, 64, "\(args): \(r.err)")
        XCTAssertTrue(r.err.contains("unknown command '\(typo)'; did you mean '\(meant)'?"), "\(args): \(r.err)")
      }
    }
    let r = c.run(["frobnicate"])
    XCTAssertEqual(r.code, 64, r.err)
    XCTAssertFalse(r.err.contains("did you mean"), r.err)
  }

  /// A misspelled option names the option of that command it is most likely a typo of.
  func testAMisspelledOptionSuggestsTheCommandsOwn() {
    for (args, meant) in [
      (["submit", "--prority", "high", "--", "true"], "--priority"), (["submit", "--prio=high", "--", "true"], "--priority"),
      (["log", "task-000001", "--folow"], "--follow"), (["stop", "--timout", "3"], "--timeout"),
      (["list", "--stat", "failed"], "--state"),
    ] {
      let r = c.run(args)
      XCTAssertEqual(r.code, 64, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("unknown option \(args.first { $0.hasPrefix("--") }!)"), "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("did you mean \(meant)?"), "\(args): \(r.err)")
    }
    let r = c.run(["submit", "--zzz", "--", "true"])
    XCTAssertEqual(r.code, 64, r.err)
    XCTAssertFalse(r.err.contains("did you mean"), r.err)
  }

  /// `--env A=1 --env A=2` (or a spec whose `env` repeats a key) handed the task both entries:
  /// printenv printed two lines and getenv(3) saw the first. The last one given wins, once.
  func testAVariableGivenTwiceReachesTheTaskOnceWithTheLastValue() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let flags = c.ok(["submit", "--wait", "-p", "--env", "A=1", "--label", "k=1", "--env", "A=2", "--label", "k=2", "--", "printenv", "A"])
    let id = flags.out.trimmed
    XCTAssertEqual(c.ok(["log", id]).out, "2\n")
    let spec = try XCTUnwrap(c.ok(["--json", "show", id]).out.utf8.split(separator: 10).first.map { try JSON.parse(Array($0)) })["spec"]
    XCTAssertEqual(spec?["labels"]?.object?.map(\.0), ["k"])
    XCTAssertEqual(spec?["labels"]?["k"]?.string, "2")
    let batch = c.ok(
      ["submit", "--from", "-", "--wait", "-p"], input: "{\"command\":[\"printenv\",\"B\"],\"env\":{\"B\":\"x\",\"B\":\"y\"}}\n")
    XCTAssertEqual(c.ok(["log", batch.out.trimmed]).out, "y\n")
  }

  /// `cortex submit --wait` while someone runs `cortex stop`: after waiting for a daemon to come
  /// back it said only "the daemon closed the connection before answering", as if the task were
  /// gone. It says the task is kept and how to wait for it again.
  func testAWaitThatOutlivesItsDaemonSaysTheTaskIsKept() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--", "sleep", "120"]).out.trimmed
    let errPath = c.scratch + "/wait.err"
    let e = try FileDescriptor.open(errPath, [.writeOnly, .create, .truncate])
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"]
    let pid = try Processes.spawn(
      [Cortex.binary, "--dir", c.root, "wait", id], environment: env, stdin: nil, stdout: nil, stderr: e, newProcessGroup: false)
    e.close()
    sleepMs(300)
    c.ok(["stop", "--timeout", "0"], timeoutS: 30)
    var status: ExitStatus? = nil
    c.eventually("wait gives up", timeoutS: 45) {
      status = Processes.reap(pid)?.status
      return status != nil
    }
    if status == nil { _ = Processes.signal(pid, Signal.kill) }
    XCTAssertEqual(status, .exited(69))
    let err = String(decoding: try XCTUnwrap(FileSystem.read(errPath)), as: UTF8.self)
    // The stopping daemon answers the wait itself now (daemon_stopped), at once.
    XCTAssertTrue(err.contains("the daemon stopped") && err.contains("before \(id) ended") && err.contains("not lost"), err)
    XCTAssertTrue(err.contains("cortex start") && err.contains("cortex wait \(id)"), err)
    let view = c.ok(["status"]).out
    XCTAssertTrue(view.contains("1 queued"), "the requeued task is kept for the next start: \(view)")
  }

  /// `cortex log ID` where no directory exists said the task "has no output: …/tasks/ID does not
  /// exist", as if the task were the problem; it names the missing directory and what to do.
  func testLogWithoutADirectoryNamesTheDirectory() {
    for args in [["log", "task-000001"], ["log", "-f", "task-000001"]] {
      let r = c.run(args)
      XCTAssertEqual(r.code, 1, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("no coordination directory at \(c.root)") && r.err.contains("cortex init"), "\(args): \(r.err)")
      XCTAssertFalse(r.err.contains("has no output"), "\(args): \(r.err)")
    }
  }

  /// `cortex resume` with nothing paused said "the queue and every group was not paused".
  func testResumeWithNothingPausedSaysSo() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    XCTAssertEqual(c.ok(["resume"]).err, "cortex: nothing was paused\n")
    XCTAssertEqual(c.ok(["pause"]).err, "cortex: the queue paused\n")
    XCTAssertEqual(c.ok(["resume"]).err, "cortex: the queue resumed\n")
    c.ok(["pause", "batch"])
    c.ok(["pause", "llm"])
    XCTAssertEqual(c.ok(["resume"]).err, "cortex: groups batch, llm resumed\n", "a resume of everything names what it resumed")
    XCTAssertEqual(c.ok(["resume", "batch"]).err, "cortex: group batch was not paused\n")
  }

  /// `cortex retry --all-failed` twice submitted every old failure again beside its failed retry,
  /// doubling the work each time; it retries only the newest failure of each chain.
  func testRetryAllFailedTwiceRetriesEachFailureOnce() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let first = c.ok(["submit", "-p", "--wait", "--", "false"], code: 1).out.trimmed
    let retry = c.ok(["retry", "-p", "--all-failed"]).out.trimmed
    XCTAssertEqual(retry.split(separator: "\n").count, 1, retry)
    c.ok(["wait", retry], code: 1)
    let again = c.ok(["retry", "-p", "--all-failed"]).out.trimmed
    XCTAssertEqual(again.split(separator: "\n").count, 1, again)
    let shown = try JSON.parse(Array(c.ok(["--json", "show", again]).out.utf8))
    XCTAssertEqual(shown["spec"]?["retry_of"]?.string, retry, "the retry of the retry, not of \(first)")
    c.ok(["wait", again], code: 1)
    // After a restart the chain is still known: only the newest failure is retried, once.
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])
    let third = c.ok(["retry", "-p", "--all-failed"]).out.trimmed
    XCTAssertEqual(third.split(separator: "\n").count, 1, third)
    let shown3 = try JSON.parse(Array(c.ok(["--json", "show", third]).out.utf8))
    XCTAssertEqual(shown3["spec"]?["retry_of"]?.string, again, "the newest of the chain, not \(first) or \(retry)")
    c.ok(["wait", third], code: 1)
  }

  /// `cortex submit make test` (the `--` forgotten) said only "unexpected argument 'make'"; it
  /// says the command goes after `--` and shows the line to type. Nothing is submitted.
  func testACommandWithoutDashDashShowsWhereItGoes() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let cases: [([String], String)] = [
      (["submit", "make", "test"], "cortex submit [FLAGS] -- make test"),
      (["submit", "--priority", "high", "ls", "-la"], "cortex submit [FLAGS] -- ls -la"),
      (["submit", "echo hi"], "cortex submit [FLAGS] -- echo hi, or as a shell line: cortex submit [FLAGS] --shell 'echo hi'"),
      (["task", "create", "grep", "it's"], "cortex submit [FLAGS] -- grep 'it'\\''s'"),
    ]
    for (args, hint) in cases {
      let r = c.run(args)
      XCTAssertEqual(r.code, 64, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("is not a flag: a command goes after the flags and --, as in: \(hint)\n"), "\(args): \(r.err)")
    }
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" })
  }

  /// A description or progress message with a newline or an escape sequence broke `list`'s row
  /// in two and reached the terminal raw (ESC [31m turned it red) in list, show and tail. They are
  /// written out: `\n`, `\x1b`.
  func testControlCharactersInTaskTextAreWrittenOut() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    // printf turns \\ into one backslash: the task writes the JSON escapes \u001b and \n.
    let report = #"printf '{"progress":0.5,"message":"\\u001b[31mRED\\nnext"}\n' >&$CORTEX_REPORT_FD"#
    let id = c.ok(["submit", "-p", "--wait", "-d", "two\nlines \u{1B}[31mred", "--shell", report]).out.trimmed
    let list = c.ok(["list"]).out
    let show = c.ok(["show", id]).out
    let tail = c.ok(["tail", "--task", id]).out
    for (name, out) in [("list", list), ("show", show), ("tail", tail)] {
      XCTAssertFalse(out.unicodeScalars.contains("\u{1B}"), "\(name) printed an escape: \(out)")
    }
    XCTAssertEqual(list.split(separator: "\n").count, 2, "one header and one row: \(list)")
    XCTAssertTrue(list.contains(#"two\nlines \x1b[31mred"#), list)
    XCTAssertTrue(show.contains(#"description     two\nlines \x1b[31mred"#), show)
    XCTAssertTrue(show.contains(#"message         \x1b[31mRED\nnext"#), show)
    XCTAssertTrue(tail.contains(#"\x1b[31mRED\nnext"#), tail)
  }

  /// `cortex stop --timeout 30s` (the form `submit --timeout` takes) was refused with 64; start,
  /// stop and restart take seconds or a duration.
  func testStartAndStopTakeADurationToo() throws {
    try c.initialize()
    XCTAssertTrue(c.ok(["start", "--workers", "1", "--timeout", "1m"]).err.contains("(pid "), "started")
    XCTAssertTrue(c.ok(["restart"]).err.contains(", 1 worker ready)"), "one worker, not '1 workers'")
    c.ok(["submit", "--", "sleep", "60"])
    c.eventually("the task runs") { c.ok(["list", "--state", "running"]).out.contains("task-000001") }
    let began = Clock.monotonicMs()
    c.ok(["stop", "--timeout", "1s"], timeoutS: 30)
    XCTAssertLessThan(Clock.monotonicMs() - began, 10_000, "stop waited past its 1 s")
    XCTAssertEqual(c.run(["stop", "--timeout", "1s"]).code, 69, "stopping twice: not running")
    let bad = c.run(["start", "--timeout", "soon"])
    XCTAssertEqual(bad.code, 64, bad.err)
    XCTAssertTrue(bad.err.contains("--timeout must be seconds (30) or a duration (30s, 5m)"), bad.err)
  }

  /// `--after 'task-000001, task-000002'` (a space after the comma, as people write lists) was
  /// refused: "depends_on[1]: must be a task id". Spaces around the ids are not part of them.
  func testAfterTakesAListWithSpaces() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let a = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    let b = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    let id = c.ok(["submit", "-p", "--wait", "--after", "\(a), \(b) ,", "--", "true"]).out.trimmed
    let shown = try JSON.parse(Array(c.ok(["--json", "show", id]).out.utf8))
    XCTAssertEqual(shown["spec"]?["depends_on"]?.array?.compactMap(\.string), [a, b])
  }

  /// On a terminal (color on) list's header stood 9 columns left of its rows: the state's color
  /// codes were counted as width. The columns line up once the codes are taken out.
  func testColoredTablesLineUpWithTheirHeader() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--wait", "--priority", "high", "--", "true"])
    let out = c.ok(["--color", "always", "list"]).out
    XCTAssertTrue(out.contains("\u{1B}[32msucceeded"), out)
    let lines = out.split(separator: "\n").map { line in
      // The text a terminal shows: SGR sequences removed.
      var shown = ""
      var inEscape = false
      for ch in line {
        if inEscape { inEscape = !ch.isLetter } else if ch == "\u{1B}" { inEscape = true } else { shown.append(ch) }
      }
      return shown
    }
    let header = try XCTUnwrap(lines.first)
    let row = try XCTUnwrap(lines.dropFirst().first)
    XCTAssertEqual(
      header.range(of: "PRIORITY").map { header.distance(from: header.startIndex, to: $0.lowerBound) },
      row.range(of: "high").map { row.distance(from: row.startIndex, to: $0.lowerBound) }, "\(header)\n\(row)")
  }

  /// `cortex list --state bogus` exited 65, the code for an invalid task spec; a filter is a
  /// usage error (64), named before any daemon is asked, with the states it takes.
  func testAnUnknownListStateIsAUsageError() {
    let r = c.run(["list", "--state", "finished"])
    XCTAssertEqual(r.code, 64, r.err)
    XCTAssertTrue(r.err.contains("--state must be one of active, assigned, cancelled, done, failed"), r.err)
    XCTAssertTrue(c.run(["help", "list"]).out.contains("active: not finished yet; done: finished"))
  }

  /// A 100 KB value in a flag came back whole in its error (100 KB on the terminal for
  /// "not a group name"); a long line of a message keeps its start and end and says what was cut.
  func testAnErrorQuotesAHugeValueShortened() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let huge = String(repeating: "a", count: 100_000)
    for args in [["submit", "--group", huge, "--", "true"], ["submit", "--cwd", "/" + huge, "--", "true"], ["--json", "pause", huge]] {
      let r = c.run(args)
      XCTAssertEqual(r.code, 65, String(r.err.prefix(300)))
      XCTAssertLessThan(r.err.utf8.count, 2000, String(r.err.prefix(300)))
      XCTAssertTrue(r.err.contains("characters cut"), String(r.err.prefix(300)))
      XCTAssertLessThan(r.out.utf8.count, 2000, "the --json error is shortened too")
    }
  }

  /// After kill -9 of the daemon, `cortex stop` said only "not running" while its workers and
  /// their tasks ran on (for orphan_timeout_s); it names them and how to stop them.
  func testStopAfterADaemonDiedNamesTheWorkersStillRunning() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--", "sleep", "60"])
    c.eventually("the task runs") { c.ok(["list", "--state", "running"]).out.contains("task-000001") }
    let pid = try XCTUnwrap(c.daemonPID)
    _ = Processes.signal(pid, Signal.kill)
    c.eventually("the daemon is gone") { !Processes.isAlive(pid) }
    let r = c.run(["stop"])
    XCTAssertEqual(r.code, 69, r.err)
    XCTAssertTrue(r.err.contains("but 1 worker of its last run still runs"), r.err)
    XCTAssertTrue(r.err.contains("cortex start --dir \(c.root), then cortex stop --dir \(c.root)"), r.err)
    c.ok(["start", "--workers", "1"])
    c.ok(["stop", "--timeout", "0"], timeoutS: 30)
    let again = c.run(["stop"])
    XCTAssertEqual(again.code, 69, again.err)
    XCTAssertFalse(again.err.contains("still run"), "nothing is left: \(again.err)")
  }

  /// `cortex pause opneai` (a typo) paused a group nothing uses and said only "paused"; the pause
  /// still holds (a group may be paused before its tasks come) but the typo is pointed out.
  func testPausingAGroupNobodyNamedPointsAtTheTypo() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--wait", "--group", "openai", "--", "true"])
    let typo = c.ok(["pause", "opneai"])
    XCTAssertTrue(typo.err.contains("group opneai paused"), typo.err)
    XCTAssertTrue(typo.err.contains("no task or setting has named group opneai yet; did you mean 'openai'?"), typo.err)
    let known = c.ok(["pause", "openai"])
    XCTAssertEqual(known.err, "cortex: group openai paused\n")
  }

  /// A misspelled field in a --from line (or an inbox file) and a misspelled setting in
  /// config.json named only the unknown word; both name the field or setting meant.
  func testAMisspelledSpecFieldOrSettingSuggestsTheRealOne() throws {
    try c.initialize([("worker", .int(1))])
    let start = c.run(["start"])
    XCTAssertEqual(start.code, 1, start.err)
    XCTAssertTrue(start.err.contains("worker: unknown setting; did you mean workers?"), start.err)
    try c.configure([("workers", .int(1))])
    var cfg = try XCTUnwrap(try FileSystem.read(c.paths.config).flatMap { try JSON.parse($0) }?.object)
    cfg.removeAll { $0.0 == "worker" }
    try FileSystem.writeAtomically(c.paths.config, JSON.object(cfg).encodedBytes())
    c.ok(["start"])
    for (line, hint) in [
      (#"{"comand":["true"]}"#, "comand: unknown field; did you mean command?"),
      (#"{"shell":"true","prority":"high"}"#, "did you mean priority?"),
    ] {
      let r = c.run(["submit", "--from", "-"], input: line + "\n")
      XCTAssertEqual(r.code, 65, r.err)
      XCTAssertTrue(r.err.contains(hint), r.err)
    }
  }

  /// `--dir ~/project` for `--dir ~/project/coordination`: commands told the user to
  /// `cortex start --dir ~/project`, which made a second directory and daemon in the project's
  /// top. They name the directory meant; start refuses (64) and makes nothing.
  func testTheProjectGivenForItsDirectoryNamesTheDirectory() throws {
    let project = c.scratch + "/project"
    try FileSystem.makeDirectory(project)
    c.ok(["--dir", project + "/coordination", "init", "--no-start"])
    for args in [["list"], ["status"], ["submit", "--", "true"]] {
      let r = c.run(raw: ["--dir", project] + args)
      XCTAssertEqual(r.code, 69, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("did you mean --dir \(project)/coordination?"), "\(args): \(r.err)")
      XCTAssertFalse(r.err.contains("start it with"), "\(args): \(r.err)")
    }
    let env = c.run(raw: ["list"], environment: ["CORTEX_DIR=" + project])
    XCTAssertTrue(env.err.contains("did you mean CORTEX_DIR=\(project)/coordination?"), env.err)
    let start = c.run(raw: ["--dir", project, "start"])
    XCTAssertEqual(start.code, 64, start.err)
    XCTAssertTrue(start.err.contains("did you mean --dir \(project)/coordination?"), start.err)
    XCTAssertFalse(FileSystem.exists(project + "/config.json"), "start made a second directory in the project")
    XCTAssertTrue(Processes.belonging(toDirectory: project).isEmpty, "start started a daemon")
  }

  /// `cortex top` where no directory is found told the user to `cortex start --dir
  /// ./coordination` (a new directory below wherever they stood); it says what status says.
  func testTopWithoutADirectoryGivesTheLookupAdvice() {
    for args in [["top", "--once"], ["status"]] {
      let r = c.run(raw: args, directory: c.scratch)
      XCTAssertEqual(r.code, 69, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("no coordination directory here"), "\(args): \(r.err)")
      XCTAssertFalse(r.err.contains("start it with"), "\(args): \(r.err)")
    }
  }
}
