import CortexCore
import Posix
import XCTest

/// `cortex show` in cluster mode of a task no node has claimed yet said `attempt 0 of 1`: a run
/// that had begun, or one that never would. It says that the task has not started, what holds it
/// (the dependencies, each with its state, or that no node has claimed it yet), in `--json` too.
final class ClusterShowTests: ClusterTestCase {
  func testShowOfATaskNoNodeHasClaimedSaysItHasNotStartedAndWhatHoldsIt() throws {
    let a = try startNode("a", workers: 1, leaseS: 5)
    let first = a.ok(["submit", "-p", "--no-env", "--", "sleep", "30"]).out.trimmed
    a.eventually("\(first) runs on a") { sql("SELECT state FROM cortex_task WHERE id = \(TaskID.parse(first)!)") == "running" }

    // Held by its dependency.
    let after = a.ok(["submit", "-p", "--no-env", "--after", first, "--", "true"]).out.trimmed
    try a.assertHeldByDependencies(after, [(first, "running")])

    // Held by nothing but that no node has claimed it (the cluster's queue paused).
    a.ok(["pause"])
    let plain = a.ok(["submit", "-p", "--no-env", "--", "true"]).out.trimmed
    let unclaimed = a.ok(["show", plain]).out
    XCTAssertTrue(unclaimed.contains("attempt         not started yet"), unclaimed)
    XCTAssertTrue(unclaimed.contains("waiting         to be claimed by a node (none has claimed it yet)\n"), unclaimed)
    let plainJSON = try JSON.parse(Array(a.ok(["--json", "show", plain]).out.utf8))
    XCTAssertEqual(plainJSON["not_started"]?.bool, true, plainJSON.encoded())
    XCTAssertEqual(plainJSON["waiting"]?.string, "unclaimed", plainJSON.encoded())
    XCTAssertNil(plainJSON["waiting_on"], plainJSON.encoded())

    // The one that runs has started.
    let running = a.ok(["show", first]).out
    XCTAssertTrue(running.contains("attempt         1 of "), running)
    XCTAssertFalse(running.contains("not started"), running)
    a.ok(["cancel", first], timeoutS: 30)
    a.ok(["resume"])
  }
}
