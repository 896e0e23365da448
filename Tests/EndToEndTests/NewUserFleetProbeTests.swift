import CortexCore
import Posix
import XCTest

/// A second new-user probe, of restarts, fleet control and the log's lifecycle (SPEC §13–15).
final class NewUserFleetProbeTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func sleeping(_ seconds: String) -> [ProcessEntry] {
    Processes.all().filter { !$0.isZombie && $0.commandLine == ["sleep", seconds] }
  }

  /// An `on_finish` hook running when `cortex restart` exec'd the daemon was forgotten by the new
  /// program: it ran past `hook_timeout_s`, no `hook.finished` was logged for it, and `cortex stop`
  /// left it running. The new program takes it over: killed at its timeout, and logged.
  func testAHookRunningAcrossARestartIsStillBoundedAndLogged() throws {
    try c.initialize([("on_finish", .string("exec sleep 41.5")), ("hook_timeout_s", .int(3))])
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    c.eventually("the hook runs") { sleeping("41.5").count == 1 }
    c.ok(["restart"])
    c.eventually("the hook is killed at hook_timeout_s after the restart", timeoutS: 15) { sleeping("41.5").isEmpty }
    c.eventually("hook.finished is logged for the hook the old program started") {
      c.events().contains { $0.type == "hook.finished" && $0.taskID == id && $0["reason"]?.string == "timeout" }
    }
    // A hook the new program starts itself, still running at the stop, is killed with it.
    c.ok(["submit", "--wait", "--", "true"])
    c.eventually("the second hook runs") { sleeping("41.5").count == 1 }
    c.ok(["restart"])
    c.ok(["stop"])
    XCTAssertEqual(sleeping("41.5").map(\.pid), [], "no hook outlives the daemon that a restart replaced")
  }

  /// A hook running when its daemon was killed (kill -9) ran on unbounded: nobody enforced
  /// `hook_timeout_s` any more, nor killed it at any exit. It runs under `cortex hook-guard`, which
  /// kills the hook's process group, grandchildren included, when the daemon dies.
  func testAHookDiesWithItsDaemonKilled() throws {
    try c.initialize([
      ("on_finish", .string("sleep 43.5 & sleep 44.5; echo never")), ("hook_timeout_s", .int(60)), ("orphan_timeout_s", .double(0.5)),
    ])
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--wait", "--", "true"])
    c.eventually("the hook runs, with a child of its own in the background") { sleeping("43.5").count == 1 && sleeping("44.5").count == 1 }
    XCTAssertTrue(Processes.signal(try XCTUnwrap(c.daemonPID), Signal.kill))
    let killed = Clock.monotonicMs()
    c.eventually("the hook is gone with its daemon", timeoutS: 5) { sleeping("43.5").isEmpty && sleeping("44.5").isEmpty }
    XCTAssertLessThan(Clock.monotonicMs() - killed, 5000)
    c.eventually("nothing of the pool is left") { c.leftovers.allSatisfy(\.isZombie) }

    // Hooks under the guard behave as before: the outcome in their environment, their exit code
    // and their timeout logged.
    try c.configure([("on_finish", .string("echo \"state=$CORTEX_TASK_STATE\"; exit 3")), ("hook_timeout_s", .int(60))])
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    c.eventually("hook.finished with the hook's exit code") {
      c.events().contains { $0.type == "hook.finished" && $0.taskID == id && $0["exit_code"]?.int == 3 }
    }
    let log = String(decoding: ((try? FileSystem.read(c.paths.daemonLog)) ?? nil) ?? [], as: UTF8.self)
    XCTAssertTrue(log.contains("state=succeeded"), log)
  }

  /// `cortex show` and `submit -v` of a task behind a full group's head promised a start "in
  /// about 0ms" (or "when a worker is free") with idle workers, while the group's limit held it;
  /// only the head's `task.waiting` said why. They name the group's limit instead.
  func testShowOfATaskAFullGroupHoldsNamesTheLimit() throws {
    try c.initialize([("groups", .object([("api", .object([("parallel", .int(1))]))]))])
    c.ok(["start", "--workers", "3"])
    c.ok(["submit", "--wait", "--", "true"])  // so that the daemon has a running estimate
    let running = c.ok(["submit", "-p", "--group", "api", "--", "sleep", "42.5"]).out.trimmed
    c.eventually("the first api task runs") { c.ok(["show", running]).out.contains("state           running") }
    let head = c.ok(["submit", "-p", "--group", "api", "--", "true"]).out.trimmed
    let behind = c.ok(["submit", "-v", "--group", "api", "--", "true"])
    XCTAssertTrue(
      behind.err.contains("queued at position 2, estimated start when its group can start it (group api runs 1 of its 1 at once)"),
      behind.err)
    for id in [head, behind.out.trimmed] {
      let shown = c.ok(["show", id]).out
      XCTAssertFalse(shown.contains("in about"), shown)
      XCTAssertTrue(shown.contains("estimated start when its group can start it (group api runs 1 of its 1 at once)"), shown)
    }
    // Another group's task still starts at once (no head-of-line blocking), and says nothing of api.
    let other = c.ok(["submit", "-v", "--", "sleep", "42.5"])
    XCTAssertFalse(other.err.contains("group api"), other.err)
    c.ok(["cancel", running, other.out.trimmed])
    c.ok(["wait", head, behind.out.trimmed])
  }

  /// SIGHUP with config.json gone (moved away while being edited, say) took the built-in
  /// defaults as the new config and logged `daemon.reloaded`: group limits and rates, hooks and
  /// the token budget silently went back to their defaults. A missing file is one the daemon
  /// cannot take: it keeps the old config and says why, as for a file that does not parse.
  func testSIGHUPWithoutAConfigFileKeepsTheConfig() throws {
    try c.initialize([("token_budget_total", .int(5000)), ("groups", .object([("api", .object([("parallel", .int(1))]))]))])
    c.ok(["start", "--workers", "1"])
    let saved = c.scratch + "/config.saved"
    try FileSystem.rename(c.paths.config, saved)
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    _ = Processes.signal(pid, Signal.hup)
    c.eventually("a daemon.warning names the missing file") {
      c.events().contains {
        $0.type == "daemon.warning" && $0["reason"]?.string == "config_invalid"
          && ($0["detail"]?.string ?? "").contains("config.json does not exist")
      }
    }
    XCTAssertFalse(c.events().contains { $0.type == "daemon.reloaded" }, "nothing was reloaded")
    XCTAssertTrue(c.ok(["budget"]).out.contains("total      5000"), "the budget stays")
    XCTAssertTrue(c.ok(["group"]).out.contains("0/1"), "the group keeps its limit")
    try FileSystem.rename(saved, c.paths.config)
  }

  /// `cortex restart` after an edit that broke config.json took the daemon down: the exec'd
  /// program refused the file and exited, the running task's worker was orphaned, and every
  /// command said the daemon was not running. The restart is refused instead, naming the
  /// problem (by the CLI, and by the daemon for a bare SIGUSR2), and the daemon carries on.
  func testARestartWithABrokenConfigIsRefusedAndTheDaemonCarriesOn() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--", "sleep", "43.5"]).out.trimmed
    c.eventually("the task runs") { c.ok(["show", id]).out.contains("state           running") }
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    let good = try XCTUnwrap(try FileSystem.read(c.paths.config))
    try c.configure([("workers", .string("many"))])
    let r = c.run(["restart"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("not restarting:") && r.err.contains("workers: must be a whole number"), r.err)
    XCTAssertTrue(Processes.signal(pid, Signal.usr2))
    c.eventually("the daemon refuses the SIGUSR2 and says why") {
      c.events().contains { $0.type == "daemon.warning" && $0["reason"]?.string == "restart_refused" }
    }
    XCTAssertFalse(c.events().contains { $0.type == "daemon.restarting" }, "no exec was tried")
    XCTAssertEqual(c.daemonPID, pid)
    XCTAssertTrue(c.ok(["show", id]).out.contains("state           running"), "the task runs on")
    try FileSystem.writeAtomically(c.paths.config, good)
    c.ok(["restart"])
    c.ok(["cancel", id])
  }

  /// A task that ended while no daemon ran was recorded as ending when the next daemon adopted
  /// its worker: a 1.5 s task adopted seconds later showed that whole gap as its duration (show,
  /// its terminal event, the hooks' CORTEX_DURATION_MS, the type's estimate). It keeps the end
  /// its worker saw, also after the log is replayed.
  func testATaskThatEndedWhileNoDaemonRanKeepsItsRealDuration() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--", "sleep", "1.5"]).out.trimmed
    c.eventually("the task runs") { c.ok(["show", id]).out.contains("state           running") }
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the daemon is gone") { !Processes.isAlive(pid) }
    sleepMs(4500)
    c.ok(["start", "--workers", "1"])
    func duration() throws -> Int64 {
      let t = try JSON.parse(Array(c.ok(["--json", "show", id]).out.utf8))
      return (t["ended_ms"]?.int ?? 0) - (t["started_ms"]?.int ?? 0)
    }
    let done = c.events().first { $0.type == "task.succeeded" && $0.taskID == id }
    XCTAssertLessThan(done?["duration_ms"]?.int ?? .max, 3000, "\(String(describing: done))")
    XCTAssertNotNil(done?["ended_ms"]?.int, "the terminal event carries the worker's end")
    XCTAssertLessThan(try duration(), 3000)
    c.ok(["stop"])
    try? FileSystem.remove(c.paths.root + "/task-queue.json")  // replay the log, not the snapshot
    try? FileSystem.remove(c.paths.root + "/task-queue.prev.json")
    c.ok(["start", "--workers", "1"])
    XCTAssertLessThan(try duration(), 3000, "after a replay of the log")
  }

  /// `cortex stop` whose daemon was killed during the drain printed "daemon stopped" and exited
  /// 0, while the running task went on in an orphaned worker (nothing requeued, nothing reaped).
  /// It fails and names what still runs, as a stop after a daemon died does.
  func testAStopWhoseDaemonDiesMidDrainSaysWhatStillRuns() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--", "sleep", "44.5"]).out.trimmed
    c.eventually("the task runs") { c.ok(["show", id]).out.contains("state           running") }
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    let errPath = c.scratch + "/stop.err"
    let e = try FileDescriptor.open(errPath, [.writeOnly, .create, .truncate])
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"]
    let stop = try Processes.spawn(
      [Cortex.binary, "--dir", c.root, "stop", "--timeout", "60"], environment: env, stdin: nil, stdout: nil, stderr: e,
      newProcessGroup: false)
    e.close()
    c.eventually("the stop waits for the task") {
      String(decoding: (try? FileSystem.read(errPath)) ?? nil ?? [], as: UTF8.self).contains("stopping: waiting for 1 running task")
    }
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    let status = Processes.wait(stop)
    let said = String(decoding: (try FileSystem.read(errPath)) ?? [], as: UTF8.self)
    XCTAssertEqual(status, .exited(1), said)
    XCTAssertTrue(said.contains("exited before it finished the stop"), said)
    XCTAssertTrue(said.contains("1 worker of its last run still runs"), said)
    XCTAssertFalse(said.contains("daemon stopped"), said)
    c.ok(["start", "--workers", "1"])
    c.ok(["cancel", id])
  }

  /// The same for a task that waits for tokens a running task has reserved: `show` said
  /// "estimated start in about 0ms" beside "waiting token_budget_exhausted".
  func testShowOfATaskWaitingForTokensSaysSo() throws {
    try c.initialize([("token_budget_total", .int(1000))])
    c.ok(["start", "--workers", "2"])
    c.ok(["submit", "--wait", "--", "true"])  // so that the daemon has a running estimate
    let running = c.ok(["submit", "-p", "--tokens", "600", "--", "sleep", "45.5"]).out.trimmed
    c.eventually("the first task runs") { c.ok(["show", running]).out.contains("state           running") }
    let waiting = c.ok(["submit", "-v", "--tokens", "600", "--", "true"])
    let expected = "when tokens come back (it needs 600, 400 are available and 600 reserved by running tasks)"
    XCTAssertTrue(waiting.err.contains("queued at position 1, estimated start " + expected), waiting.err)
    let shown = c.ok(["show", waiting.out.trimmed]).out
    XCTAssertTrue(shown.contains("position 1; estimated start " + expected), shown)
    XCTAssertFalse(shown.contains("in about"), shown)
    c.ok(["cancel", running])
    c.ok(["wait", waiting.out.trimmed])
  }

  /// A worker type with both `command` and `shell` started, and its tasks ran the command: the
  /// shell template was dropped without a word (a task spec with both is refused). The start is
  /// refused naming the type, and nothing else changes.
  func testAWorkerTypeWithBothCommandAndShellIsRefused() throws {
    try c.initialize([
      (
        "worker_types",
        .object([("review", .object([("command", .array([.string("echo"), .string("{description}")])), ("shell", .string("echo x"))]))])
      )
    ])
    let r = c.run(["start", "--workers", "1"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("worker_types.review: give only one of command or shell"), r.err)
    XCTAssertFalse(FileSystem.exists(c.paths.socket), "no daemon runs")
  }

  /// `cortex stop` waits for the running tasks, but the hook of a task that ended during the
  /// drain was killed the moment the daemon exited, right after it started: a notification
  /// never went out, and no hook.finished was logged. Hooks now run on within hook_timeout_s.
  func testAGracefulStopLetsTheLastTasksHooksFinish() throws {
    let out = c.scratch + "/hooks.out"
    let hook = "case $CORTEX_TASK_STATE in succeeded) sleep 0.5; echo \"$CORTEX_TASK_ID\" >> \(out);; *) exec sleep 46.5;; esac"
    try c.initialize([("on_finish", .string(hook)), ("hook_timeout_s", .int(3))])
    c.ok(["start", "--workers", "2"])
    let ok = c.ok(["submit", "-p", "--", "sleep", "1"]).out.trimmed
    let bad = c.ok(["submit", "-p", "--shell", "sleep 1; exit 1"]).out.trimmed
    c.eventually("both run") { c.ok(["list", "--state", "running"]).out.split(separator: "\n").count == 3 }
    let t0 = Clock.monotonicMs()
    c.ok(["stop"])
    XCTAssertLessThan(Clock.monotonicMs() - t0, 15_000, "a hanging hook holds the stop for hook_timeout_s at most")
    XCTAssertEqual(String(decoding: (try FileSystem.read(out)) ?? [], as: UTF8.self), ok + "\n", "the hook finished")
    let finished = c.events().filter { $0.type == "hook.finished" }
    XCTAssertEqual(finished.first { $0.taskID == ok }?["reason"]?.string, "exited")
    XCTAssertEqual(finished.first { $0.taskID == bad }?["reason"]?.string, "timeout")
    XCTAssertEqual(sleeping("46.5").count, 0, "the hanging hook was killed")
  }

  /// `cortex start` in a directory whose config.json was lost (but whose tasks and log are there)
  /// wrote the defaults in its place and started: groups, hooks, budgets and worker types went
  /// back to the defaults without a word. It refuses, naming the file and how to write the
  /// defaults on purpose, and writes nothing.
  func testAStartWithoutTheConfigOfAnExistingDirectoryIsRefused() throws {
    try c.initialize([("token_budget_total", .int(5000))])
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--wait", "--", "true"]).out.trimmed
    c.ok(["stop"])
    try FileSystem.remove(c.paths.config)
    let r = c.run(["start", "--workers", "1"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("config.json is missing, but \(c.root) holds a daemon's state"), r.err)
    XCTAssertTrue(r.err.contains("cortex init --force --no-start --dir \(c.root)"), r.err)
    XCTAssertFalse(FileSystem.exists(c.paths.config), "nothing was written in its place")
    XCTAssertFalse(FileSystem.exists(c.paths.socket), "no daemon runs")
    // The advice works, and the tasks are all there.
    c.ok(["init", "--force", "--no-start"])
    c.ok(["start", "--workers", "1"])
    XCTAssertTrue(c.ok(["show", id]).out.contains("state           succeeded"))
  }

  /// And for a low task while only the workers `reserve_critical` keeps idle are free: "in about
  /// 0ms" beside "waiting reserved_for_critical".
  func testShowOfATaskTheCriticalReserveHoldsSaysSo() throws {
    try c.initialize([("reserve_critical", .int(1))])
    c.ok(["start", "--workers", "2"])
    c.ok(["submit", "--wait", "--", "true"])  // so that the daemon has a running estimate
    let running = c.ok(["submit", "-p", "--priority", "low", "--", "sleep", "47.5"]).out.trimmed
    c.eventually("the first task runs") { c.ok(["show", running]).out.contains("state           running") }
    let held = c.ok(["submit", "-p", "--priority", "low", "--", "true"]).out.trimmed
    let shown = c.ok(["show", held]).out
    XCTAssertTrue(
      shown.contains("estimated start when a worker is free beyond the 1 kept idle for critical tasks (reserve_critical)"), shown)
    XCTAssertFalse(shown.contains("in about"), shown)
    c.ok(["cancel", running])
    c.ok(["wait", held])
  }

  /// `cortex restart` while a stop drained waited out its whole timeout (the stopping daemon
  /// ignores SIGUSR2) and then said the daemon "exited during the restart". It says at once that
  /// a stop is under way.
  func testARestartDuringAStopSaysTheDaemonIsStopping() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--", "sleep", "48.5"]).out.trimmed
    c.eventually("the task runs") { c.ok(["show", id]).out.contains("state           running") }
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") }
    let stop = try Processes.spawn(
      [Cortex.binary, "--dir", c.root, "stop", "--timeout", "60"], environment: env, stdin: nil, stdout: nil, stderr: nil,
      newProcessGroup: false)
    c.eventually("the daemon drains") { c.ok(["--json", "status"]).out.contains("\"draining\"") }
    let t0 = Clock.monotonicMs()
    let r = c.run(["restart", "--timeout", "20"])
    XCTAssertLessThan(Clock.monotonicMs() - t0, 5000, "answered at once")
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("is stopping (draining"), r.err)
    c.ok(["cancel", id])
    _ = Processes.wait(stop)
  }
}
