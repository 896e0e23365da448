import CortexCluster
import CortexCore
import Dispatch
import Posix
import Synchronization
import XCTest

/// The shared-database half of cluster mode (`ClusterStore` over `ClusterSQL`) against a real
/// PostgreSQL: node names, concurrent claims, fencing of a lapsed node, the cluster budget.
final class ClusterStoreTests: XCTestCase {
  var pg: Postgres!

  override func setUpWithError() throws {
    pg = try Postgres()
    try Migrations.migrate(try PGConnection(pg.dsn))
  }
  override func tearDown() { pg?.stop() }

  func store(_ name: String) throws -> ClusterStore { ClusterStore(try PGConnection(pg.dsn), node: name) }

  func tasks(_ n: Int, tokens: Int = 0, priority: Int = 2) -> [ClusterStore.NewTask] {
    (0..<n).map { i in
      .init(
        priority: priority, spec: .object([("shell", .string("echo \(i)"))]), tokenBudget: tokens, timeoutMs: nil, maxAttempts: 1,
        idempotencyKey: nil)
    }
  }

  func testANodeNameHeldByALiveNodeIsRefusedAndFreedByLeaving() throws {
    let a = try store("alpha")
    try a.join(leaseS: 10, host: "h1", pid: 11, workers: 2, budgetTotal: 1000)
    XCTAssertEqual(a.epoch, 1)
    let b = try store("alpha")
    XCTAssertThrowsError(try b.join(leaseS: 10, host: "h2", pid: 22, workers: 2, budgetTotal: 1000)) { e in
      XCTAssertTrue("\(e)".contains("already alive") && "\(e)".contains("h1"), "\(e)")
    }
    try a.leave()
    try b.join(leaseS: 10, host: "h2", pid: 22, workers: 2, budgetTotal: 1000)
    XCTAssertEqual(b.epoch, 2)
  }

  func testConcurrentClaimsFromThreeNodesNeverOverlapAndFollowPriority() throws {
    let submitter = try store("s")
    try submitter.join(leaseS: 30, host: "h", pid: 1, workers: 1, budgetTotal: 1_000_000)
    let low = try submitter.submit(tasks(300, priority: 1))
    let high = try submitter.submit(tasks(30, priority: 3))
    XCTAssertEqual(low.count, 300)
    XCTAssertEqual(Set(low + high).count, 330)
    // Priority first, FIFO within a priority.
    let first = try submitter.claim(limit: 20).map(\.id)
    XCTAssertEqual(first, Array(high.prefix(20)))
    let second = try submitter.claim(limit: 20).map(\.id)
    XCTAssertEqual(second, Array(high.suffix(10)) + Array(low.prefix(10)))
    let claimed = Mutex<[String: [Int]]>(["s": first + second])
    let failures = Mutex<[String]>([])
    let dsn = pg.dsn
    DispatchQueue.concurrentPerform(iterations: 3) { i in
      do {
        let s = ClusterStore(try PGConnection(dsn), node: "n\(i)")
        try s.join(leaseS: 30, host: "h", pid: Int32(i), workers: 20, budgetTotal: 1_000_000)
        var mine: [Int] = []
        while true {
          let got = try s.claim(limit: 20)
          if got.isEmpty { break }
          mine += got.map(\.id)
        }
        claimed.withLock { $0["n\(i)"] = mine }
      } catch { failures.withLock { $0.append("\(error)") } }
    }
    XCTAssertEqual(failures.withLock { $0 }, [])
    let all = claimed.withLock { $0.values.flatMap { $0 } }
    XCTAssertEqual(all.count, 330, "every task claimed exactly once")
    XCTAssertEqual(Set(all), Set(low + high))
  }

  func testALapsedNodeIsFencedItsTasksRequeuedAndItsLateCompletionRefused() throws {
    let a = try store("a")
    let b = try store("b")
    try a.join(leaseS: 1, host: "ha", pid: 1, workers: 1, budgetTotal: 1000)
    try b.join(leaseS: 30, host: "hb", pid: 2, workers: 1, budgetTotal: 1000)
    let id = try a.submit(tasks(1, tokens: 100))[0]
    let got = try a.claim(limit: 5)
    XCTAssertEqual(got.map(\.id), [id])
    XCTAssertEqual(try a.budget()?.reserved, 100)
    XCTAssertNil(try b.rescue().flatMap { $0.fenced.isEmpty ? nil : $0 }, "nothing to rescue while a's lease holds")
    sleepMs(1300)
    let r = try XCTUnwrap(try b.rescue())
    XCTAssertEqual(r.fenced, ["a"])
    XCTAssertEqual(r.requeued, 1)
    XCTAssertEqual(try a.budget()?.reserved, 0, "the requeued task's reservation was released")
    XCTAssertFalse(try a.renew(leaseS: 1, running: 1), "a fenced node cannot renew")
    let again = try b.claim(limit: 5)
    XCTAssertEqual(again.map(\.id), [id])
    XCTAssertEqual(again.first?.attempt, 2)
    // a's completion comes late: refused by the fence; b's is the one accepted.
    XCTAssertFalse(try a.complete(id: id, attempt: 1, state: .succeeded, reason: nil, exitCode: 0, tokensUsed: 5))
    XCTAssertTrue(try b.complete(id: id, attempt: 2, state: .succeeded, reason: nil, exitCode: 0, tokensUsed: 7))
    XCTAssertFalse(try b.complete(id: id, attempt: 2, state: .failed, reason: "again", exitCode: 1, tokensUsed: 7))
    XCTAssertEqual(try pg.psql("SELECT state || ':' || node || ':' || attempt FROM cortex_task_done").trimmed, "succeeded:b:2")
    XCTAssertEqual(try pg.psql("SELECT count(*) FROM cortex_task").trimmed, "0", "a finished task leaves the hot table")
    let budget = try XCTUnwrap(try b.budget())
    XCTAssertEqual(budget.used, 7)
    XCTAssertEqual(budget.total, budget.reserved + budget.used + budget.available)
  }

  func testTheClusterBudgetNeverGoesNegativeUnderConcurrentClaims() throws {
    let s = try store("s")
    try s.join(leaseS: 30, host: "h", pid: 1, workers: 1, budgetTotal: 1000)
    _ = try s.submit(tasks(200, tokens: 30))
    let claimed = Mutex<Int>(0)
    let dsn = pg.dsn
    DispatchQueue.concurrentPerform(iterations: 3) { i in
      guard let c = try? PGConnection(dsn) else { return }
      let n = ClusterStore(c, node: "n\(i)")
      guard (try? n.join(leaseS: 30, host: "h", pid: Int32(i), workers: 20, budgetTotal: 1000)) != nil else { return }
      while let got = try? n.claim(limit: 7), !got.isEmpty { claimed.withLock { $0 += got.count } }
    }
    XCTAssertEqual(claimed.withLock { $0 }, 33, "1000 tokens cover 33 tasks of 30")
    let b = try XCTUnwrap(try s.budget())
    XCTAssertEqual(b.reserved, 990)
    XCTAssertEqual(b.available, 10)
    XCTAssertGreaterThanOrEqual(b.available, 0)
  }

  func testASubmitWakesListeningNodesAndACancelWakesTheOwner() throws {
    let idle = try store("idle")
    try idle.join(leaseS: 30, host: "h", pid: 1, workers: 1, budgetTotal: 1000)
    try idle.listen()
    let other = try store("other")
    try other.join(leaseS: 30, host: "h", pid: 2, workers: 1, budgetTotal: 1000)
    func hints(within ms: Int32) -> [String] {
      _ = FileDescriptor.waitReadable([idle.db.socket], timeoutMs: ms)
      return idle.db.notifications()
    }
    XCTAssertEqual(hints(within: 200), [], "a hint with nothing submitted")
    let ids = try other.submit(tasks(3))
    XCTAssertEqual(hints(within: 2000), ["cortex_work"], "the submit did not wake the listening node")
    XCTAssertEqual(try idle.claim(limit: 3).map(\.id), ids)
    try other.requestCancel([ids[0]])
    XCTAssertEqual(hints(within: 2000), ["cortex_cancel"], "the cancel did not wake the node running the task")
    XCTAssertEqual(try idle.cancelRequested(among: ids), [ids[0]])
  }

  func testAClaimByANodeThatHasNotHeardOfALimitYetNeverFillsTheSlotsAnotherNodeIsClaiming() throws {
    let a = try store("a")
    let b = try store("b")
    try a.join(leaseS: 30, host: "h", pid: 1, workers: 4, budgetTotal: 1000)
    try b.join(leaseS: 30, host: "h", pid: 2, workers: 4, budgetTotal: 1000)
    _ = try a.setGroupPaused("other", true)
    var apiTasks = tasks(4)
    for i in apiTasks.indices { apiTasks[i].group = "api" }
    let api = try a.submit(apiTasks)
    // api limited to 1: a has heard (it set it), b still knows only the paused group (the hint
    // is on its way). a claims under the claim lock, and b claims before a commits.
    try a.setGroupParallel("api", 1)
    let heldByA = try a.listedGroups()
    XCTAssertEqual(heldByA.map(\.name), ["api", "other"])
    let stale = [ClusterGroup(name: "other", paused: true, parallel: 0)]
    let byB = try a.db.transaction { () throws(ClusterError) -> [Int] in
      _ = try a.db.execute("SELECT pg_advisory_xact_lock(109111114116101122)")
      _ = try a.db.execute(
        "UPDATE cortex_task SET state = 'running', node = 'a', epoch = $1::bigint, attempt = 1, claimed_at = now() WHERE id = $2::bigint",
        [String(a.epoch), String(api[0])])
      return try b.claim(limit: 4, held: stale).map(\.id)
    }
    XCTAssertEqual(byB, [], "b claimed api tasks beside a's claim")
    XCTAssertEqual(Int(try a.db.execute("SELECT count(*) AS n FROM cortex_task WHERE grp = 'api' AND state = 'running'")[0, "n"] ?? ""), 1)
    // Once b has heard, it claims under the lock: still nothing while a's task runs.
    XCTAssertEqual(try b.claim(limit: 4, held: heldByA), [])
  }

  func testARunningTaskAskedToCancelWhoseNodeLapsedEndsCancelledAndIsNotRunAgain() throws {
    let a = try store("a")
    let b = try store("b")
    try a.join(leaseS: 1, host: "ha", pid: 1, workers: 1, budgetTotal: 1000)
    try b.join(leaseS: 30, host: "hb", pid: 2, workers: 1, budgetTotal: 1000)
    let ids = try a.submit(tasks(2, tokens: 100))
    XCTAssertEqual(try a.claim(limit: 5).map(\.id), ids)
    // The cancel of the first reaches the database, but a is gone before it acts on it.
    try b.requestCancel([ids[0]])
    sleepMs(1300)
    let r = try XCTUnwrap(try b.rescue())
    XCTAssertEqual(r.fenced, ["a"])
    XCTAssertEqual(r.requeued, 1)
    XCTAssertEqual(r.cancelled, 1)
    XCTAssertEqual(
      try pg.psql("SELECT id || ':' || state || ':' || reason || ':' || node || ':' || attempt FROM cortex_task_done").trimmed,
      "\(ids[0]):cancelled:cancelled:a:1")
    XCTAssertEqual(try a.budget()?.reserved, 0, "both reservations were released")
    XCTAssertEqual(try b.claim(limit: 5).map(\.id), [ids[1]], "the cancelled task was claimed again")
  }

  /// An inbox file's record (schema 7): a submit of the same file (name and bytes) that this node
  /// has not moved yet adds nothing and answers with the first submit's ids (its answer may have
  /// been lost with the connection); other bytes under the name, or the name again after the
  /// record went (the file moved), are a new file.
  func testAnInboxFileSubmittedAgainBeforeItsRecordGoesAddsNothing() throws {
    let a = try store("alpha")
    try a.join(leaseS: 10, host: "h1", pid: 11, workers: 2, budgetTotal: 1000)
    let f = ClusterStore.InboxFile(name: "x.json", crc32c: 7)
    let first = try a.submit(tasks(2), inbox: f)
    XCTAssertEqual(try a.submit(tasks(2), inbox: f), first)
    XCTAssertEqual(try pg.psql("SELECT count(*) FROM cortex_task").trimmed, "2")
    // Another node's file of the same name is its own.
    let b = try store("beta")
    try b.join(leaseS: 10, host: "h2", pid: 22, workers: 2, budgetTotal: 1000)
    XCTAssertNotEqual(try b.submit(tasks(1), inbox: f), first)
    let changed = ClusterStore.InboxFile(name: "x.json", crc32c: 8)
    let second = try a.submit(tasks(1), inbox: changed)
    XCTAssertEqual(try pg.psql("SELECT count(*) FROM cortex_task").trimmed, "4")
    XCTAssertEqual(try a.pendingInbox(), [ClusterStore.InboxRecord(file: changed, ids: second)])
    try a.forgetInbox("x.json", ids: second)
    XCTAssertEqual(try a.pendingInbox(), [])
    XCTAssertEqual(try a.submit(tasks(1), inbox: changed).count, 1)
    XCTAssertEqual(try pg.psql("SELECT count(*) FROM cortex_task").trimmed, "5")
  }

  /// A node's link connects with `sessionTimeoutMs` (its lease): a session of it that sits inside
  /// a transaction that long (the node frozen or cut off in the middle of a claim) is ended by
  /// the server, and the budget row it locked is free for every other node within about that
  /// time, not when the server's TCP keepalive notices (two hours by default).
  func testASessionStuckInATransactionIsEndedByTheServerAndItsLocksFreed() throws {
    let a = try store("alpha")
    try a.join(leaseS: 10, host: "h1", pid: 11, workers: 2, budgetTotal: 1000)
    let stuck = try PGConnection(pg.dsn, sessionTimeoutMs: 1000)
    try stuck.execute("BEGIN")
    try stuck.execute("SELECT total FROM cortex_budget WHERE id = 1 FOR UPDATE")
    let other = try PGConnection(pg.dsn)
    try other.execute("SET statement_timeout = 15000")
    let asked = Clock.monotonicMs()
    XCTAssertEqual(try other.execute("SELECT total FROM cortex_budget WHERE id = 1 FOR UPDATE")[0, "total"], "1000")
    let waited = Clock.monotonicMs() - asked
    XCTAssertGreaterThanOrEqual(waited, 500, "the lock was never held")
    XCTAssertLessThan(waited, 5_000, "the stuck session held the budget row for \(waited) ms")
    XCTAssertThrowsError(try stuck.execute("SELECT 1"), "the stuck session was not ended")
    XCTAssertFalse(stuck.isConnected)
  }
}
