import CortexCore
import Posix
import XCTest

/// What a node does with the tasks it claimed reaches the cluster's record as it happens
/// (docs/cluster.md, "Starts and local retries"): a node retries a failed task itself under its
/// one claim, and the record said `attempt 1` (no `of`) on every other node after three runs; and
/// `cortex cluster status` learnt that a task had started only from the node's next lease
/// renewal (every lease/3), so RUNNING said 0 while the task ran.
final class ClusterRunsTests: ClusterTestCase {
  func testAnotherNodeSeesTheAttemptsOfATaskItsNodeRetried() throws {
    let a = try startNode("a", workers: 1, leaseS: 5)
    // Each run takes a second and fails: the first two are retried on `a`.
    let id = a.ok(["submit", "-p", "--no-env", "--retries", "2", "--shell", "sleep 1; exit 3"]).out.trimmed
    a.eventually("\(id) claimed by a") { sql("SELECT node FROM cortex_task WHERE id = \(TaskID.parse(id)!)") == "a" }
    let b = try startNode("b", workers: 1, leaseS: 5)
    // While it runs on a: b's `show` follows the attempt a is on, with when that run started.
    try b.eventually("b's show of \(id) to say attempt 2, running") {
      let s = try JSON.parse(Array(b.ok(["--json", "show", id]).out.utf8))
      return s["attempt"]?.int == 2 && s["state"]?.string == "running" && s["started_ms"]?.int != nil
    }
    XCTAssertEqual(a.run(["wait", id], timeoutS: 60).code, 3)
    let shown = b.ok(["show", id]).out
    XCTAssertTrue(shown.contains("attempt         3 of 3\n") && shown.contains("node            a\n"), shown)
    XCTAssertTrue(shown.contains("started ") && shown.contains("duration "), shown)
    let json = try JSON.parse(Array(b.ok(["--json", "show", id]).out.utf8))
    XCTAssertEqual(json["attempt"]?.int, 3, json.encoded())
    XCTAssertEqual(json["max_attempts"]?.int, 3, json.encoded())
    let row = b.ok(["list"]).out.split(separator: "\n").first { $0.hasPrefix(id) }.map(String.init) ?? ""
    XCTAssertEqual(row.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first, "3", row)
    XCTAssertEqual(sql("SELECT attempt FROM cortex_task_done WHERE id = \(TaskID.parse(id)!)"), "3")
    // Its TIME on b's list: the last run's, from its start (it had none).
    let listed = try JSON.parse(Array(b.ok(["--json", "list"]).out.utf8))
    let item = (listed["tasks"]?.array ?? listed.array ?? []).first { $0["id"]?.string == id }
    let started = try XCTUnwrap(item?["started_ms"]?.int, listed.encoded())
    XCTAssertGreaterThanOrEqual(try XCTUnwrap(item?["ended_ms"]?.int) - started, 900, listed.encoded())
  }

  /// A task its node had run twice and that another node then rescued is on its third attempt
  /// there: the rescue's claim counts from the runs, not from the first claim (it said 2).
  func testATaskRescuedAfterALocalRetryCountsTheRunsItHad() throws {
    let a = try startNode("a", workers: 1)
    let b = try startNode("b", workers: 1)
    b.ok(["stop"])
    // The first run fails at once; the retry runs long.
    let marker = a.scratch + "/ran-once"
    let id = a.ok([
      "submit", "-p", "--no-env", "--retries", "3", "--shell", "if [ -e \(marker) ]; then sleep 60; else touch \(marker); exit 3; fi",
    ]).out.trimmed
    let n = try XCTUnwrap(TaskID.parse(id))
    a.eventually("\(id) on its second run on a") {
      sql(
        "SELECT state || ':' || node || ':' || coalesce(run_attempt, 0) || ':' || (started_at IS NOT NULL) FROM cortex_task WHERE id = \(n)"
      )
        == "running:a:2:true"
    }
    XCTAssertTrue(Processes.signal(try XCTUnwrap(a.daemonPID), Signal.kill))
    a.eventually("node a's processes are gone") { a.leftovers.allSatisfy { $0.isZombie } }
    b.ok(["start", "--workers", "1"])
    b.eventually("b runs \(id) again", timeoutS: 20) { sql("SELECT state || ':' || node FROM cortex_task WHERE id = \(n)") == "running:b" }
    let json = try JSON.parse(Array(b.ok(["--json", "show", id]).out.utf8))
    XCTAssertEqual(json["attempt"]?.int, 3, json.encoded())
    XCTAssertEqual(json["max_attempts"]?.int, 4, json.encoded())
    b.ok(["cancel", id], timeoutS: 30)
  }

  func testClusterStatusShowsATaskRunningWhenItStartsNotAtTheNextRenewal() throws {
    // A lease of 120 s: the node renews every 40 s, long after the wait below gives up.
    let a = try startNode("a", workers: 1, leaseS: 120)
    let id = a.ok(["submit", "-p", "--no-env", "--", "sleep", "600"]).out.trimmed
    try a.eventually("cortex cluster status to count \(id) running on a", timeoutS: 20) {
      let s = try JSON.parse(Array(a.ok(["--json", "cluster", "status"]).out.utf8))
      let row = s["nodes"]?.array?.first { $0["name"]?.string == "a" }
      return row?["running"]?.int == 1 && row?["claimed"]?.int == 0
    }
    let text = a.ok(["cluster", "status"]).out
    XCTAssertTrue(text.contains("RUNNING  CLAIMED"), text)
    a.ok(["cancel", id], timeoutS: 30)
    // Once it ended, nothing runs on a.
    let s = try JSON.parse(Array(a.ok(["--json", "cluster", "status"]).out.utf8))
    XCTAssertEqual(s["nodes"]?.array?.first?["running"]?.int, 0, s.encoded())
  }
}
