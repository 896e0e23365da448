import CortexCore
import Posix
import XCTest

/// Issue 11: real daemons sharing one real PostgreSQL, each with its own directory, pool and log.
final class ClusterModeTests: ClusterTestCase {

  func testThreeNodesRunThreeThousandMixedTasksEachExactlyOnce() throws {
    let a = try startNode("a")
    let b = try startNode("b")
    let c = try startNode("c")
    var ids: [String] = []
    for (i, node) in [a, b, c].enumerated() {
      let input = batch(1000) { k in
        switch k % 4 {
        case 0: return #"{"synthetic":{"duration_ms":2,"tokens":3},"priority":"high"}"#
        case 1: return #"{"synthetic":{"duration_ms":0,"tokens":1}}"#
        case 2: return #"{"command":["true"],"token_budget":2}"#
        default: return #"{"shell":"exit 0","priority":"low","labels":{"n":"\#(i)"}}"#
        }
      }
      let r = node.ok(["submit", "--no-env", "--from", "-"], input: input)
      ids += r.out.split(separator: "\n").map(String.init)
    }
    XCTAssertEqual(Set(ids).count, 3000, "task ids are unique across the cluster")
    waitDone(3000)
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task_done WHERE state = 'succeeded'"), "3000")
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task"), "0", "the hot table is empty once all finished")
    let perNode = sql(
      "SELECT string_agg(node || '=' || n, ',' ORDER BY node) FROM (SELECT node, count(*) n FROM cortex_task_done GROUP BY node) x")
    for name in ["a=", "b=", "c="] { XCTAssertTrue(perNode.contains(name), "a node ran nothing: \(perNode)") }
    // `list` on one node shows the whole cluster's tasks, each with the node that ran it.
    let listed = try JSON.parse(Array(a.ok(["--json", "list", "-n", "5000"]).out.utf8)).array ?? []
    XCTAssertEqual(listed.count, 3000)
    XCTAssertEqual(Set(listed.compactMap { $0["node"]?.string }), ["a", "b", "c"])
    XCTAssertEqual(Set(listed.compactMap { $0["id"]?.string }), Set(ids))
    XCTAssertTrue(b.ok(["list", "-n", "3"]).out.contains("NODE"))
    // A task that ran on the asking node, and that it still keeps, has its worker and its time,
    // as on a single host; another node's has neither (the cluster's tables keep no worker).
    let ranOnA = listed.filter { $0["node"]?.string == "a" }
    let known = ranOnA.filter { $0["worker_id"]?.string?.hasPrefix("worker-") == true && $0["started_ms"]?.int != nil }
    XCTAssertGreaterThan(known.count, 0, "no task a ran shows its worker and time in a's list")
    XCTAssertEqual(Set(known.compactMap { $0["node"]?.string }), ["a"])
    XCTAssertTrue(listed.filter { $0["node"]?.string != "a" }.allSatisfy { $0["worker_id"] == nil })
    XCTAssertEqual(try JSON.parse(Array(c.ok(["--json", "list", "--state", "active"]).out.utf8)).array?.count, 0)
    // The budget invariant: total = reserved + used + available, nothing reserved at the end.
    XCTAssertEqual(sql("SELECT reserved || ' ' || used || ' ' || (total - reserved - used >= 0) FROM cortex_budget"), "0 3000 true")
    // Each node's own log says what it ran, with its name on every claim.
    for (name, node) in [("a", a), ("b", b), ("c", c)] {
      let events = node.events()
      XCTAssertFalse(events.filter { $0.type == "task.claimed" }.isEmpty)
      XCTAssertTrue(events.allSatisfy { $0["node"]?.string == name }, "a line of \(name)'s log does not name it")
    }
  }

  func testAKilledNodesTasksRunElsewhereAfterItsLeaseNothingLostNothingTwice() throws {
    let a = try startNode("a", workers: 4, leaseS: 2)
    try startNode("b", workers: 4, leaseS: 2)
    try startNode("c", workers: 4, leaseS: 2)
    let input = batch(300) { _ in #"{"synthetic":{"duration_ms":40,"tokens":1}}"# }
    a.ok(["submit", "--no-env", "--from", "-"], input: input)
    // Once node a holds running claims, kill it (its workers die with it).
    let deadline = Clock.monotonicMs() + 20_000
    while sql("SELECT count(*) FROM cortex_task WHERE node = 'a' AND state = 'running'") == "0" && Clock.monotonicMs() < deadline {
      sleepMs(10)
    }
    let pid = try XCTUnwrap(a.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    a.eventually("node a's processes are gone") { a.leftovers.allSatisfy { $0.isZombie } }
    // What a held when it died: each must end once, on another node, under a later attempt.
    let held = sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM cortex_task WHERE node = 'a' AND state = 'running'")
    XCTAssertFalse(held.isEmpty, "node a held nothing when it was killed")
    waitDone(300)
    XCTAssertEqual(sql("SELECT count(DISTINCT id) FROM cortex_task_done"), "300")
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task_done WHERE state <> 'succeeded'"), "0")
    if !held.isEmpty {
      let rerun = sql("SELECT string_agg(node || ':' || attempt, ',') FROM cortex_task_done WHERE id IN (\(held))")
      XCTAssertFalse(rerun.contains("a:"), "a killed node's task was accepted from it: \(rerun)")
      XCTAssertFalse(rerun.contains(":1"), "a rescued task kept its first attempt: \(rerun)")
    }
    XCTAssertEqual(sql("SELECT state FROM cortex_node WHERE name = 'a'"), "fenced")
    XCTAssertEqual(sql("SELECT reserved FROM cortex_budget"), "0")
  }

  func testANodeNameAlreadyAliveIsRefusedWithAClearError() throws {
    try startNode("same")
    let other = try Cortex()
    nodes.append(other)
    // Pretend another host holds the name: the daemon.lock cannot tell, the database can.
    try pg.psql("UPDATE cortex_node SET host = 'elsewhere' WHERE name = 'same'")
    try other.initialize([("cluster", .object([("postgres", .string(pg.dsn)), ("node", .string("same"))]))])
    let r = other.run(["start", "--workers", "1"])
    XCTAssertNotEqual(r.code, 0)
    XCTAssertTrue(r.err.contains("already alive") && r.err.contains("elsewhere"), r.err)
    // The failed start leaves no socket and no daemon.pid behind (they were left, dead).
    XCTAssertFalse(FileSystem.exists(other.paths.socket), "a failed start left its socket")
    XCTAssertFalse(FileSystem.exists(other.paths.pid), "a failed start left its daemon.pid")
    let status = other.run(["list"])
    XCTAssertEqual(status.code, 69, status.err)
    XCTAssertTrue(status.err.contains("no socket"), status.err)
  }

  func testCancelAndWaitWorkFromAnyNode() throws {
    let a = try startNode("a", workers: 1)
    let b = try startNode("b", workers: 1)
    let marker = "cortex-cluster-cancel-\(Clock.monotonicNs())"
    let id = a.ok(["submit", "-p", "--no-env", "--shell", "sleep 60; echo \(marker)"]).out.trimmed
    let deadline = Clock.monotonicMs() + 20_000
    var owner = ""
    while owner.isEmpty && Clock.monotonicMs() < deadline {
      owner = sql("SELECT coalesce(node, '') FROM cortex_task WHERE id = \(TaskID.parse(id)!) AND state = 'running'")
      sleepMs(20)
    }
    XCTAssertFalse(owner.isEmpty, "the task never started")
    sleepMs(300)
    // Cancel from the node that does not run it; it returns once the process group is gone.
    let other = owner == "a" ? b : a
    let r = other.ok(["cancel", id], timeoutS: 30)
    XCTAssertTrue(r.err.contains("\(id) cancelled"), r.err)
    XCTAssertFalse(
      Processes.all().contains { $0.commandLine.joined(separator: " ").contains(marker) && !$0.isZombie },
      "the cancelled task's process is still there")
    XCTAssertEqual(sql("SELECT state || ':' || node FROM cortex_task_done WHERE id = \(TaskID.parse(id)!)"), "cancelled:\(owner)")
    // show on any node: the cluster's record, naming the node that ran it.
    let shown = try JSON.parse(Array(other.ok(["--json", "show", id]).out.utf8))
    XCTAssertEqual(shown["state"]?.string, "cancelled")
    XCTAssertEqual(shown["node"]?.string, owner)
    XCTAssertTrue(other.ok(["show", id]).out.contains("node            \(owner)"))
    // wait on any node answers with the task's own exit code, wherever it ran.
    let failing = b.ok(["submit", "-p", "--no-env", "--shell", "exit 3"]).out.trimmed
    XCTAssertEqual(a.run(["wait", failing], timeoutS: 30).code, 3)
    XCTAssertEqual(b.run(["wait", failing], timeoutS: 30).code, 3)
    XCTAssertEqual(a.run(["wait", "task-999999"], timeoutS: 30).code, 65)
    // list --type on any node finds them as on a single host (a spec without a type is exec),
    // with the priority of finished tasks too.
    let listed = try JSON.parse(Array(a.ok(["--json", "list", "--type", "exec"]).out.utf8)).array ?? []
    XCTAssertEqual(Set(listed.compactMap { $0["id"]?.string }), [id, failing])
    XCTAssertTrue(listed.allSatisfy { $0["type"]?.string == "exec" && $0["priority"]?.string == "medium" }, "\(listed)")
    // status and tail say which node this is and which node decided each line.
    XCTAssertTrue(a.ok(["status"]).out.contains("cluster    node a;"))
    // The node's own budget is a placeholder (2^60): top and status --json point at the cluster's.
    let top = a.ok(["top", "--once"]).out
    XCTAssertTrue(top.contains("budget    the cluster's (node a)") && !top.contains(String(1 << 60)), top)
    let st = try JSON.parse(Array(a.ok(["--json", "status"]).out.utf8))
    XCTAssertEqual(st["budget"]?["scope"]?.string, "cluster")
    XCTAssertEqual(st["cluster"]?["node"]?.string, "a")
    XCTAssertTrue(b.ok(["tail", "-n", "5"]).out.contains("[b] "))
  }

  func testAFrozenNodeFencesItselfAndItsLateCompletionsAreRefused() throws {
    let a = try startNode("a", workers: 2, leaseS: 2)
    let b = try startNode("b", workers: 2, leaseS: 2)
    // Long enough that a's claims are still running when it is frozen.
    // More than b holds (its workers plus as many claimed ahead), so a claims some too.
    let input = batch(12) { _ in #"{"synthetic":{"duration_ms":2000,"tokens":1}}"# }
    b.ok(["submit", "--no-env", "--from", "-"], input: input)
    let deadline = Clock.monotonicMs() + 20_000
    while sql("SELECT count(*) FROM cortex_task WHERE node = 'a' AND state = 'running'") == "0" && Clock.monotonicMs() < deadline {
      sleepMs(10)
    }
    let held = sql("SELECT string_agg(id::text, ',') FROM cortex_task WHERE node = 'a' AND state = 'running'")
    XCTAssertFalse(held.isEmpty, "node a claimed nothing")
    let pid = try XCTUnwrap(a.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.stop))
    sleepMs(4500)  // past the lease: b fences a and runs its tasks; a's workers finish theirs meanwhile
    XCTAssertTrue(Processes.signal(pid, Signal.cont))
    waitDone(12, timeoutS: 60)
    a.eventually("node a noticed it was fenced") { a.events().contains { $0.type == "node.fenced" } }
    // Each task a held when it froze ended once, under a later claim (by b, or by a after it joined again).
    XCTAssertEqual(
      sql("SELECT count(*) FROM cortex_task_done WHERE id IN (\(held)) AND attempt > 1"), String(held.split(separator: ",").count))
    XCTAssertEqual(sql("SELECT count(DISTINCT id) FROM cortex_task_done"), "12")
    // Whatever a finished while frozen was refused, never accepted.
    let refused = a.events().filter { $0.type == "task.completion_refused" }
    // (After the fence a joins again under a new epoch and may run later tasks; nothing it claimed
    // under its first epoch is accepted from it.)
    let accepted = sql("SELECT count(*) FROM cortex_task_done WHERE node = 'a' AND epoch = 1")
    XCTAssertEqual(accepted, "0", "a fenced node's completion was accepted")
    XCTAssertTrue(
      refused.allSatisfy { held.split(separator: ",").contains(Substring($0.taskID.flatMap(TaskID.parse).map(String.init) ?? "")) })
  }

  func testPostgreSQLDownRefusesSubmitsAtOnceAndLosesNothingAcknowledged() throws {
    let a = try startNode("a", workers: 2, leaseS: 10)
    try startNode("b", workers: 2, leaseS: 10)
    let first = batch(40) { _ in #"{"synthetic":{"duration_ms":20,"tokens":1}}"# }
    let ids = a.ok(["submit", "--no-env", "--from", "-"], input: first).out.split(separator: "\n")
    XCTAssertEqual(ids.count, 40)
    pg.pause()
    let t0 = Clock.monotonicMs()
    let r = a.run(["submit", "--no-env", "--synthetic", "1"], timeoutS: 30)
    XCTAssertEqual(r.code, 75, r.err)
    XCTAssertTrue(r.err.contains("cluster_unavailable"), r.err)
    XCTAssertLessThan(Clock.monotonicMs() - t0, 3000, "a submit waited for the database")
    // Waiting for the database costs (almost) nothing, also once a lease renewal is overdue
    // (lease/3 = 3.3 s after the last one): a link that then retried without a pause spun a
    // sixth of a core (about 48 ticks in 3 s; an idle node uses 1 or 2).
    sleepMs(3500)
    let pid = try XCTUnwrap(a.daemonPID)
    let ticks = try cpuTicks(pid)
    sleepMs(3000)
    XCTAssertLessThan(try cpuTicks(pid) - ticks, 20, "a node spins while PostgreSQL is down")
    // The node says so where a person looks first (it was silent: "cluster node a" as if all was well).
    let down = a.ok(["status"]).out
    XCTAssertTrue(down.contains("POSTGRESQL UNREACHABLE for "), down)
    let downJSON = try JSON.parse(Array(a.ok(["--json", "status"]).out.utf8))
    XCTAssertEqual(downJSON["cluster"]?["database"]?.string, "unreachable", "\(downJSON)")
    XCTAssertNotNil(downJSON["cluster"]?["unreachable_since"]?.string)
    try pg.start()
    // Admission resumes once the link has reconnected.
    var more: [Substring] = []
    let deadline = Clock.monotonicMs() + 20_000
    while more.isEmpty && Clock.monotonicMs() < deadline {
      let again = a.run(["submit", "--no-env", "--from", "-"], input: batch(10) { _ in #"{"synthetic":{"duration_ms":5}}"# })
      if again.code == 0 { more = again.out.split(separator: "\n") } else { sleepMs(200) }
    }
    XCTAssertEqual(more.count, 10, "admission did not resume")
    waitDone(50)
    XCTAssertEqual(sql("SELECT count(DISTINCT id) FROM cortex_task_done WHERE state = 'succeeded'"), "50")
    let up = try JSON.parse(Array(a.ok(["--json", "status"]).out.utf8))
    XCTAssertEqual(up["cluster"]?["database"]?.string, "reachable", "\(up)")
    XCTAssertFalse(a.ok(["status"]).out.contains("UNREACHABLE"))
    XCTAssertTrue(a.events().contains { $0.type == "cluster.unavailable" })
    XCTAssertTrue(a.events().contains { $0.type == "cluster.available" })
  }

  func testMaxQueueAdmissionCountsTheWholeCluster() throws {
    let a = try startNode("a", workers: 1)
    let b = try startNode("b", workers: 1)
    for node in [a, b] {
      try node.initialize([
        ("max_queue", .int(10)),
        ("cluster", .object([("postgres", .string(pg.dsn)), ("node", .string(node === a ? "a" : "b")), ("lease_s", .double(2))])),
      ])
      XCTAssertEqual(Processes.signal(node.daemonPID ?? 0, Signal.hup), true)
    }
    sleepMs(300)
    let long = #"{"shell":"sleep 30"}"#
    a.ok(["submit", "--no-env", "--from", "-"], input: batch(8) { _ in long })
    // Whatever the nodes have claimed meanwhile, 8 + 9 or what is left + 9 is past 10.
    let r = b.run(["submit", "--no-env", "--from", "-"], input: batch(9) { _ in long })
    XCTAssertEqual(r.code, 75, r.err)
    XCTAssertTrue(r.err.contains("queue_full") && r.err.contains("in the cluster"), r.err)
    let big = b.run(["submit", "--no-env", "--from", "-"], input: batch(11) { _ in long })
    XCTAssertEqual(big.code, 65, big.err)
    XCTAssertTrue(big.err.contains("batch_too_large"), big.err)
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task"), "8")
  }

  func testDependenciesHoldAcrossNodesAndAFailedOneCancelsItsChain() throws {
    let a = try startNode("a", workers: 2)
    let b = try startNode("b", workers: 2)
    let flag = a.scratch + "/first-done"
    // #2 and #3 only succeed if they run after #1 finished; #5 and #6 wait on a failure.
    let chain = [
      "{\"shell\":\"sleep 1; touch \(flag)\"}", "{\"shell\":\"test -f \(flag)\",\"depends_on\":[\"#1\"]}",
      "{\"shell\":\"test -f \(flag)\",\"depends_on\":[\"#2\"]}", #"{"shell":"exit 2"}"#,
      ##"{"shell":"true","depends_on":["#4"]}"##, ##"{"shell":"true","depends_on":["#5"]}"##,
    ]
    let ids = a.ok(["submit", "--no-env", "--from", "-"], input: chain.joined(separator: "\n") + "\n").out.split(separator: "\n")
      .map(String.init)
    XCTAssertEqual(ids.count, 6)
    // A task on another node that waits on #1, by its cluster id (`--after`).
    let across = b.ok(["submit", "-p", "--no-env", "--after", ids[0], "--shell", "test -f \(flag)"]).out.trimmed
    waitDone(7, timeoutS: 60)
    func outcome(_ id: String) -> String {
      sql("SELECT state || ':' || coalesce(reason, '') FROM cortex_task_done WHERE id = \(TaskID.parse(id)!)")
    }
    for id in [ids[0], ids[1], ids[2], across] { XCTAssertEqual(outcome(id).prefix(9), "succeeded", "\(id): \(outcome(id))") }
    XCTAssertEqual(outcome(ids[3]).prefix(6), "failed")
    XCTAssertEqual(outcome(ids[4]), "cancelled:dependency_failed")
    XCTAssertEqual(outcome(ids[5]), "cancelled:dependency_failed")
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_dep"), "0", "edges of finished tasks are left behind")
    // `show` on either node prints the dependencies with the cluster's ids.
    for node in [a, b] {
      let shown = try JSON.parse(Array(node.ok(["--json", "show", ids[1]]).out.utf8))
      XCTAssertEqual(shown["spec"]?["depends_on"]?.array?.first?.string, ids[0], "\(shown)")
    }
    // Clear errors: unknown, already failed, a "#N" that is not earlier in the batch.
    var r = b.run(["submit", "-p", "--no-env", "--after", "task-999999", "--shell", "true"])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("unknown task task-999999"), r.err)
    r = a.run(["submit", "-p", "--no-env", "--after", ids[3], "--shell", "true"])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("already ended failed"), r.err)
    r = a.run(
      ["submit", "--no-env", "--from", "-"], input: ##"{"shell":"true","depends_on":["#2"]}"## + "\n" + #"{"shell":"true"}"# + "\n")
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("#2 is not an earlier task"), r.err)
    // A `retry_of` must name a task the cluster knows, wherever it ran.
    r = b.run(
      ["submit", "--no-env", "--from", "-"], input: #"{"shell":"true"}"# + "\n" + #"{"shell":"true","retry_of":"task-999999"}"# + "\n")
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("retry_of") && r.err.contains("unknown task task-999999"), r.err)
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task"), "0", "a refused batch left rows")
    // An idempotency key answers with the same id on every node, live or finished, and adds nothing.
    let keyed = a.ok(["submit", "-p", "--no-env", "--idempotency-key", "k-1", "--shell", "true"]).out.trimmed
    XCTAssertEqual(b.ok(["submit", "-p", "--no-env", "--idempotency-key", "k-1", "--shell", "true"]).out.trimmed, keyed)
    waitDone(8, timeoutS: 30)
    let again = b.ok(
      ["submit", "--no-env", "--from", "-"],
      input: ##"{"shell":"true","idempotency_key":"k-1"}"## + "\n" + ##"{"shell":"true","idempotency_key":"k-2"}"## + "\n"
        + ##"{"shell":"true","idempotency_key":"k-2"}"## + "\n")
    let againIDs = again.out.split(separator: "\n").map(String.init)
    XCTAssertEqual(againIDs.count, 3)
    XCTAssertEqual(againIDs[0], keyed)
    XCTAssertEqual(againIDs[1], againIDs[2])
    waitDone(9, timeoutS: 30)
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task_done"), "9", "a repeated key added a task")
    // One that names a task of the cluster (submitted on the other node) is accepted.
    let retried = b.ok(["submit", "--no-env", "--from", "-"], input: ##"{"shell":"true","retry_of":"\##(ids[3])"}"## + "\n").out.trimmed
    let shown = try JSON.parse(Array(a.ok(["--json", "show", retried]).out.utf8))
    XCTAssertEqual(shown["spec"]?["retry_of"]?.string, ids[3], "\(shown)")
    waitDone(10, timeoutS: 30)
  }

  func testFinishedRecordsLeaveTheHistoryAfterTheRetentionSetting() throws {
    let c = try Cortex()
    nodes.append(c)
    try c.initialize([
      ("cluster", .object([("postgres", .string(pg.dsn)), ("node", .string("r")), ("lease_s", .double(2)), ("history_s", .double(1))]))
    ])
    c.ok(["start", "--workers", "2"])
    c.ok(["submit", "--no-env", "--from", "-"], input: batch(20) { _ in #"{"synthetic":{"duration_ms":1}}"# })
    waitDone(20, timeoutS: 30)
    let deadline = Clock.monotonicMs() + 15_000
    while sql("SELECT count(*) FROM cortex_task_done") != "0" && Clock.monotonicMs() < deadline { sleepMs(200) }
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task_done"), "0", "records past history_s were not removed")
    let events = c.ok(["--json", "tail", "-n", "1000"]).out
    XCTAssertTrue(events.contains("cluster.settled") && events.contains(#""trimmed":"#), events.suffix(2000).description)
  }

  func testTerminalStatesReachedDuringAnOutageAreDeliveredOnceAfterARestart() throws {
    let a = try startNode("a", workers: 2, leaseS: 30)
    let marks = (0..<2).map { "\(a.scratch)/ran-\($0)" }
    let input = marks.map { "{\"shell\":\"sleep 1.5; echo x >> \($0)\"}" }.joined(separator: "\n") + "\n"
    let ids = a.ok(["submit", "--no-env", "--from", "-"], input: input).out.split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, 2)
    let deadline = Clock.monotonicMs() + 20_000
    while sql("SELECT count(*) FROM cortex_task WHERE state = 'running'") != "2" && Clock.monotonicMs() < deadline { sleepMs(20) }
    pg.pause()
    // Both finish while the database is down; their states wait in the outbox on disk.
    a.eventually("the tasks finished and their states were kept") {
      marks.allSatisfy { FileSystem.exists($0) } && FileSystem.exists(a.root + "/cluster-outbox.jsonl")
        && (((try? FileSystem.read(a.root + "/cluster-outbox.jsonl")) ?? nil)?.filter { $0 == 10 }.count ?? 0) == 2
    }
    XCTAssertTrue(Processes.signal(try XCTUnwrap(a.daemonPID), Signal.kill))
    a.eventually("node a's processes are gone") { a.leftovers.allSatisfy { $0.isZombie } }
    try pg.start()
    a.ok(["start", "--workers", "2"])
    waitDone(2, timeoutS: 30)
    for id in ids {
      XCTAssertEqual(
        sql("SELECT state || ':' || node || ':' || attempt FROM cortex_task_done WHERE id = \(TaskID.parse(id)!)"), "succeeded:a:1")
    }
    sleepMs(1500)  // a rescue round, which would requeue a claim left running
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task"), "0")
    for m in marks {
      XCTAssertEqual(((try? FileSystem.read(m)) ?? nil)?.count, 2, "\(m): the task ran again instead of its state being delivered")
    }
    let replayed = a.events().first { $0.type == "cluster.replayed" }
    XCTAssertEqual(replayed?["accepted"]?.int, 2)
    XCTAssertFalse(FileSystem.exists(a.root + "/cluster-outbox.jsonl"), "the outbox outlived its delivery")
  }

  /// A node refuses a restart in place (SIGUSR2); `cortex restart` waited its whole timeout for a
  /// new program that never came, then pointed at daemon.log, which did not say why.
  func testRestartOnANodeIsRefusedAtOnceNamingWhatToDoInstead() throws {
    let a = try startNode("a", workers: 1)
    let t0 = Clock.monotonicMs()
    let r = a.run(["restart", "--timeout", "10"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("not built for cluster mode") && r.err.contains("cortex stop, then cortex start"), r.err)
    XCTAssertLessThan(Clock.monotonicMs() - t0, 5000, "restart waited for a restart that never comes")
    XCTAssertEqual(a.run(["status"]).code, 0, "the node is still up")
  }

  /// Node a (lease 4 s, one worker) runs `shell`, then PostgreSQL stops answering (paused) until
  /// a fences itself.
  func fencedWhileRunning(_ shell: String) throws -> (Cortex, String) {
    let a = try startNode("a", workers: 1, leaseS: 4)
    let id = a.ok(["submit", "-p", "--no-env", "--shell", shell]).out.trimmed
    a.eventually("a runs the task") { sql("SELECT state FROM cortex_task") == "running" }
    pg.pause()
    a.eventually("a fences itself") { a.events().contains { $0.type == "node.fenced" } }
    return (a, id)
  }

  /// A cancel asked for while PostgreSQL was unreachable was dropped by the link: the node, fenced
  /// meanwhile, had killed the task, the rescue after the outage put it back in the queue, it ran
  /// again as attempt 2, and `cortex cancel` waited until it ended by itself ("already succeeded").
  /// (`cancel` now answers 75 `cluster_unavailable` at once, the cancel kept: ClusterOutageAnswerTests.)
  func testACancelAskedForDuringAnOutageIsCarriedOutWhenPostgreSQLIsBack() throws {
    let (a, id) = try fencedWhileRunning("sleep 60")
    let devNull = try FileDescriptor.open("/dev/null", [.readWrite])
    defer { devNull.close() }
    let cancel = try Processes.spawn(
      [Cortex.binary, "--dir", a.root, "cancel", id], environment: Environment.all().filter { !$0.hasPrefix("CORTEX_") },
      stdin: devNull, stdout: devNull, stderr: devNull, newProcessGroup: false)
    sleepMs(500)
    try pg.start()
    let deadline = Clock.monotonicMs() + 20_000
    var status: ExitStatus? = nil
    while status == nil && Clock.monotonicMs() < deadline {
      status = Processes.reap(cancel)?.status
      sleepMs(50)
    }
    if status == nil {
      _ = Processes.signal(cancel, Signal.kill)
      _ = Processes.wait(cancel)
    }
    XCTAssertEqual(status, .exited(75), "cortex cancel during the outage")
    a.eventually("the kept cancel ends the task once PostgreSQL is back", timeoutS: 20) {
      sql("SELECT state FROM cortex_task_done") == "cancelled"
    }
    XCTAssertFalse(a.events().contains { $0.type == "task.started" && $0["attempt"]?.int == 2 }, "the cancelled task ran again")
  }

  /// A node that fenced itself ends its claim locally (cancelled); the rescue may give the task
  /// back to it, and that attempt ends too: two terminal events for one task, one per attempt.
  /// `cortex doctor` called that a FAIL ("more than one terminal event") and exited 1.
  func testDoctorOnANodeAcceptsOneTerminalEventPerAttemptOfATaskItClaimedAgain() throws {
    let (a, id) = try fencedWhileRunning("sleep 5")
    try pg.start()
    waitDone(1)
    XCTAssertEqual(sql("SELECT state || ':' || attempt FROM cortex_task_done"), "succeeded:2")
    let ends = a.events().filter { $0.taskID == id && ($0.type == "task.cancelled" || $0.type == "task.succeeded") }
    XCTAssertEqual(ends.count, 2, "\(ends)")
    let d = a.run(["doctor"])
    XCTAssertEqual(d.code, 0, d.out + d.err)
    XCTAssertFalse(d.out.contains("more than one terminal event"), d.out)
  }
}

extension ClusterModeTests {
  /// Found with `cortex cluster status` after `cortex stop` of a busy node: the stopped node
  /// still showed the tasks it ran when it left (RUNNING 1) for as long as its row lived, while
  /// the cluster had run them elsewhere since.
  func testANodeThatStoppedShowsNothingRunning() throws {
    let b = try startNode("b", workers: 1)
    let long = b.ok(["submit", "-p", "--no-env", "--shell", "sleep 60"]).out.trimmed
    b.eventually("b runs \(long)") {
      let s = try? JSON.parse(Array(b.ok(["--json", "cluster", "status"]).out.utf8))
      return s?["nodes"]?.array?.first?["running"]?.int == 1
    }
    b.ok(["stop", "--timeout", "1"])
    let s = try JSON.parse(Array(b.ok(["--json", "cluster", "status"]).out.utf8))
    let row = s["nodes"]?.array?.first
    XCTAssertEqual(row?["state"]?.string, "stopped", "\(s)")
    XCTAssertEqual(row?["running"]?.int, 0, "\(s)")
    b.ok(["start", "--workers", "1"])
    b.ok(["cancel", long])
  }
}

extension ClusterModeTests {
  /// Found with `cortex status` on two nodes: each said "next task" from its own counter, which
  /// cluster mode does not use (ids come from the database's sequence): one said task-000006
  /// while the cluster's next id was task-000007.
  func testStatusOnANodeDoesNotPromiseANextTaskIdTheClusterWillNotGive() throws {
    let a = try startNode("a", workers: 1)
    let b = try startNode("b", workers: 1)
    for _ in 0..<2 { a.ok(["submit", "--wait", "--no-env", "--shell", "true"]) }
    let status = b.ok(["status"]).out
    XCTAssertTrue(status.contains("cluster    node b"), status)
    XCTAssertFalse(status.contains("next task"), status)
    let local = try Cortex()
    nodes.append(local)
    try local.initialize()
    local.ok(["start", "--workers", "1"])
    XCTAssertTrue(local.ok(["status"]).out.contains("next task task-000001"), "a single host still says it")
  }
}

extension ClusterModeTests {
  /// Found with `cortex budget` on a node: it printed the node's placeholder budget (2^60 tokens
  /// total and available), which `status`, the web view and the metrics all hide, instead of
  /// the cluster's; and `cortex doctor` checked that placeholder as "the budget invariant".
  func testBudgetOnANodeIsTheClustersWithThisNodesReservations() throws {
    let a = try startNode("a", workers: 1, budget: 1000)
    let b = try startNode("b", workers: 1, budget: 1000, config: [("snapshot_interval_s", .int(1))])
    a.ok(["stop"])
    let long = b.ok(["submit", "-p", "--no-env", "--tokens", "300", "--shell", "sleep 60"]).out.trimmed
    b.eventually("b runs \(long)") { sql("SELECT state FROM cortex_task") == "running" }
    let v = try JSON.parse(Array(b.ok(["--json", "budget"]).out.utf8))
    XCTAssertEqual(v["scope"]?.string, "cluster", "\(v)")
    XCTAssertEqual(v["total"]?.int, 1000, "\(v)")
    XCTAssertEqual(v["reserved"]?.int, 300, "\(v)")
    XCTAssertEqual(v["available"]?.int, 700, "\(v)")
    XCTAssertEqual(v["allocations"]?.array?.first?["task_id"]?.string, long, "\(v)")
    let text = b.ok(["budget"]).out
    XCTAssertTrue(text.hasPrefix("total      1000\nreserved   300\nused       0\navailable  700\n"), text)
    XCTAssertFalse(text.contains(String(1 << 60)), text)
    b.eventually("b writes token-budget.json") { FileSystem.exists(b.paths.tokenBudget) }
    let d = b.ok(["doctor"]).out
    XCTAssertFalse(d.contains(String(1 << 60)), d)
    XCTAssertTrue(d.contains("this node's token accounts add up (300 reserved, 0 used); the budget is the cluster's: cortex budget"), d)
    b.ok(["cancel", long])
  }
}
