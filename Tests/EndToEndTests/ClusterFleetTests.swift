import CortexCore
import Posix
import XCTest

/// Fleet control in cluster mode (SPEC §15 on a cluster). `cortex retry`: the finished task's spec
/// comes from the cluster's history, whichever node ran it, and is submitted again as a new task
/// naming it. `cortex edit`: the database's copy of a queued task changes, from any node.
final class ClusterFleetTests: ClusterTestCase {
  func outcome(_ id: String) -> String {
    sql("SELECT state FROM cortex_task_done WHERE id = \(TaskID.parse(id)!)")
  }

  func tasksInTheCluster() -> String {
    sql("SELECT (SELECT count(*) FROM cortex_task) + (SELECT count(*) FROM cortex_task_done)")
  }

  func testRetryFromAnyNodeAllFailedTakesEachChainsNewestAndWhatCannotBeRetriedIsRefused() throws {
    let a = try startNode("a", workers: 2)
    let b = try startNode("b", workers: 2)
    let flag = a.scratch + "/second-try"
    // Fails the first time; its retry, after the flag exists, succeeds.
    let flaky = a.ok(["submit", "-p", "--no-env", "--shell", "test -f \(flag)"]).out.trimmed
    let broken = a.ok(["submit", "-p", "--no-env", "--label", "kind=broken", "--shell", "exit 4"]).out.trimmed
    a.ok(["submit", "-p", "--no-env", "--shell", "true"])
    waitDone(3)
    XCTAssertEqual(outcome(flaky), "failed")
    XCTAssertEqual(outcome(broken), "failed")
    XCTAssertTrue(FileManager.default.createFile(atPath: flag, contents: nil))

    // From the node that did not submit it (and may not have run it).
    var r = b.run(["retry", flaky])
    XCTAssertEqual(r.code, 0, r.err)
    let again = String(r.out.split(separator: " ").first ?? "")
    XCTAssertTrue(r.out.contains("(retry of \(flaky))"), r.out)
    let shown = try JSON.parse(Array(a.ok(["--json", "show", again]).out.utf8))
    XCTAssertEqual(shown["spec"]?["retry_of"]?.string, flaky, "\(shown)")
    XCTAssertEqual(shown["spec"]?["shell"]?.string, "test -f \(flag)", "\(shown)")
    waitDone(4)
    XCTAssertEqual(outcome(again), "succeeded")

    // --all-failed: `flaky` is retried already, so only `broken`; then only its retry.
    r = a.run(["retry", "-p", "--all-failed"])
    XCTAssertEqual(r.code, 0, r.err)
    let second = r.out.trimmed
    XCTAssertNotNil(TaskID.parse(second), r.out)
    var spec = try JSON.parse(Array(b.ok(["--json", "show", second]).out.utf8))["spec"]
    XCTAssertEqual(spec?["retry_of"]?.string, broken)
    XCTAssertEqual(spec?["labels"]?["kind"]?.string, "broken", "the labels come along")
    waitDone(5)
    r = b.run(["retry", "-p", "--all-failed"])
    XCTAssertEqual(r.code, 0, r.err)
    let third = r.out.trimmed
    spec = try JSON.parse(Array(a.ok(["--json", "show", third]).out.utf8))["spec"]
    XCTAssertEqual(spec?["retry_of"]?.string, second, "the newest of the chain, not the original again")
    waitDone(6)

    // What cannot be retried is refused with the reason, and nothing is added.
    let secret = a.ok(["submit", "-p", "--no-env", "--env", "API_TOKEN=sk-cortexretrytest0123456789", "--shell", "exit 3"]).out.trimmed
    waitDone(7)
    var before = tasksInTheCluster()
    r = b.run(["retry", secret])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains(secret) && r.err.contains("secret values (env.API_TOKEN)"), r.err)
    XCTAssertFalse(r.err.contains("sk-cortexretrytest"), "the secret in a message")
    XCTAssertEqual(tasksInTheCluster(), before, "a refused retry added tasks")
    // --all-failed leaves it out, says so, and retries the rest (`third`'s chain).
    r = a.run(["retry", "-p", "--all-failed"])
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertTrue(r.err.contains("not retried: \(secret)"), r.err)
    spec = try JSON.parse(Array(a.ok(["--json", "show", r.out.trimmed]).out.utf8))["spec"]
    XCTAssertEqual(spec?["retry_of"]?.string, third)
    waitDone(8)
    before = tasksInTheCluster()
    r = a.run(["retry", "task-999999"])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("unknown task"), r.err)
    XCTAssertEqual(tasksInTheCluster(), before, "a refused retry added tasks")
    let live = a.ok(["submit", "-p", "--no-env", "--shell", "sleep 30"]).out.trimmed
    r = b.run(["retry", live])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("only a finished task can be retried"), r.err)
    a.ok(["cancel", live], timeoutS: 30)
  }

  func testEditChangesAQueuedTaskFromAnyNodeWithItsSecretsAndOnlyAQueuedOne() throws {
    let a = try startNode("a", workers: 2)
    let b = try startNode("b", workers: 2)
    // A task that waits for another stays queued in the cluster until that one succeeds.
    let go = a.scratch + "/go"
    let blocker = a.ok(["submit", "-p", "--no-env", "--shell", "while [ ! -f \(go) ]; do sleep 0.05; done"]).out.trimmed
    let deadline = Clock.monotonicMs() + 20_000
    while sql("SELECT count(*) FROM cortex_task WHERE state = 'running'") != "1" && Clock.monotonicMs() < deadline { sleepMs(50) }
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task WHERE state = 'running'"), "1", "the blocker did not start")
    let out = a.scratch + "/edited.out"
    let x = a.ok([
      "submit", "-p", "--no-env", "--after", blocker, "--priority", "low", "--label", "k=old", "--shell",
      "echo \"$COLOR $API_TOKEN\" > \(out)",
    ]).out.trimmed
    let n = TaskID.parse(x)!

    var r = b.run([
      "edit", x, "--priority", "high", "--label", "k=new", "--env", "COLOR=blue", "--env", "API_TOKEN=sk-cortexedittest0123456789",
    ])
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertEqual(sql("SELECT priority FROM cortex_task WHERE id = \(n)"), String(Priority.high.rawValue))
    let spec = try JSON.parse(Array(a.ok(["--json", "show", x]).out.utf8))["spec"]
    XCTAssertEqual(spec?["priority"]?.string, "high")
    XCTAssertEqual(spec?["labels"]?["k"]?.string, "new")
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_secret WHERE task = \(n)"), "1", "the new secret is kept apart")
    XCTAssertFalse(sql("SELECT spec::text FROM cortex_task WHERE id = \(n)").contains("sk-cortexedittest"), "a secret in the spec")
    let edited = b.events().first { $0.type == "task.edited" && $0.taskID == x }
    XCTAssertEqual(edited?["before"]?["priority"]?.string, "low", "\(String(describing: edited))")
    XCTAssertEqual(edited?["after"]?["labels"]?["k"]?.string, "new")
    XCTAssertEqual(edited?["node"]?.string, "b")
    XCTAssertFalse(b.events().map { $0.encoded() }.joined().contains("sk-cortexedittest"), "a secret in the log")

    // Only a queued task: a running one, a finished or unknown one are refused with the reason.
    r = a.run(["edit", blocker, "--priority", "high"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("is running; only a queued task can be edited"), r.err)
    r = b.run(["edit", "task-999999", "--priority", "high"])
    XCTAssertNotEqual(r.code, 0)
    XCTAssertTrue(r.err.contains("unknown task"), r.err)

    // Once the blocker succeeds it runs as edited, its secret value restored.
    XCTAssertTrue(FileManager.default.createFile(atPath: go, contents: nil))
    waitDone(2)
    XCTAssertEqual(sql("SELECT state FROM cortex_task_done WHERE id = \(n)"), "succeeded")
    XCTAssertEqual((try? String(contentsOfFile: out, encoding: .utf8)) ?? "", "blue sk-cortexedittest0123456789\n")
  }

  func testPauseOnOneNodeHoldsTheWholeClusterAndResumeOnAnotherStartsIt() throws {
    let a = try startNode("a", workers: 2)
    let b = try startNode("b", workers: 2)
    var r = a.run(["pause"])
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertTrue(r.err.contains("the queue paused"), r.err)
    XCTAssertEqual(sql("SELECT paused FROM cortex_queue"), "t")
    // The database says whether it was paused before, whichever node asks.
    r = b.run(["pause"])
    XCTAssertTrue(r.err.contains("already paused"), r.err)
    for _ in 0..<4 { b.ok(["submit", "-p", "--no-env", "--shell", "true"]) }
    sleepMs(1500)
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task WHERE state = 'queued'"), "4", "a node claimed while the cluster was paused")
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task_done"), "0")
    // Every node says so: the other one hears it with its next lease renewal.
    b.eventually("b's status shows the paused queue") { b.ok(["status"]).out.contains("the whole queue") }
    XCTAssertTrue(b.ok(["cluster", "status"]).out.contains("queue: paused"))
    XCTAssertTrue(a.events().contains { $0.type == "queue.paused" })
    // A group is paused for the whole cluster too; a resume without a group resumes it as well.
    r = a.run(["pause", "batch"])
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertEqual(sql("SELECT paused FROM cortex_group WHERE name = 'batch'"), "t")

    r = b.run(["resume"])
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertTrue(r.err.contains("resumed"), "the resume of a paused cluster said: \(r.err)")
    XCTAssertEqual(sql("SELECT paused FROM cortex_group WHERE name = 'batch'"), "f")
    a.eventually("a follows the resume of group batch") { a.events().contains { $0.type == "group.resumed" } }
    XCTAssertTrue(a.run(["resume"]).err.contains("nothing was paused"))
    waitDone(4, timeoutS: 30)
    a.eventually("a's status no longer shows a pause") { !a.ok(["status"]).out.contains("the whole queue") }
    XCTAssertFalse(a.ok(["cluster", "status"]).out.contains("queue: paused"))
  }

  func testAPauseUndoneOnAnotherNodeBeforeThisNodesRenewalDoesNotStickHere() throws {
    // A long lease: no renewal comes between the pause on b and the resume on a.
    let a = try startNode("a", workers: 1, leaseS: 30)
    let b = try startNode("b", workers: 1, leaseS: 30)
    b.ok(["pause"])
    XCTAssertTrue(b.ok(["status"]).out.contains("the whole queue"))
    XCTAssertTrue(a.run(["resume"]).err.contains("resumed"))
    b.eventually("b hears that the cluster was resumed") { !b.ok(["status"]).out.contains("the whole queue") }
    XCTAssertTrue(b.events().contains { $0.type == "queue.resumed" })
  }

  func testARescuedTaskRunsOnAnotherNodeAsItsNextAttempt() throws {
    let a = try startNode("a", workers: 1, leaseS: 2)
    let id = a.ok(["submit", "-p", "--no-env", "--retries", "2", "--shell", "sleep 60"]).out.trimmed
    let n = try XCTUnwrap(TaskID.parse(id))
    a.eventually("a runs \(id)") { sql("SELECT coalesce(node, '') FROM cortex_task WHERE id = \(n) AND state = 'running'") == "a" }
    XCTAssertTrue(Processes.signal(try XCTUnwrap(a.daemonPID), Signal.kill))
    a.eventually("node a's processes are gone") { a.leftovers.allSatisfy { $0.isZombie } }
    let b = try startNode("b", workers: 1, leaseS: 2)
    // b rescues it (a's lease ends) and claims it: the cluster's attempt 2, and b says so too
    // (it said 1: a node counted only its own attempts).
    var row: JSON?
    b.eventually("b runs \(id)", timeoutS: 30) {
      row = (try? JSON.parse(Array(b.ok(["--json", "list", "--state", "active"]).out.utf8)))?.array?.first { $0["id"]?.string == id }
      return row?["state"]?.string == "running" && row?["node"]?.string == "b"
    }
    XCTAssertEqual(row?["attempt"]?.int, 2, "\(String(describing: row))")
    XCTAssertEqual(sql("SELECT attempt FROM cortex_task WHERE id = \(n)"), "2")
    let shown = try JSON.parse(Array(b.ok(["--json", "show", id]).out.utf8))
    XCTAssertEqual((shown["task"] ?? shown)["attempt"]?.int, 2, "\(shown)")
    XCTAssertTrue(b.events().contains { $0["type"]?.string == "task.claimed" && $0["attempt"]?.int == 2 })
    b.ok(["cancel", id])
  }

  func testAGroupLimitedOrPausedOnOneNodeHoldsOnEveryNodeAndNeverHoldsBackAnotherGroup() throws {
    let a = try startNode("a", workers: 4, leaseS: 2)
    let b = try startNode("b", workers: 4, leaseS: 2)
    XCTAssertEqual(a.run(["group", "set", "slow", "--parallel", "2"]).code, 0)
    XCTAssertEqual(sql("SELECT parallel FROM cortex_group WHERE name = 'slow'"), "2")
    // 8 slow tasks ahead of 4 fast ones, submitted on b: never more than 2 slow ones claimed in
    // the whole cluster, while the fast ones run beside them (8 workers, 2 nodes).
    let slow = batch(8) { _ in #"{"shell":"sleep 0.6","group":"slow"}"# }
    let fast = batch(4) { _ in #"{"shell":"sleep 0.6","group":"fast"}"# }
    b.ok(["submit", "--no-env", "--from", "-"], input: slow)
    b.ok(["submit", "--no-env", "--from", "-"], input: fast)
    var most = 0
    var fastWithSlow = false
    let deadline = Clock.monotonicMs() + 60_000
    while Clock.monotonicMs() < deadline {
      let row = sql(
        "SELECT count(*) FILTER (WHERE grp = 'slow') || ',' || count(*) FILTER (WHERE grp = 'fast') || ',' || "
          + "(SELECT count(*) FROM cortex_task_done) FROM cortex_task WHERE state = 'running'"
      ).split(separator: ",").compactMap { Int($0) }
      guard row.count == 3 else { continue }
      most = max(most, row[0])
      if row[0] > 0 && row[1] > 0 { fastWithSlow = true }
      if row[2] == 12 { break }
      sleepMs(30)
    }
    waitDone(12)
    XCTAssertEqual(most, 2, "the cluster ran more slow tasks at once than its limit")
    XCTAssertTrue(fastWithSlow, "the limited group held back the other group")
    // Every node follows the cluster's limit in its own scheduler (`cortex group` says so).
    b.eventually("b's group list shows the cluster's limit") {
      let groups = (try? JSON.parse(Array(b.ok(["--json", "group"]).out.utf8)))?["groups"]?.array ?? []
      return groups.first { $0["name"]?.string == "slow" }?["parallel"]?.int == 2
    }

    // A SIGHUP does not put a node's config.json limit back over the cluster's.
    try b.initialize([
      ("groups", .object([("slow", .object([("parallel", .int(1))]))])),
      ("cluster", .object([("postgres", .string(pg.dsn)), ("node", .string("b")), ("lease_s", .double(2))])),
    ])
    XCTAssertTrue(Processes.signal(try XCTUnwrap(b.daemonPID), Signal.hup))
    b.eventually("b reloads its config") { b.events().contains { $0.type == "daemon.reloaded" } }
    let afterHUP = (try? JSON.parse(Array(b.ok(["--json", "group"]).out.utf8)))?["groups"]?.array ?? []
    XCTAssertEqual(afterHUP.first { $0["name"]?.string == "slow" }?["parallel"]?.int, 2, "\(afterHUP)")

    // A group paused on b: a claims none of its tasks until a resume (here on a, of everything).
    b.ok(["pause", "later"])
    XCTAssertEqual(sql("SELECT paused FROM cortex_group WHERE name = 'later'"), "t")
    a.eventually("a follows the pause of group later") { a.events().contains { $0.type == "group.paused" } }
    let held = a.ok(["submit", "--no-env", "--from", "-"], input: batch(3) { _ in #"{"shell":"true","group":"later"}"# }).out
    let other = a.ok(["submit", "-p", "--no-env", "--shell", "true"]).out.trimmed
    XCTAssertEqual(a.run(["wait", other], timeoutS: 30).code, 0, "a paused group held back another")
    sleepMs(1500)
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task WHERE grp = 'later' AND state = 'queued'"), "3", held)
    let status = b.ok(["cluster", "status"]).out
    XCTAssertTrue(status.contains("groups: later (paused: 0 running, 3 queued); slow (parallel 2: 0 running, 0 queued)"), status)
    // `cortex group` on any node counts that node's tasks, and adds the cluster's.
    let groups = a.ok(["group"]).out
    XCTAssertTrue(groups.contains("the cluster's: later (paused: 0 running, 3 queued); slow (parallel 2: 0 running, 0 queued)"), groups)
    let groupsJSON = try JSON.parse(Array(a.ok(["--json", "group"]).out.utf8))
    XCTAssertEqual(groupsJSON["cluster_groups"]?.array?.first?["queued"]?.int, 3, "\(groupsJSON)")
    let resumed = a.run(["resume"])
    XCTAssertEqual(resumed.code, 0, resumed.err)
    XCTAssertEqual(sql("SELECT paused FROM cortex_group WHERE name = 'later'"), "f")
    waitDone(16)
    b.eventually("b follows the resume") { b.events().contains { $0.type == "group.resumed" } }
    // Limits and pauses survive in the database for nodes that join later.
    XCTAssertEqual(
      sql("SELECT string_agg(name || ':' || paused || ':' || parallel, ',' ORDER BY name) FROM cortex_group"), "later:false:0,slow:false:2")
  }

  func testALimitedGroupsTasksAreNotClaimedByANodeWithNoWorkerFreeWhileAnotherNodeIdles() throws {
    let a = try startNode("a", workers: 2, leaseS: 2)
    // a's two workers busy for a minute; it still asks for tasks to queue ahead of them.
    let long = a.ok(["submit", "--no-env", "--from", "-"], input: batch(2) { _ in #"{"shell":"sleep 60","group":"batch"}"# }).out
    a.eventually("a runs both long tasks") { sql("SELECT count(*) FROM cortex_task WHERE node = 'a' AND state = 'running'") == "2" }
    XCTAssertEqual(a.run(["group", "set", "api", "--parallel", "2"]).code, 0)
    a.ok(["submit", "--no-env", "--from", "-"], input: batch(2) { _ in #"{"shell":"true","group":"api"}"# })
    sleepMs(2500)
    // Claimed by a, they would wait for its workers and fill the group's two slots cluster-wide.
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task WHERE grp = 'api' AND state = 'queued'"), "2", long)
    let b = try startNode("b", workers: 2, leaseS: 2)
    let deadline = Clock.monotonicMs() + 20_000
    while Clock.monotonicMs() < deadline && sql("SELECT count(*) FROM cortex_task_done") != "2" { sleepMs(100) }
    XCTAssertEqual(
      sql("SELECT string_agg(node || ':' || state, ',') FROM cortex_task_done"), "b:succeeded,b:succeeded",
      "the limited group's tasks waited on a busy node while b was idle")
    b.ok(["cancel"] + long.split(separator: "\n").map(String.init))
  }

  func testAClaimedTaskStaysInTheGroupTheClusterCountsItInWhateverTheClaimingNodesWorkerTypesSay() throws {
    func reviewIn(_ g: String) -> [(String, JSON)] { [("worker_types", .object([("review", .object([("group", .string(g))]))]))] }
    let a = try startNode("a", workers: 2, config: reviewIn("llm"))
    let b = try startNode("b", workers: 2, config: reviewIn("api"))
    XCTAssertEqual(a.run(["group", "set", "api", "--parallel", "1"]).code, 0)
    XCTAssertEqual(a.run(["group", "set", "llm", "--parallel", "1"]).code, 0)
    // Submitted on a, a review task is in group llm; only b is left to claim it, and b's worker
    // types put review tasks in group api, whose one slot b's own long task holds.
    a.ok(["pause", "llm"])
    let review = a.ok(["submit", "--no-env", "--type", "review", "--shell", "true"]).out.trimmed
    XCTAssertEqual(sql("SELECT grp FROM cortex_task"), "llm")
    a.ok(["stop"])
    let long = b.ok(["submit", "--no-env", "--group", "api", "--shell", "sleep 60"]).out.trimmed
    b.eventually("b runs the api task") { sql("SELECT state FROM cortex_task WHERE grp = 'api'") == "running" }
    b.ok(["resume", "llm"])
    XCTAssertEqual(b.run(["wait", review], timeoutS: 20).code, 0, "the llm task waited for group api on b")
    let shown = (try? JSON.parse(Array(b.ok(["--json", "show", review]).out.utf8))) ?? .null
    XCTAssertEqual((shown["task"] ?? shown)["group"]?.string, "llm", "\(shown)")
    b.ok(["cancel", long])
  }

  func testASighupSeedsAGroupLimitTheClusterDoesNotKnowAsAJoinWouldAndChangesNoOther() throws {
    let a = try startNode("a", workers: 2)
    let b = try startNode("b", workers: 2)
    XCTAssertEqual(a.run(["group", "set", "api", "--parallel", "2"]).code, 0)
    try b.configure([
      ("groups", .object([("api", .object([("parallel", .int(5))])), ("llm", .object([("parallel", .int(1))]))]))
    ])
    XCTAssertTrue(Processes.signal(try XCTUnwrap(b.daemonPID), Signal.hup))
    b.eventually("b reloads its config") { b.events().contains { $0.type == "daemon.reloaded" } }
    // llm is new to the cluster: seeded for every node, as a restart of b would have; api keeps
    // the cluster's limit.
    a.eventually("a follows the llm limit b's config seeded") {
      let groups = (try? JSON.parse(Array(a.ok(["--json", "group"]).out.utf8)))?["groups"]?.array ?? []
      return groups.first { $0["name"]?.string == "llm" }?["parallel"]?.int == 1
    }
    XCTAssertEqual(sql("SELECT string_agg(name || ':' || parallel, ',' ORDER BY name) FROM cortex_group"), "api:2,llm:1")
  }

  func testTasksOfAPausedGroupWaitingOnANodeDoNotKeepItFromClaimingALimitedGroupsTasks() throws {
    let a = try startNode("a", workers: 2)
    // Two quick tasks first: a node holds a queue ahead only once it has seen tasks end
    // (Scheduler.claimAhead), and these take under 50 ms.
    a.ok(["submit", "--no-env", "--from", "-"], input: batch(2) { _ in #"{"shell":"true"}"# })
    waitDone(2)
    // a claims all four (two to run, two to queue ahead), then x is paused: two wait on a.
    a.ok(["submit", "--no-env", "--from", "-"], input: batch(4) { _ in #"{"shell":"sleep 2","group":"x"}"# })
    a.eventually("a claims the four x tasks") { sql("SELECT count(*) FROM cortex_task WHERE node = 'a'") == "4" }
    a.ok(["pause", "x"])
    a.eventually("two x tasks end") { sql("SELECT count(*) FROM cortex_task_done") == "4" }
    XCTAssertEqual(a.run(["group", "set", "api", "--parallel", "1"]).code, 0)
    let api = a.ok(["submit", "--no-env", "--group", "api", "--shell", "true"]).out.trimmed
    XCTAssertEqual(a.run(["wait", api], timeoutS: 15).code, 0, "a's idle workers did not take the api task")
    a.ok(["resume"])
    waitDone(7)
  }
}

extension ClusterFleetTests {
  /// Found by pausing on one node and looking at another: a group's pause reached every node at
  /// once (a NOTIFY), the whole queue's only with each node's next lease renewal (lease/3, here
  /// 10 s), and until then the other node still started what it had claimed before the pause.
  func testAPauseOfTheQueueReachesTheOtherNodesAtOnceNotAtTheirNextRenewal() throws {
    let a = try startNode("a", workers: 1, leaseS: 30)
    let b = try startNode("b", workers: 1, leaseS: 30)
    b.eventually("b has joined") { b.events().contains { $0.type == "node.joined" } }
    let asked = Clock.monotonicMs()
    a.ok(["pause"])
    b.eventually("b follows the pause", timeoutS: 30) { b.events().contains { $0.type == "queue.paused" } }
    XCTAssertLessThan(Clock.monotonicMs() - asked, 2500, "b followed the pause only with its lease renewal (every 10 s)")
    XCTAssertTrue(b.ok(["status"]).out.contains("the whole queue"))
    a.ok(["resume"])
  }
}

extension ClusterFleetTests {
  /// Found by using two nodes as a user would: on a node that does not hold the task, `show` of
  /// an unknown id said "unknown task in the cluster" without naming it, `edit` of one exited 1
  /// (a single host: 65, bad input), and `log` of a task another node ran said its directory did
  /// not exist, as if it had never had output.
  func testATaskNotHeldHereIsNamedAndItsNodeToldWhenAskedForOnAnotherNode() throws {
    let a = try startNode("a", workers: 1)
    a.ok(["pause"])
    let b = try startNode("b", workers: 1)
    let id = b.ok(["submit", "-p", "--no-env", "--shell", "echo hi"]).out.trimmed
    var r = a.run(["log", id])
    XCTAssertEqual(r.code, 1)
    XCTAssertTrue(r.err.contains("has no output yet: it is queued in the cluster"), r.err)
    // Only b runs it: a stops before the resume.
    a.ok(["stop"])
    b.ok(["resume"])
    XCTAssertEqual(b.run(["wait", id], timeoutS: 30).code, 0)
    let c = try startNode("c", workers: 1)
    r = c.run(["log", id])
    XCTAssertEqual(r.code, 1)
    XCTAssertTrue(r.err.contains("\(id) ran on node b: its output is in that node's directory (cortex log \(id) there"), r.err)
    XCTAssertEqual(b.ok(["log", id]).out, "hi\n")
    r = c.run(["show", "task-000099"])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("unknown task task-000099 in the cluster"), r.err)
    r = c.run(["edit", "task-000099", "--priority", "high"])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("unknown task task-000099 in the cluster"), r.err)
    // A finished task still says so (1: not bad input, the wrong moment).
    r = c.run(["edit", id, "--priority", "high"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("\(id) already succeeded; only a queued task can be edited"), r.err)
  }

  /// Long tasks are not hoarded: a node claims for its idle workers, and a queue ahead only as deep
  /// as a second of its workers' work, none before it has seen a task end; a node with a free
  /// worker gets the rest instead of idling while they wait on a busy node.
  func testLongTasksAreNotClaimedAheadByABusyNodeWhileAnotherIdles() throws {
    let a = try startNode("a", workers: 1, leaseS: 2)
    let ids = a.ok(["submit", "--no-env", "--from", "-"], input: batch(3) { _ in #"{"shell":"sleep 60"}"# }).out
    let b = try startNode("b", workers: 1, leaseS: 2)
    let perNode =
      "SELECT string_agg(node || ':' || n, ',' ORDER BY node) FROM (SELECT node, count(*) AS n FROM cortex_task WHERE state = 'running' GROUP BY node) r"
    b.eventually("a and b run one task each") { sql(perNode) == "a:1,b:1" }
    sleepMs(2500)
    XCTAssertEqual(sql(perNode), "a:1,b:1", "a node claimed a task ahead that only its own busy worker could run")
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task WHERE state = 'queued'"), "1")
    b.ok(["cancel"] + ids.split(separator: "\n").map(String.init))
  }
}
