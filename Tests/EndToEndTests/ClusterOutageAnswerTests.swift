import CortexCore
import Posix
import XCTest

/// What `cancel` and `wait` say on a node that cannot reach PostgreSQL (docs/cluster.md, "What a
/// node answers while it cannot reach the database"). Both are answered from the database, and
/// both used to wait without a word for as long as it was unreachable.
final class ClusterOutageAnswerTests: ClusterTestCase {
  func testCancelIsRefusedAtOnceAndWaitSaysWhyItWaitsWhilePostgreSQLIsUnreachable() throws {
    // A lease long enough that the node does not fence itself (and stop its task) in the outage.
    let a = try startNode("a", workers: 1, leaseS: 30)
    let id = a.ok(["submit", "-p", "--no-env", "--", "sleep", "60"]).out.trimmed
    a.eventually("the task runs") { a.events().contains { $0.type == "task.started" && $0.taskID == id } }

    pg.pause()
    a.eventually("the node knows PostgreSQL is unreachable", timeoutS: 20) {
      (try? JSON.parse(Array(a.run(["--json", "status"]).out.utf8)))?["cluster"]?["database"]?.string == "unreachable"
    }
    // cancel: a prompt, named refusal; nothing is recorded to be done later.
    let t0 = Clock.monotonicMs()
    let cancel = a.run(["cancel", id], timeoutS: 20)
    XCTAssertEqual(cancel.code, 75, "cancel while PostgreSQL is unreachable: \(cancel.err)")
    XCTAssertTrue(cancel.err.contains("cluster_unavailable") && cancel.err.contains("nothing was changed"), cancel.err)
    XCTAssertLessThan(Clock.monotonicMs() - t0, 3000, "cancel waited for the database")
    let json = a.run(["--json", "cancel", id], timeoutS: 20)
    XCTAssertEqual(try JSON.parse(Array(json.out.utf8))["reason"]?.string, "cluster_unavailable", json.out)

    // wait: goes on waiting (the task is not affected), and says at once why it cannot answer yet.
    let waiting = try a.background(["wait", id])
    a.eventually("wait says the node cannot reach the database", timeoutS: 5) {
      String(decoding: ((try? FileSystem.read(waiting.err)) ?? nil) ?? [], as: UTF8.self).contains("cannot reach the cluster's database")
    }
    XCTAssertTrue(Processes.isAlive(waiting.pid), "wait ended while the task runs")

    try pg.start()
    a.eventually("the node reaches PostgreSQL again", timeoutS: 20) {
      (try? JSON.parse(Array(a.run(["--json", "status"]).out.utf8)))?["cluster"]?["database"]?.string == "reachable"
    }
    a.eventually("wait says the database answers again", timeoutS: 5) {
      String(decoding: ((try? FileSystem.read(waiting.err)) ?? nil) ?? [], as: UTF8.self).contains("answers again")
    }
    a.ok(["cancel", id], timeoutS: 30)
    let waited = a.collect(waiting)
    XCTAssertEqual(waited.code, 130, "wait of the cancelled task: \(waited.err)")
    XCTAssertEqual(sql("SELECT state FROM cortex_task_done WHERE id = \(TaskID.parse(id)!)"), "cancelled")
  }
}
