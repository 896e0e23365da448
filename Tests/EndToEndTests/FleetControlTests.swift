import CortexCore
import Posix
import XCTest

/// Groups, pause/resume, retry/edit/kill, rate-limited reports and hooks through the real binary
/// (SPEC §15).
final class FleetControlTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// Live processes whose command line is exactly `sleep SECONDS` (the tasks of this test).
  func sleeping(_ seconds: String) -> Int {
    Processes.all().filter { !$0.isZombie && $0.commandLine == ["sleep", seconds] }.count
  }

  func ids(_ r: Cortex.Run) -> [String] { r.out.split(separator: "\n").map { String($0).trimmed }.filter { !$0.isEmpty } }

  /// A group's `parallel` limits real processes (counted in /proc); another group's tasks go past
  /// a full group; `cortex group set` raises the limit live; `list --group` picks the group.
  func testGroupLimitsRealProcessesWithoutBlockingOtherGroups() throws {
    try c.initialize([("groups", .object([("two", .object([("parallel", .int(2))]))]))])
    c.ok(["start", "--workers", "8"])
    var two: [String] = []
    for _ in 0..<5 { two += ids(c.ok(["submit", "--group", "two", "--", "sleep", "31.25"])) }
    let other = ids(c.ok(["submit", "--", "sleep", "31.5"])) + ids(c.ok(["submit", "--", "sleep", "31.5"]))
    c.eventually("both default-group tasks run although group two is full") { sleeping("31.5") == 2 }
    c.eventually("group two runs two") { sleeping("31.25") == 2 }
    // Over a second, never more than two of group two.
    let until = Clock.monotonicMs() + 1000
    while Clock.monotonicMs() < until {
      XCTAssertLessThanOrEqual(sleeping("31.25"), 2, "group two is over its limit")
      sleepMs(20)
    }
    let waiting = c.events().filter { $0.type == "task.waiting" && $0["reason"]?.string == "group_full" }
    XCTAssertFalse(waiting.isEmpty, "the held task says why")
    let listed = try JSON.parse(Array(c.ok(["--json", "list", "--group", "two"]).out.utf8))
    XCTAssertEqual(listed.array?.count, 5)
    XCTAssertEqual(Set(listed.array?.compactMap { $0["id"]?.string } ?? []), Set(two))
    c.ok(["group", "set", "two", "--parallel", "4"])
    c.eventually("group two runs four after group set") { sleeping("31.25") == 4 }
    let groups = c.ok(["group"]).out
    XCTAssertTrue(groups.contains("two"), groups)
    XCTAssertTrue(groups.contains("4/4"), groups)
    c.eventually("metrics.prom has the group") {
      let m = String(decoding: ((try? FileSystem.read(c.paths.metrics)) ?? nil) ?? [], as: UTF8.self)
      return m.contains(#"cortex_group_running{group="two"} 4"#)
    }
    c.ok(["cancel"] + two + other)
  }

  /// A paused queue stays paused across kill -9 and a new start; resume runs what waited.
  func testPauseSurvivesKill9() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    c.ok(["pause"])
    c.ok(["pause", "batch"])
    let a = ids(c.ok(["submit", "--shell", "true"]))
    let b = ids(c.ok(["submit", "--group", "batch", "--shell", "true"]))
    sleepMs(300)
    XCTAssertEqual(c.events().filter { $0.type == "task.started" }.count, 0, "nothing starts while paused")
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the daemon is gone") { !Processes.isAlive(pid) }
    // Its workers outlive it (SPEC §14) and the next daemon re-adopts them.
    c.ok(["start", "--workers", "2"])
    sleepMs(500)
    XCTAssertEqual(c.events().filter { $0.type == "task.started" }.count, 0, "still paused after the restart")
    // status reads groups.json, which the daemon rewrites from its loop (not at once on a start).
    c.eventually("status shows the paused queue") { c.ok(["status"]).out.contains("the whole queue") }
    let st = try JSON.parse(Array(c.ok(["--json", "status"]).out.utf8))
    XCTAssertEqual(st["queue_paused"]?.bool, true)
    c.ok(["resume", "default"])
    c.ok(["resume"])
    c.ok(["wait"] + a + b, timeoutS: 30)
  }

  /// A SIGHUP puts the config's `parallel` back in place of a limit set live (docs/fleet.md), but
  /// logged nothing: a kill -9 after it replayed the old `group set` and the dropped limit came
  /// back. The reload's change is a logged decision (`group.updated`, reason `config_reloaded`)
  /// that recovery replays; a limit set live after it holds again.
  func testAConfigReloadThatDropsALiveLimitIsLoggedAndSurvivesKill9() throws {
    try c.initialize([("groups", .object([("api", .object([("parallel", .int(2))]))]))])
    c.ok(["start", "--workers", "2"])
    c.ok(["group", "set", "api", "--parallel", "5"])
    c.ok(["group", "set", "other", "--parallel", "3"])
    let pid = try XCTUnwrap(c.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.hup))
    c.eventually("the daemon reloads config.json") { c.events().contains { $0.type == "daemon.reloaded" } }
    let reloaded = c.events().filter { $0.type == "group.updated" && $0["reason"]?.string == "config_reloaded" }
    XCTAssertEqual(
      Set(reloaded.map { "\($0["group"]?.string ?? "?") \($0["parallel_from"]?.int ?? -1)→\($0["parallel"]?.int ?? -1)" }),
      ["api 5→2", "other 3→0"])
    func limits() throws -> [String: Int64] {
      let v = try JSON.parse(Array(c.ok(["--json", "group"]).out.utf8))
      var o: [String: Int64] = [:]
      for g in v["groups"]?.array ?? [] { o[g["name"]?.string ?? "?"] = g["parallel"]?.int ?? -1 }
      return o
    }
    XCTAssertEqual(try limits()["api"], 2)
    XCTAssertEqual(try limits()["other"], 0)
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the daemon is gone") { !Processes.isAlive(pid) }
    c.ok(["start", "--workers", "2"])
    XCTAssertEqual(try limits()["api"], 2, "after kill -9: the limit the reload left, not the one set before it")
    XCTAssertEqual(try limits()["other"], 0, "after kill -9")
    c.ok(["group", "set", "api", "--parallel", "7"])
    c.ok(["stop"])
    c.ok(["start", "--workers", "2"])
    XCTAssertEqual(try limits()["api"], 7, "a limit set live after the reload holds across a restart")
  }

  /// retry makes a linked new task; edit changes a queued one (logged, secrets redacted); kill
  /// cancels a running one; bad input gets a clear error.
  func testRetryEditAndKill() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let failed = ids(c.ok(["submit", "--shell", "exit 3"]))
    c.ok(["wait"] + failed, code: 3)
    let retried = ids(c.ok(["retry", "-p"] + failed))
    XCTAssertEqual(retried.count, 1)
    XCTAssertNotEqual(retried, failed)
    let shown = try JSON.parse(Array(c.ok(["--json", "show", retried[0]]).out.utf8))
    XCTAssertEqual(shown["retry_of"]?.string, failed[0])
    c.ok(["wait"] + retried, code: 3)
    let running = ids(c.ok(["submit", "--", "sleep", "33.5"]))
    c.eventually("the sleep runs") { sleeping("33.5") == 1 }
    let queued = ids(c.ok(["submit", "--priority", "low", "--shell", "true"]))
    c.ok(["edit", queued[0], "--priority", "high", "--env", "API_KEY=sk-abcdefabcdef0123456789", "--label", "team=infra"])
    let edited = c.events().first { $0.type == "task.edited" }
    XCTAssertEqual(edited?["before"]?["priority"]?.string, "low")
    XCTAssertEqual(edited?["after"]?["priority"]?.string, "high")
    XCTAssertEqual(edited?["after"]?["labels"]?["team"]?.string, "infra")
    let log = c.events().map { $0.encoded() }.joined(separator: "\n")
    XCTAssertFalse(log.contains("sk-abcdef"), "the secret is not in the log")
    let e1 = c.run(["edit", running[0], "--priority", "high"])
    XCTAssertEqual(e1.code, 1)
    XCTAssertTrue(e1.err.contains("only a queued task can be edited"), e1.err)
    let e2 = c.run(["edit", queued[0], "--priority", "urgent"])
    XCTAssertEqual(e2.code, 65)
    XCTAssertTrue(e2.err.contains("priority"), e2.err)
    XCTAssertEqual(c.run(["edit", queued[0]]).code, 64, "nothing to change")
    c.ok(["kill"] + running)
    XCTAssertEqual(sleeping("33.5"), 0, "kill returns once the process is gone")
    c.ok(["wait"] + queued)
    let r = c.run(["retry", "task-009999"])
    XCTAssertEqual(r.code, 65)
    XCTAssertTrue(r.err.contains("unknown task"), r.err)
  }

  /// A task that reports `{"rate_limited": true, "retry_after_s": N}` and fails shrinks its group's
  /// rate and is retried after N s without using up its attempts.
  func testRateLimitedReportIsRetriedAndShrinksTheRate() throws {
    try c.initialize([("groups", .object([("api", .object([("rate", .object([("starts_per_min", .int(600))]))]))]))])
    c.ok(["start", "--workers", "2"])
    let marker = c.scratch + "/first-done"
    let script =
      "if [ -e \(marker) ]; then exit 0; fi; touch \(marker); echo '{\"rate_limited\": true, \"retry_after_s\": 0.3}' >&3; exit 1"
    let id = ids(c.ok(["submit", "--group", "api", "--shell", script]))
    c.ok(["wait"] + id, timeoutS: 30)
    let ev = c.events()
    let retry = ev.first { $0.type == "task.retrying" && $0.taskID == id[0] }
    XCTAssertEqual(retry?["reason"]?.string, "rate_limited")
    XCTAssertEqual(retry?["delay_ms"]?.int, 300)
    let dec = ev.first { $0.type == "rate.decreased" }
    XCTAssertEqual(dec?["group"]?.string, "api")
    XCTAssertEqual(dec?["to_per_min"]?.double, 420)
    let groups = try JSON.parse(Array(c.ok(["--json", "group"]).out.utf8))
    let api = groups["groups"]?.array?.first { $0["name"]?.string == "api" }
    XCTAssertEqual(api?["rate"]?["rate_limited"]?.int, 1)
  }

  /// The rate a group learned from a refusal survives a kill -9 (replayed from `rate.decreased`)
  /// and a stop and start (kept in `task-queue.json`). Before, both began again at the ceiling.
  func testALearnedRateSurvivesAKillAndAStop() throws {
    try c.initialize([("groups", .object([("api", .object([("rate", .object([("starts_per_min", .int(600))]))]))]))])
    c.ok(["start", "--workers", "2"])
    let marker = c.scratch + "/first-done"
    let script =
      "if [ -e \(marker) ]; then exit 0; fi; touch \(marker); echo '{\"rate_limited\": true, \"retry_after_s\": 0.3}' >&3; exit 1"
    let id = ids(c.ok(["submit", "--group", "api", "--shell", script]))
    c.ok(["wait"] + id, timeoutS: 30)
    func allowed() throws -> Double? {
      let groups = try JSON.parse(Array(c.ok(["--json", "group"]).out.utf8))
      return groups["groups"]?.array?.first { $0["name"]?.string == "api" }?["rate"]?["starts_per_min_allowed"]?.double
    }
    XCTAssertEqual(try allowed(), 420, "600 × 0.7")
    let pid = try XCTUnwrap(c.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the daemon (pid \(pid)) is gone") { !Processes.isAlive(pid) }
    c.ok(["start", "--workers", "2"])
    XCTAssertEqual(try allowed(), 420, "replayed from the log after a kill -9")
    c.ok(["stop"])
    c.ok(["start", "--workers", "2"])
    XCTAssertEqual(try allowed(), 420, "kept in task-queue.json across a stop")
    let snapshot = try JSON.parse(XCTUnwrap(FileSystem.read(c.root + "/task-queue.json")))
    XCTAssertEqual(snapshot["fleet"]?["rates"]?.array?.first?["group"]?.string, "api")
  }

  /// A process a hook moves out of its group (`setsid`) does not outlive the hook: when the hook
  /// ends, or is killed at `hook_timeout_s`, it is re-parented to the daemon (a subreaper), which
  /// kills it. Before, it ran on for ever, a child of the daemon nobody waited for.
  func testWhatAHookStartsOutsideItsGroupDoesNotOutliveIt() throws {
    try c.initialize([("on_finish", .string("setsid sleep 34.25 & setsid sleep 34.5 & sleep 60")), ("hook_timeout_s", .int(1))])
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--wait", "--", "true"])
    c.eventually("the hook started both") { sleeping("34.25") == 1 && sleeping("34.5") == 1 }
    c.eventually("the hook was killed at its timeout", timeoutS: 15) { c.events().contains { $0.type == "hook.finished" } }
    c.eventually("nothing the hook started outside its group is left", timeoutS: 5) { sleeping("34.25") + sleeping("34.5") == 0 }
    // A hook that ends by itself, leaving a process outside its group behind.
    try c.configure([("on_finish", .string("setsid sleep 34.75 & exit 0")), ("hook_timeout_s", .int(30))])
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--wait", "--", "true"])
    c.eventually("the second hook finished", timeoutS: 15) { c.events().filter { $0.type == "hook.finished" }.count == 2 }
    c.eventually("what it left outside its group is gone", timeoutS: 5) { sleeping("34.75") == 0 }
  }

  /// A hook sees the outcome in its environment; a slow hook (killed at hook_timeout_s) does not
  /// delay the next dispatch.
  func testHookSeesTheOutcomeAndASlowHookDoesNotDelayDispatch() throws {
    let out = c.scratch + "/hook.out"
    let hook =
      "printf '%s %s %s %s %s\\n' \"$CORTEX_TASK_ID\" \"$CORTEX_TASK_STATE\" \"$CORTEX_EXIT_CODE\" \"$CORTEX_DURATION_MS\" \"$CORTEX_TOKENS_USED\" >> \(out); exec sleep 30.75"
    try c.initialize([("on_finish", .string(hook)), ("hook_timeout_s", .int(2))])
    c.ok(["start", "--workers", "1"])
    let batch = """
      {"shell": "echo '{\\"tokens_used\\": 42}' >&3; sleep 0.2; exit 3", "token_budget": 100}
      {"shell": "true"}
      """
    try FileSystem.writeAtomically(c.scratch + "/b.jsonl", Array(batch.utf8), durable: false)
    let both = ids(c.ok(["submit", "--from", c.scratch + "/b.jsonl"]))
    c.ok(["wait", both[1]], timeoutS: 30)
    c.eventually("both hooks wrote their line") {
      String(decoding: ((try? FileSystem.read(out)) ?? nil) ?? [], as: UTF8.self).split(separator: "\n").count == 2
    }
    let lines = String(decoding: ((try? FileSystem.read(out)) ?? nil) ?? [], as: UTF8.self).split(separator: "\n")
    let first = lines.first { $0.hasPrefix(both[0]) }.map { $0.split(separator: " ").map(String.init) } ?? []
    XCTAssertEqual(first.count, 5, "\(lines)")
    if first.count == 5 {
      XCTAssertEqual(first[1], "failed")
      XCTAssertEqual(first[2], "3")
      XCTAssertGreaterThanOrEqual(Int(first[3]) ?? 0, 150, "duration_ms")
      XCTAssertEqual(first[4], "42")
    }
    // The second task was assigned right after the first ended, while the first's hook slept.
    let ev = c.events()
    let ended = ev.first { $0.type == "task.failed" && $0.taskID == both[0] }?["ts"]?.string.flatMap(Timestamp.parse)
    let assigned = ev.first { $0.type == "task.assigned" && $0.taskID == both[1] }?["ts"]?.string.flatMap(Timestamp.parse)
    guard let ended, let assigned else { return XCTFail("no terminal or assigned event") }
    XCTAssertLessThan(assigned - ended, 200, "the next task waited \(assigned - ended) ms behind a 30 s hook")
    c.eventually("the slow hooks are killed at hook_timeout_s", timeoutS: 10) {
      c.events().filter { $0.type == "hook.finished" && $0["reason"]?.string == "timeout" }.count == 2
    }
    XCTAssertEqual(sleeping("30.75"), 0, "no hook outlives its timeout")
    let state = c.events().first { $0.type == "task.failed" && $0.taskID == both[0] }
    XCTAssertEqual(state?["exit_code"]?.int, 3, "the outcome stays as recorded")
  }
}
