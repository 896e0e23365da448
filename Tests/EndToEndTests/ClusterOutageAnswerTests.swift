import CortexCore
import Posix
import XCTest

/// What `cancel` and `wait` say on a node that cannot reach PostgreSQL (docs/cluster.md, "What a
/// node answers while it cannot reach the database"). Both are answered from the database, and
/// both used to wait without a word for as long as it was unreachable.
final class ClusterOutageAnswerTests: ClusterTestCase {
  func testCancelAnswersAtOnceAndWaitSaysWhyItWaitsWhilePostgreSQLIsUnreachable() throws {
    // A lease long enough that the node does not fence itself (and stop its task) in the outage.
    let a = try startNode("a", workers: 1, leaseS: 30)
    let ids = a.ok(["submit", "--no-env", "--from", "-"], input: batch(2) { _ in #"{"command":["sleep","60"]}"# }).out
      .split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, 2)
    a.eventually("a task runs") { a.events().contains { $0.type == "task.started" } }
    let running = try XCTUnwrap(a.events().first { $0.type == "task.started" }?.taskID)
    let other = ids.first { $0 != running }!

    pg.pause()
    a.eventually("the node knows PostgreSQL is unreachable", timeoutS: 20) {
      (try? JSON.parse(Array(a.run(["--json", "status"]).out.utf8)))?["cluster"]?["database"]?.string == "unreachable"
    }
    // cancel: a prompt, named answer; the cancel is kept and carried out once the database is back.
    let t0 = Clock.monotonicMs()
    let cancel = a.run(["cancel", running], timeoutS: 20)
    XCTAssertEqual(cancel.code, 75, "cancel while PostgreSQL is unreachable: \(cancel.err)")
    XCTAssertTrue(cancel.err.contains("cluster_unavailable") && cancel.err.contains("is kept by this node"), cancel.err)
    XCTAssertLessThan(Clock.monotonicMs() - t0, 3000, "cancel waited for the database")
    let json = try JSON.parse(Array(a.run(["--json", "cancel", running], timeoutS: 20).out.utf8))
    XCTAssertEqual(json["reason"]?.string, "cluster_unavailable", json.encoded())
    XCTAssertEqual(json["outcome"]?.string, "pending", json.encoded())

    // wait: goes on waiting (the tasks are not affected), and says at once why it cannot answer yet.
    let waits = try [running, other].map { try a.background(["wait", $0]) }
    for w in waits {
      a.eventually("wait says the node cannot reach the database", timeoutS: 5) {
        String(decoding: ((try? FileSystem.read(w.err)) ?? nil) ?? [], as: UTF8.self).contains("cannot reach the cluster's database")
      }
      XCTAssertTrue(Processes.isAlive(w.pid), "wait ended while the database cannot say how the task ended")
    }

    try pg.start()
    // The kept cancel reaches the cluster: the wait for that task ends with it.
    let first = a.collect(waits[0])
    XCTAssertEqual(first.code, 130, "wait of the task cancelled during the outage: \(first.err)")
    XCTAssertEqual(sql("SELECT state FROM cortex_task_done WHERE id = \(TaskID.parse(running)!)"), "cancelled")
    a.eventually("the other wait says the database answers again", timeoutS: 10) {
      String(decoding: ((try? FileSystem.read(waits[1].err)) ?? nil) ?? [], as: UTF8.self).contains("answers again")
    }
    a.ok(["cancel", other], timeoutS: 30)
    XCTAssertEqual(a.collect(waits[1]).code, 130)
  }
}
