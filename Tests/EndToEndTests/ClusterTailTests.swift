import CortexCore
import Posix
import XCTest

/// `cortex tail --task ID` on a node: its log has only the decisions it made.
final class ClusterTailTests: ClusterTestCase {
  /// A task another node ran was "unknown task … (the newest is task-000001)": the check that a
  /// number was given out read this node's hot state, which knows only the ids it claimed. Now
  /// the cluster answers: a task another node ran is named with that node, and only an id the
  /// cluster does not know is unknown (65).
  func testTailOfATaskAnotherNodeRanNamesThatNodeAndAnUnknownIDIsTheClusters() throws {
    let a = try startNode("a", workers: 1)
    let first = a.ok(["submit", "-p", "--no-env", "--", "true"]).out.trimmed
    a.eventually("\(first) ran on a") { sql("SELECT node FROM cortex_task_done WHERE id = \(TaskID.parse(first)!)") == "a" }
    a.ok(["stop"])
    let b2 = try startNode("b2", workers: 1)
    let second = b2.ok(["submit", "-p", "--no-env", "--", "true"]).out.trimmed
    waitDone(2)
    a.ok(["start", "--workers", "1"])
    let r = a.ok(["tail", "--task", second])
    XCTAssertEqual(r.out, "", "node a's log has no event of \(second)")
    XCTAssertTrue(r.err.contains("\(second) ran on node b2") && r.err.contains("cortex tail --task \(second)"), r.err)
    XCTAssertFalse(r.err.contains("unknown task"), r.err)
    XCTAssertTrue(a.ok(["tail", "--task", first]).out.contains("task.succeeded"))
    let unknown = a.ok(["tail", "--task", "task-000099"], code: 65)
    XCTAssertTrue(unknown.err.contains("unknown task task-000099"), unknown.err)
  }
}
