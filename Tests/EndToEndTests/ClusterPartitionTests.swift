import CortexCore
import Posix
import XCTest

/// Cluster mode across a network partition: node `b` runs in a network namespace of its own and
/// reaches PostgreSQL over TCP through a veth link, which the test cuts (packets vanish, no
/// reset) and heals. Node `a` and the server stay on this side. Needs root (`ip netns`).
final class ClusterPartitionTests: ClusterOverANetworkTestCase {
  /// A cut-off node's libpq statement waits while TCP retransmits (minutes). Before the lease
  /// watch, the node checked its lease only between statements: it never fenced itself, and ran
  /// its tasks on while `a` rescued and ran them again.
  func testACutOffNodeStopsItsTasksBeforeAnotherRunsThemAndJoinsAgainSoonAfterTheLinkIsBack() throws {
    let leaseS = 4.0
    let b = try startNode("b", workers: 2, leaseS: leaseS, dsn: pg.tcpDSN, launcher: net.launcher)
    let ids = b.ok(["submit", "--no-env", "--from", "-"], input: batch(2) { _ in #"{"command":["sleep","10"]}"# }).out
      .split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, 2)
    b.eventually("b runs both tasks") { b.events().filter { $0.type == "task.started" }.count == 2 }
    let a = try startNode("a", workers: 2, leaseS: 2, dsn: pg.tcpDSN)

    try net.cut()
    let cut = Clock.monotonicMs()
    // b fences itself within 3/4 of its lease (plus the watch's step and the loop's turn).
    b.eventually("b fences itself while cut off", timeoutS: 8) { b.events().contains { $0.type == "node.fenced" } }
    XCTAssertLessThan(Clock.monotonicMs() - cut, Int64(leaseS * 1000) + 2_000, "b fenced itself too late")
    // a rescues them once b's lease lapses and runs them to the end.
    waitDone(2, timeoutS: 40)
    let ranOnB = b.events(), ranOnA = a.events()
    for id in ids {
      let stopped = ranOnB.first { $0.taskID == id && ["task.cancelled", "task.failed", "task.succeeded"].contains($0.type ?? "") }
      let restarted = ranOnA.first { $0.taskID == id && $0.type == "task.started" }
      let stoppedAt = try XCTUnwrap(stopped?["ts"]?.string.flatMap(Timestamp.parse), "b never stopped \(id)")
      let restartedAt = try XCTUnwrap(restarted?["ts"]?.string.flatMap(Timestamp.parse), "a never ran \(id)")
      XCTAssertLessThanOrEqual(stoppedAt, restartedAt, "\(id) ran on b and a at once")
    }
    XCTAssertEqual(sql("SELECT string_agg(DISTINCT node, ',') FROM cortex_task_done"), "a")

    // Cut off, b answers a submit at once with 75 instead of waiting on the link.
    let asked = Clock.monotonicMs()
    let refused = b.run(["submit", "--no-env", "--", "true"], timeoutS: 30)
    XCTAssertEqual(refused.code, 75, refused.err)
    XCTAssertLessThan(Clock.monotonicMs() - asked, 15_000, "a submit on the cut-off node waited \(Clock.monotonicMs() - asked) ms")

    // Thirty seconds cut off: TCP's next retransmission of a statement still waiting would come
    // twenty seconds after the link is back. b joins again within seconds, under a new epoch.
    while Clock.monotonicMs() - cut < 30_000 { sleepMs(200) }
    try net.heal()
    let healed = Clock.monotonicMs()
    b.eventually("b joins the cluster again", timeoutS: 20) {
      b.events().contains { $0.type == "node.joined" && ($0["epoch"]?.int ?? 0) > 1 }
    }
    XCTAssertLessThan(Clock.monotonicMs() - healed, 10_000, "b took \(Clock.monotonicMs() - healed) ms to join again")
    b.ok(["submit", "--no-env", "--from", "-"], input: batch(3) { _ in #"{"command":["true"]}"# })
    waitDone(5, timeoutS: 30)
    // Nothing b finished under its first membership was accepted.
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task_done WHERE node = 'b' AND epoch = 1"), "0")
  }

  /// The link to two of three nodes goes down and up eight times while 40 tasks of 3 s run:
  /// every task ends once, succeeded; no two runs of a task overlap in time (a node that cannot
  /// renew stops its runs before another node may start them, and a run outlives the lease);
  /// both nodes are members again at the end. Each run notes its start and end (or its SIGTERM)
  /// in a shared file. Before the lease watch, a cut-off node ran on until the link came back.
  func testAFlappingLinkLosesNoTaskAndNeverRunsOneTwiceAtOnce() throws {
    let a = try startNode("a", workers: 3, leaseS: 2, dsn: pg.tcpDSN)
    let b = try startNode("b", workers: 3, leaseS: 2, dsn: pg.tcpDSN, launcher: net.launcher)
    try startNode("c", workers: 3, leaseS: 2, dsn: pg.tcpDSN, launcher: net.launcher)
    let runs = a.scratch + "/runs.log"
    let note = { (what: String) in "echo $CORTEX_TASK_ID $CORTEX_ATTEMPT \(what) $(date +%s.%N) >> \(runs)" }
    let shell = "trap '\(note("killed")); exit 143' TERM; \(note("start")); sleep 3 & wait; \(note("end"))"
    let line = JSON.object([("shell", .string(shell))]).encoded()
    b.ok(["submit", "--no-env", "--from", "-"], input: batch(40) { _ in line })
    // (up, down) in ms, fixed so that a failure can be run again as it was.
    let flaps = [
      (700, 1500), (1200, 3100), (400, 2200), (1800, 1100), (900, 4200), (300, 1700), (1500, 2600), (600, 3400),
    ]
    for (up, down) in flaps {
      sleepMs(up)
      try net.cut()
      sleepMs(down)
      try net.heal()
    }
    waitDone(40, timeoutS: 120)
    let ended = sql("SELECT count(*) || ' ' || count(DISTINCT id) || ' ' || string_agg(DISTINCT state, ',') FROM cortex_task_done")
    XCTAssertEqual(ended, "40 40 succeeded")
    a.eventually("b and c are members again", timeoutS: 30) {
      sql("SELECT string_agg(name || ' ' || state, ',' ORDER BY name) FROM cortex_node") == "a alive,b alive,c alive"
    }

    // Every run of a task, in the order they started: each must have ended before the next began.
    var byTask: [String: [(attempt: String, what: String, at: Double)]] = [:]
    let text = String(decoding: try XCTUnwrap(FileSystem.read(runs)), as: UTF8.self)
    for row in text.split(separator: "\n") {
      let f = row.split(separator: " ").map(String.init)
      guard f.count == 4, let at = Double(f[3]) else { continue }
      byTask[f[0], default: []].append((f[1], f[2], at))
    }
    XCTAssertEqual(byTask.count, 40)
    var runTwice = 0
    for (id, notes) in byTask {
      let starts = notes.filter { $0.what == "start" }.sorted { $0.at < $1.at }
      var ends = notes.filter { $0.what != "start" }
      if starts.count > 1 { runTwice += 1 }
      var previousEnd = -Double.infinity
      for s in starts {
        XCTAssertGreaterThanOrEqual(s.at, previousEnd, "\(id): a run began before the one before it ended: \(notes)")
        guard let e = ends.firstIndex(where: { $0.attempt == s.attempt && $0.at >= s.at }) else {
          XCTFail("\(id): a run never ended: \(notes)")
          break
        }
        previousEnd = ends.remove(at: e).at
      }
    }
    // The flapping did stop runs (the test is not vacuous).
    XCTAssertGreaterThan(runTwice, 0, "no task ran twice: the link's cuts stopped nothing")
  }

  /// A submit whose COMMIT the server carries out while the link is cut, its answer lost: the
  /// refusal says whether the task was added is not known (it said the database "did not take
  /// the batch", and a script repeating a 75 would add it twice), and the task is in the cluster.
  /// A deferred trigger holds each COMMIT that adds a task for 3 s, so that the cut falls inside.
  func testASubmitCutOffDuringItsCommitSaysWhetherItWasAddedIsNotKnown() throws {
    let b = try startNode("b", workers: 1, leaseS: 4, dsn: pg.tcpDSN, launcher: net.launcher)
    try pg.psql(
      "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$; "
        + "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON cortex_task DEFERRABLE INITIALLY DEFERRED "
        + "FOR EACH ROW EXECUTE FUNCTION slow_commit()")
    let out = try FileDescriptor.open(b.scratch + "/submit.out", [.writeOnly, .create, .truncate])
    let err = try FileDescriptor.open(b.scratch + "/submit.err", [.writeOnly, .create, .truncate])
    let asked = Clock.monotonicMs()
    let pid = try Processes.spawn(
      [Cortex.binary, "--dir", b.root, "submit", "--no-env", "--", "true"], environment: Environment.all(), stdin: nil, stdout: out,
      stderr: err, newProcessGroup: false)
    out.close()
    err.close()
    sleepMs(1000)  // the COMMIT is on the server, sleeping in the trigger
    try net.cut()
    var status: ExitStatus? = nil
    while status == nil && Clock.monotonicMs() - asked < 30_000 {
      status = Processes.reap(pid)?.1
      sleepMs(20)
    }
    if status == nil {
      _ = Processes.signal(pid, Signal.kill)
      _ = Processes.wait(pid)
    }
    let said = String(decoding: (try FileSystem.read(b.scratch + "/submit.err")) ?? [], as: UTF8.self)
    XCTAssertEqual(status, .exited(75), "the submit did not end with 75 within 30 s: \(said)")
    XCTAssertTrue(said.contains("is not known") && said.contains("--idempotency-key"), said)
    XCTAssertFalse(said.contains("did not take"), said)
    try net.heal()
    // The server did commit it: it runs once b is a member again.
    waitDone(1, timeoutS: 40)
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task_done"), "1")
  }

  /// `cancel` and `wait` on a node cut off from PostgreSQL: each answered from the database, they
  /// waited silently for as long as the cut lasted (the cancel for good: the task had ended on
  /// the other side by its rescue, and nothing told the client). Now the cancel ends with 75
  /// `cluster_unavailable` once the link knows (a statement on a cut link is bounded by the
  /// lease), and the wait says why it goes on waiting.
  func testCancelAndWaitOnACutOffNodeSayTheDatabaseIsUnreachable() throws {
    let leaseS = 4.0
    let b = try startNode("b", workers: 1, leaseS: leaseS, dsn: pg.tcpDSN, launcher: net.launcher)
    let id = b.ok(["submit", "-p", "--no-env", "--", "sleep", "60"]).out.trimmed
    b.eventually("b runs the task") { b.events().contains { $0.type == "task.started" && $0.taskID == id } }
    try net.cut()
    let cut = Clock.monotonicMs()
    let cancel = b.run(["cancel", id], timeoutS: 30)
    XCTAssertEqual(cancel.code, 75, "cancel on the cut-off node: \(cancel.err)")
    XCTAssertTrue(cancel.err.contains("cluster_unavailable"), cancel.err)
    XCTAssertLessThan(Clock.monotonicMs() - cut, Int64(leaseS * 1000) + 5_000, "the cancel waited past the lease")
    let waiting = try b.background(["wait", id])
    b.eventually("wait says the node cannot reach the database", timeoutS: 5) {
      String(decoding: ((try? FileSystem.read(waiting.err)) ?? nil) ?? [], as: UTF8.self).contains("cannot reach the cluster's database")
    }
    XCTAssertTrue(Processes.isAlive(waiting.pid), "wait ended while the database cannot say how the task ended")
    _ = Processes.signal(waiting.pid, Signal.term)
    _ = b.collect(waiting)
    try net.heal()
  }
}
