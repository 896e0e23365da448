import CortexCore
import Posix
import XCTest

// What a new user tripped over in one sitting (show after a restart, --sla, --label, PATH, short
// task ids, doctor, init, tail): one class per kind of surprise, each run against the real binary.

/// What changed about finished tasks once the daemon had been stopped and started.
final class NewUserRestartTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// `cortex show` of a task that ended before the last start (answered from its files) said
  /// `attempt 3 of 1` for a task given three attempts, and lost its description and priority:
  /// result.json holds neither, and the answer took nothing from the spec beside it.
  func testShowAfterARestartKeepsAttemptsDescriptionAndPriority() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(
      ["submit", "-p", "--wait", "--retries", "2", "--priority", "high", "-d", "always fails", "--shell", "exit 3"], code: 3
    ).out.trimmed
    let before = c.ok(["show", id]).out
    XCTAssertTrue(before.contains("attempt         3 of 3\n"), before)
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])
    let after = c.ok(["show", id]).out
    for row in ["attempt         3 of 3\n", "description     always fails\n", "priority        high\n", "reason          exit_code\n"] {
      XCTAssertTrue(after.contains(row), "no '\(row.trimmed)' after the restart:\n\(after)")
    }
  }
}

/// `cortex help submit` said `--sla DUR` meant "must start within DUR"; the daemon refuses a task
/// whose estimated wait plus run ends after the deadline, so a 500 ms SLA refused a task that a
/// free worker would have started at once. The help says what is checked.
final class NewUserSLATests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testTheSLAHelpSaysWhatAdmissionChecks() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    c.ok(["submit", "--wait", "--", "sleep", "1"])
    let r = c.ok(["submit", "--sla", "500ms", "--", "true"], code: 75)
    XCTAssertTrue(r.err.contains("sla_unmeetable") && r.err.contains("estimated to finish"), r.err)
    let help = c.ok(["help", "submit"]).out
    XCTAssertFalse(help.contains("must start within"), help)
    XCTAssertTrue(help.contains("--sla DUR                must be done within DUR"), help)
  }
}

/// `cortex help submit` called `--label` "a label to filter and group by", but `cortex list` had
/// no way to filter by one (`unknown option --label`) and its `--json` rows did not carry them.
final class NewUserLabelTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testListPicksOutTasksByLabel() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let infra = c.ok(["submit", "-p", "--label", "team=infra", "--label", "ci=yes", "--", "true"]).out.trimmed
    let web = c.ok(["submit", "-p", "--label", "team=web", "--", "true"]).out.trimmed
    c.ok(["submit", "-p", "--", "true"])
    func ids(_ args: [String]) -> [String] {
      let r = c.ok(["--json", "list"] + args)
      return (try? JSON.parse(Array(r.out.utf8)))?.array?.compactMap { $0["id"]?.string } ?? []
    }
    XCTAssertEqual(ids(["--label", "team=infra"]), [infra])
    XCTAssertEqual(ids(["--label", "team"]), [infra, web])
    XCTAssertEqual(ids(["--label", "team", "--label", "ci=yes"]), [infra])
    XCTAssertEqual(ids(["--label", "team=nobody"]), [])
    XCTAssertEqual(ids(["--label", "team", "-n", "1"]), [web])
    let row = try XCTUnwrap(try JSON.parse(Array(c.ok(["--json", "list", "--label", "ci"]).out.utf8)).array?.first)
    XCTAssertEqual(row["labels"]?["team"]?.string, "infra", "\(row)")
    XCTAssertTrue(c.ok(["list", "--label", "team=web"]).out.contains(web))
    let bad = c.run(["list", "--label", "=x"])
    XCTAssertEqual(bad.code, 64)
    XCTAssertTrue(bad.err.contains("--label needs KEY or KEY=VALUE, not '=x'"), bad.err)
  }
}

/// `cortex submit -- mytool` from a shell whose PATH has `mytool` failed with "command not
/// found" (exit 127), while `--shell mytool` ran it: the worker's posix_spawnp searched the PATH
/// of the worker (whoever started the daemon), not the submitter's environment the task is given.
final class NewUserPathTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testACommandIsFoundOnTheTasksOwnPath() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let bin = c.scratch + "/bin"
    try FileSystem.makeDirectories(bin)
    try FileSystem.writeAtomically(bin + "/mytool", Array("#!/bin/sh\necho \"ran $1\"\n".utf8), durable: false)
    try FileSystem.setMode(bin + "/mytool", 0o755)
    let path = Environment.get("PATH") ?? "/usr/bin:/bin"
    // The submitter's PATH (a virtualenv activated after the daemon started), then --env PATH.
    let inherited = c.run(
      raw: ["--dir", c.root, "submit", "-p", "--wait", "--", "mytool", "one"], environment: ["PATH=\(bin):\(path)"])
    XCTAssertEqual(inherited.code, 0, inherited.err)
    XCTAssertEqual(c.ok(["log", inherited.out.trimmed]).out, "ran one\n")
    let given = c.ok(["submit", "-p", "--wait", "--no-env", "--env", "PATH=/usr/bin:/bin:\(bin)", "--", "mytool", "two"]).out.trimmed
    XCTAssertEqual(c.ok(["log", given]).out, "ran two\n")
    // Not on the task's PATH: still refused as before, naming it.
    let missing = c.run(["submit", "--wait", "--", "no-such-tool-\(Processes.currentID)"])
    XCTAssertEqual(missing.code, 127, missing.err)
    XCTAssertTrue(missing.err.contains("spawn_failed"), missing.err)
  }
}

/// `cortex show task-3`, `log task-3` and `wait task-3` take a task id without its zeros;
/// `cortex tail --task task-3` printed nothing (exit 0), comparing the text with the log's
/// `task-000003`.
final class NewUserShortIDTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testTailTakesAShortTaskIDAsShowDoes() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    XCTAssertEqual(id, "task-000001")
    XCTAssertTrue(c.ok(["show", "task-1"]).out.contains("id              task-000001"))
    let full = c.ok(["tail", "--task", id]).out
    XCTAssertTrue(full.contains("task.succeeded"), full)
    XCTAssertEqual(c.ok(["tail", "--task", "task-1"]).out, full)
  }
}

extension NewUserShortIDTests {
  /// `cortex cancel task-2` of a task that had succeeded printed "task-2 cancelled", and of an
  /// unknown one "task-9999 cancelled": the answer's results are keyed task-000002, and the CLI
  /// looked them up by the text typed.
  func testCancelOfAShortIDSaysWhatHappened() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "-p", "--wait", "--", "true"])
    let done = c.ok(["cancel", "task-1"])
    XCTAssertEqual(done.err, "task-000001 already succeeded\n")
    let unknown = c.run(["cancel", "task-9999"])
    XCTAssertEqual(unknown.code, 65)
    XCTAssertEqual(unknown.err, "cortex: id: unknown task task-009999 (the newest is task-000001)\n")
    let running = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    XCTAssertEqual(c.ok(["cancel", "task-2", running]).err, "\(running) cancelled\n", "the same task named twice counts once")
  }

  /// `cortex cancel` of a running task together with an unknown id (or one already finished)
  /// printed every id as cancelled and exited 0: the daemon answered a cancel that waited for a
  /// running task with `{"ok":true}` alone, dropping the results of the other ids.
  func testCancelOfARunningTaskWithAnUnknownOrFinishedOneNamesEach() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let done = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    let running = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    c.eventually("\(running) runs") { c.events().contains { $0.taskID == running && $0.type == "task.started" } }
    let r = c.run(["cancel", "task-999999", running, done])
    XCTAssertEqual(r.code, 65, "an unknown id among them: \(r.err)")
    XCTAssertEqual(
      r.err, "\(running) cancelled\n\(done) already succeeded\ncortex: id: unknown task task-999999 (the newest is \(running))\n")
    let again = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    c.eventually("\(again) runs") { c.events().contains { $0.taskID == again && $0.type == "task.started" } }
    let json = c.ok(["--json", "cancel", again, done])
    let v = try JSON.parse(Array(json.out.utf8))
    XCTAssertEqual(v["results"]?[again]?.string, "cancelled", json.out)
    XCTAssertEqual(v["results"]?[done]?.string, "already succeeded", json.out)
    // An unknown id is an error (65): with --json it says "ok":false on stdout, as every error does (README).
    let bad = c.run(["--json", "cancel", "task-999999", done])
    XCTAssertEqual(bad.code, 65, bad.err)
    let b = try JSON.parse(Array(bad.out.utf8))
    XCTAssertEqual(b["ok"]?.bool, false, bad.out)
    XCTAssertEqual(b["code"]?.int, 65, bad.out)
    XCTAssertEqual(b["field"]?.string, "id", bad.out)
    XCTAssertEqual(b["error"]?.string, "id: unknown task task-999999 (the newest is \(again))", bad.out)
    XCTAssertEqual(b["results"]?[done]?.string, "already succeeded", bad.out)
  }

  /// `cortex edit task-6` said "task-6 changed", not the id the log, list and show use.
  func testEditOfAShortIDNamesTheTaskAsTheLogDoes() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["pause"])
    let id = c.ok(["submit", "-p", "--", "true"]).out.trimmed
    XCTAssertEqual(c.ok(["edit", "task-1", "--priority", "high"]).err, "cortex: \(id) changed: priority\n")
    c.ok(["resume"])
  }

  /// `cortex edit` to the values a task already has said "changed: priority" and logged a
  /// task.edited that changed nothing; it names only what changed, compared unredacted (a new
  /// secret value is a change its redacted form hides).
  func testAnEditNamesOnlyWhatChanged() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["pause"])
    let id = c.ok(["submit", "-p", "--priority", "medium", "--env", "API_TOKEN=sk-first0123456789abcdef", "--", "true"]).out.trimmed
    XCTAssertEqual(c.ok(["edit", id, "--priority", "medium"]).err, "cortex: \(id) unchanged: it already has that value\n")
    XCTAssertEqual(c.ok(["edit", id, "--priority", "high", "--label", "k=v"]).err, "cortex: \(id) changed: priority, labels\n")
    XCTAssertEqual(c.ok(["edit", id, "--priority", "high", "--label", "k=w"]).err, "cortex: \(id) changed: labels\n")
    XCTAssertEqual(
      c.ok(["edit", id, "--env", "API_TOKEN=sk-second0123456789abcdef"]).err, "cortex: \(id) changed: env\n", "a new secret value")
    let edits = c.ok(["--json", "tail", "--task", id, "--type", "task.edited"]).out.split(separator: "\n")
    XCTAssertEqual(edits.count, 3, "the edit that changed nothing is not a decision: \(edits)")
    c.ok(["resume"])
  }

  /// `cortex cancel` of many ids (`cortex kill $(...)` over a big queue) looked each one's result
  /// up by a search through the answer: 15,000 ids took 9 s of the CLI's CPU before it printed
  /// anything (debug build). It answers in well under a second now.
  func testCancelOfManyIdsAnswersAtOnce() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let ids = (1...20_000).map { TaskID.format($0) }
    let t0 = Clock.monotonicMs()
    let r = c.run(["cancel"] + ids)
    XCTAssertEqual(r.code, 65)
    XCTAssertLessThan(Clock.monotonicMs() - t0, 5_000, "cancel of 20,000 ids")
    // One line naming them (shortened past 1,000 characters, as every message is).
    let lines = r.err.split(separator: "\n")
    XCTAssertEqual(lines.count, 1, r.err.prefix(300) + "")
    XCTAssertTrue(r.err.hasPrefix("cortex: id: unknown task task-000001, task-000002, "), r.err.prefix(300) + "")
    XCTAssertTrue(r.err.hasSuffix("task-020000 (no task has been submitted yet)\n"), r.err.suffix(300) + "")
  }
}

/// `cortex show` of a finished task said its reason word but not the sentence `cortex wait` and
/// `tail` give with it (the terminal event's `detail`): a timed-out task showed `reason timeout`
/// without the limit, a budget stop `token_budget_exceeded` without what it used (docs/agents.md
/// says show prints it).
final class NewUserShowDetailTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testShowOfAFinishedTaskGivesItsDetail() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let slow = c.ok(["submit", "-p", "--timeout", "1s", "--", "sleep", "30"]).out.trimmed
    XCTAssertEqual(c.run(["wait", slow]).code, 124)
    let v = try JSON.parse(Array(c.ok(["--json", "show", slow]).out.utf8))
    XCTAssertEqual(v["detail"]?.string, "ran longer than 1000 ms", v.encoded())
    XCTAssertTrue(c.ok(["show", slow]).out.contains("\ndetail          ran longer than 1000 ms\n"))
    let over = c.ok(["submit", "-p", "--tokens", "10", "--shell", "echo '{\"tokens_used\": 50}' >&$CORTEX_REPORT_FD; sleep 30"]).out.trimmed
    XCTAssertEqual(c.run(["wait", over]).code, 143, "stopped by SIGTERM")
    let o = try JSON.parse(Array(c.ok(["--json", "show", over]).out.utf8))
    XCTAssertEqual(o["reason"]?.string, "token_budget_exceeded", o.encoded())
    XCTAssertEqual(o["detail"]?.string, "used 50 of 10 tokens", o.encoded())
    let running = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    c.eventually("\(running) runs") { c.events().contains { $0.taskID == running && $0.type == "task.started" } }
    XCTAssertNil(try JSON.parse(Array(c.ok(["--json", "show", running]).out.utf8))["detail"], "no detail before the end")
    c.ok(["cancel", running])
  }
}

/// `cortex init --cluster DSN` in a directory already initialized wrote the "cluster" setting
/// into its config.json, said "config.json kept", and left a running single-host daemon
/// untold: the user believed the node had joined. It says what it changed, and the running
/// daemon reads the file and says it stays what it is until a stop and a start (as `init
/// --force --cluster` does). No database is needed: the setting is only written here.
final class NewUserInitClusterTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testInitClusterOnAnInitializedDirectorySaysWhatItChangedAndTellsTheRunningDaemon() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let dsn = "postgresql://cortex@127.0.0.1:1/cortex"
    for (args, node) in [(["--no-start"], "n1"), (["--yes"], "n2")] {
      let r = c.ok(["init"] + args + ["--cluster", dsn, "--node", node])
      XCTAssertTrue(r.err.contains("config.json kept but for its \"cluster\" setting, now node \(node)"), r.err)
      XCTAssertTrue(
        r.err.contains("\"cluster\" is read at start only: this daemon stays a single host until cortex stop, then cortex start"),
        r.err)
      let config = try JSON.parse(XCTUnwrap(FileSystem.read(c.paths.config)))
      XCTAssertEqual(config["cluster"]?["node"]?.string, node)
    }
    XCTAssertEqual(c.events().filter { $0.type == "daemon.warning" && $0["reason"]?.string == "cluster_changed" }.count, 2)
    // status tells the running daemon's mode, not config.json's: it showed node n2 of a cluster
    // (its budget "the cluster's") for the single host still running.
    let status = c.ok(["status"]).out
    XCTAssertTrue(status.contains("budget     "), status)
    XCTAssertFalse(status.contains("cluster    node"), status)
    XCTAssertTrue(status.contains("config.json makes this directory cluster node n2, but the running daemon is a single host"), status)
    let j = try JSON.parse(Array(c.ok(["--json", "status"]).out.utf8))
    XCTAssertNil(j["cluster"], "\(j)")
    XCTAssertNotNil(j["budget"]?["total"], "\(j)")
  }
}

/// A typo in config.json kept `cortex start` from starting the daemon, and `cortex doctor`, the
/// command a user runs next, found everything ok and exited 0: it did not read the config.
final class NewUserDoctorTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testDoctorChecksTheConfigTheNextStartReads() throws {
    try c.initialize([("workers", .int(2))])
    let healthy = c.ok(["doctor"])
    XCTAssertTrue(healthy.out.contains("ok    config.json valid: 2 workers"), healthy.out)
    try c.configure([("workerz", .int(2))])
    XCTAssertNotEqual(c.run(["start"]).code, 0)
    let r = c.run(["doctor"])
    XCTAssertEqual(r.code, 1, r.out)
    XCTAssertTrue(
      r.out.contains("FAIL  config.json: workerz: unknown setting; did you mean workers?; cortex start refuses it"), r.out)
  }
}

extension NewUserDoctorTests {
  /// `cortex init --yes --no-start` (the usage says `[--yes | --no-start]`) quietly did the files
  /// only; it is a usage error naming both, and nothing is written.
  func testInitRefusesYesWithNoStart() throws {
    let r = c.run(["init", "--yes", "--no-start"])
    XCTAssertEqual(r.code, 64, r.err)
    XCTAssertTrue(r.err.contains("--yes starts the daemon and --no-start does not: give one of them"), r.err)
    XCTAssertFalse(FileSystem.exists(c.paths.config), "nothing is written")
  }
}

extension NewUserPathTests {
  /// A task whose working directory was removed between its submit and its start failed with
  /// "command not found: pwd" (the spawn's chdir fails with ENOENT too), which sent a user to
  /// look at PATH. It says the directory is gone.
  func testAWorkingDirectoryRemovedBeforeTheStartIsNamed() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let dir = c.scratch + "/workdir"
    try FileSystem.makeDirectories(dir)
    c.ok(["pause"])
    let id = c.ok(["submit", "-p", "--cwd", dir, "--", "pwd"]).out.trimmed
    FileSystem.removeTree(dir)
    c.ok(["resume"])
    let r = c.run(["wait", id])
    XCTAssertEqual(r.code, 127, r.err)
    let log = c.run(["log", id]).out
    XCTAssertTrue(log.contains("cannot run pwd in \(dir): the task's working directory is gone"), log)
    XCTAssertFalse(log.contains("command not found"), log)
  }
}

extension NewUserShortIDTests {
  /// `cortex tail --type ''` (an unset variable) printed nothing and exited 0, as if the log were
  /// empty; `list --type ''` is refused. It is a usage error too.
  func testTailRefusesAnEmptyType() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let r = c.run(["tail", "--type", ""])
    XCTAssertEqual(r.code, 64, r.out)
    XCTAssertTrue(r.err.contains("--type needs an event type or a glob like 'task.*', not an empty string"), r.err)
  }
}
