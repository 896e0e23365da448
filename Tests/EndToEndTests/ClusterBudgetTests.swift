import CortexCore
import Posix
import XCTest

/// The token budget every node shares (PostgreSQL's `cortex_budget`).
final class ClusterBudgetTests: ClusterTestCase {
  /// The first node to join creates the cluster's budget from its `token_budget_total`; a later
  /// change of that setting reached nothing (a SIGHUP said "config.json re-read") and there was
  /// no way to change the cluster's total but SQL. `cortex cluster budget TOTAL` sets it, never
  /// below what is reserved and used, and `cortex budget` says when config.json differs.
  func testTheClustersBudgetTotalIsSetWithClusterBudgetAndBudgetSaysWhenConfigDiffers() throws {
    let a = try startNode("a", workers: 1, budget: 10_000)
    try a.configure([("token_budget_total", .int(5000))])
    let before = a.ok(["budget"]).out
    XCTAssertTrue(before.hasPrefix("total      10000\n"), before)
    XCTAssertTrue(
      before.contains("config.json's token_budget_total (5000) is not the cluster's")
        && before.contains("to change it: cortex cluster budget 5000"), before)
    let set = a.ok(["cluster", "budget", "5000"])
    XCTAssertTrue(set.err.contains("the cluster's token budget is 5000 (0 reserved, 0 used, 5000 available)"), set.err)
    XCTAssertEqual(sql("SELECT total FROM cortex_budget"), "5000")
    let after = a.ok(["budget"]).out
    XCTAssertTrue(after.hasPrefix("total      5000\n"), after)
    XCTAssertFalse(after.contains("config.json's token_budget_total"), after)
    // Never below what is reserved and used: the row's CHECK, said in words.
    let long = a.ok(["submit", "-p", "--no-env", "--tokens", "3000", "--shell", "sleep 60"]).out.trimmed
    a.eventually("\(long) runs, its tokens reserved") { sql("SELECT reserved FROM cortex_budget") == "3000" }
    let low = a.ok(["cluster", "budget", "1000"], code: 1)
    XCTAssertTrue(low.err.contains("cannot be 1000: 3000 tokens are reserved or used already; give at least 3000"), low.err)
    XCTAssertEqual(sql("SELECT total FROM cortex_budget"), "5000")
    let json = try JSON.parse(Array(a.ok(["--json", "cluster", "budget", "4000"]).out.utf8))
    XCTAssertEqual(json["available"]?.int, 1000, "\(json)")
    XCTAssertEqual(a.ok(["cluster", "budget", "x"], code: 64).err.contains("whole number"), true)
    a.ok(["cancel", long])
  }

  /// A task needing more tokens than the cluster has not spent was accepted, and since the claim
  /// reserves in priority order it then held every task behind it, those without a budget too,
  /// on every node, until someone cancelled it. Now such a submit is refused (65) as on a single
  /// host, and a queued task the budget can no longer cover (the total lowered, or spent) ends
  /// `failed`, reason `token_budget_exhausted`, by the leader's sweep.
  func testATaskTheBudgetCanNeverCoverIsRefusedAndNoneHoldsTheQueueBack() throws {
    let a = try startNode("a", workers: 1, budget: 5000)
    let refused = a.ok(["submit", "--no-env", "--tokens", "6000", "--", "true"], code: 65)
    XCTAssertTrue(
      refused.err.contains("token_budget") && refused.err.contains("only 5000 of the cluster's 5000 are not spent")
        && refused.err.contains("cortex cluster budget"), refused.err)
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task"), "0", "a refused submit added a task")
    a.ok(["pause"])
    let big = a.ok(["submit", "-p", "--no-env", "--tokens", "4000", "--", "true"]).out.trimmed
    let free = a.ok(["submit", "-p", "--no-env", "--", "true"]).out.trimmed
    a.ok(["cluster", "budget", "3000"])
    a.ok(["resume"])
    waitDone(2, timeoutS: 20)
    XCTAssertEqual(
      sql("SELECT state || ':' || coalesce(reason, '') FROM cortex_task_done WHERE id = \(TaskID.parse(big)!)"),
      "failed:token_budget_exhausted")
    XCTAssertEqual(sql("SELECT state FROM cortex_task_done WHERE id = \(TaskID.parse(free)!)"), "succeeded")
    let shown = a.ok(["show", big], code: 0).out
    XCTAssertTrue(shown.contains("token_budget_exhausted"), shown)
    XCTAssertTrue(a.events().contains { $0.type == "cluster.settled" && $0["failed"]?.int == 1 })
  }
}
