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
}
