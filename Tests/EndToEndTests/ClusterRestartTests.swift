import CortexCore
import Posix
import XCTest

/// A node killed (kill -9) and started again in its own directory.
final class ClusterRestartTests: ClusterTestCase {
  /// A task the node claimed after its last snapshot ends in the node's own log when it starts
  /// again (`task.cancelled`, reason `returned_to_cluster`): the replay of the log skipped
  /// `task.claimed`, so such a claim was forgotten, its log kept a task that started and never
  /// ended, and the restart did not say it handed the task back.
  func testAClaimAfterTheLastSnapshotIsHandedBackInTheNodesLogAfterAKill() throws {
    let a = try startNode("a", workers: 1, config: [("snapshot_interval_s", .double(3600))])
    let id = a.ok(["submit", "-p", "--no-env", "--shell", "sleep 3"]).out.trimmed
    let n = try XCTUnwrap(TaskID.parse(id))
    a.eventually("the task runs on node a") { sql("SELECT state || ':' || node FROM cortex_task WHERE id = \(n)") == "running:a" }
    a.eventually("node a logged its start") { a.events().contains { $0.type == "task.started" && $0.taskID == id } }
    XCTAssertTrue(Processes.signal(try XCTUnwrap(a.daemonPID), Signal.kill))
    a.eventually("node a's processes are gone") { a.leftovers.allSatisfy { $0.isZombie } }
    a.ok(["start", "--workers", "1"])
    let ends = a.events().filter { $0.taskID == id && $0.type.map(TaskState.terminalEventTypes.contains) == true }
    XCTAssertEqual(
      ends.first.map { "\($0.type ?? ""):\($0["reason"]?.string ?? "")" }, "task.cancelled:returned_to_cluster",
      "the node's log has no end for the claim it lost: \(ends)")
    let restarted = a.events().first { $0.type == "node.restarted" }
    XCTAssertTrue(restarted?["detail"]?.string?.hasPrefix("1 tasks") == true, "\(String(describing: restarted))")
    // The cluster runs it again under a new claim; it ends once.
    waitDone(1, timeoutS: 30)
    XCTAssertEqual(sql("SELECT state FROM cortex_task_done WHERE id = \(n)"), "succeeded")
    let doctor = a.run(["doctor"])
    XCTAssertEqual(doctor.code, 0, doctor.out + doctor.err)
  }

  /// `cortex cluster status` of a node killed while it ran tasks: once another node fenced it
  /// and requeued them, its RUNNING column still said what its last renewal had (2), next to
  /// the same tasks running on the other node.
  func testAFencedNodeShowsNothingRunningOnceItsTasksAreRequeued() throws {
    let a = try startNode("a", workers: 2)
    let b = try startNode("b", workers: 2)
    a.ok(["stop"])
    let ids = b.ok(["submit", "--no-env", "--from", "-"], input: batch(2) { _ in #"{"shell":"sleep 4"}"# }).out
    XCTAssertEqual(ids.split(separator: "\n").count, 2)
    b.eventually("node b's renewal counts its two tasks") { sql("SELECT running FROM cortex_node WHERE name = 'b'") == "2" }
    XCTAssertTrue(Processes.signal(try XCTUnwrap(b.daemonPID), Signal.kill))
    b.eventually("node b's processes are gone") { b.leftovers.allSatisfy { $0.isZombie } }
    a.ok(["start", "--workers", "2"])
    a.eventually("node a rescued b's tasks", timeoutS: 20) { a.events().contains { $0.type == "cluster.rescued" } }
    let st = try JSON.parse(Array(a.ok(["--json", "cluster", "status"]).out.utf8))
    let nodeB = st["nodes"]?.array?.first { $0["name"]?.string == "b" }
    XCTAssertEqual(nodeB?["state"]?.string, "fenced", "\(st)")
    XCTAssertEqual(nodeB?["running"]?.int, 0, "a fenced node still counts the tasks it no longer runs: \(st)")
    waitDone(2, timeoutS: 30)
  }

  /// `show` of a rescued task, from a node that does not hold it, said `attempt 2 of 1`: the
  /// rescue's claim counts an attempt that the node running it allows (as its own requeues).
  func testARescuedTaskIsNotShownPastItsAllowedAttempts() throws {
    let a = try startNode("a", workers: 1)
    let b = try startNode("b", workers: 1)
    b.ok(["stop"])
    let id = a.ok(["submit", "-p", "--no-env", "--shell", "sleep 30"]).out.trimmed
    let n = try XCTUnwrap(TaskID.parse(id))
    a.eventually("\(id) runs on a") { sql("SELECT state || ':' || node FROM cortex_task WHERE id = \(n)") == "running:a" }
    XCTAssertTrue(Processes.signal(try XCTUnwrap(a.daemonPID), Signal.kill))
    a.eventually("node a's processes are gone") { a.leftovers.allSatisfy { $0.isZombie } }
    b.ok(["start", "--workers", "1"])
    b.eventually("b runs \(id) again", timeoutS: 20) { sql("SELECT state || ':' || node FROM cortex_task WHERE id = \(n)") == "running:b" }
    a.ok(["start", "--workers", "1"])
    let shown = a.ok(["show", id]).out
    XCTAssertTrue(shown.contains("attempt         2 of 2"), shown)
    b.ok(["cancel", id])
  }
}
