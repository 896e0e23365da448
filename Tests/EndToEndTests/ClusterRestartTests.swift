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
}
