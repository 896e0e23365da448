import CortexCore
import Posix
import XCTest

/// A database outage longer than the lease, seen by every node at once (a PostgreSQL restart or
/// failover): what the nodes finished during it is delivered, not run again.
final class ClusterOutageTests: ClusterTestCase {
  /// Tasks that end while PostgreSQL is down are kept by their nodes; when it is back, the first
  /// node to reconnect used to rescue every lapsed node's claims at once (and each node joined
  /// again under a new epoch before delivering its own): the others' finished tasks went back to
  /// the queue, their completions were refused by the fence, and they ran a second time.
  func testTasksThatEndDuringALongOutageAreDeliveredNotRunAgain() throws {
    let a = try startNode("a", workers: 2)
    let b = try startNode("b", workers: 2)
    let marks = (0..<4).map { "\(a.scratch)/ran-\($0)" }
    let input = marks.map { "{\"shell\":\"sleep 1; echo x >> \($0)\"}" }.joined(separator: "\n") + "\n"
    let ids = a.ok(["submit", "--no-env", "--from", "-"], input: input).out.split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, 4)
    a.eventually("the four tasks run, on both nodes") {
      sql("SELECT count(DISTINCT node) || ':' || count(*) FROM cortex_task WHERE state = 'running'") == "2:4"
    }
    pg.pause()
    // They end during the outage; both nodes then fence themselves (3/4 of the 2 s lease) and
    // their leases lapse in the database's time.
    a.eventually("the tasks ended while the database was down") { marks.allSatisfy { FileSystem.exists($0) } }
    for n in [a, b] { n.eventually("the node fenced itself") { n.events().contains { $0.type == "node.fenced" } } }
    sleepMs(2500)
    try pg.start()
    waitDone(4, timeoutS: 30)
    sleepMs(2500)  // rescue rounds, which would requeue a claim left behind
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_task"), "0")
    for id in ids {
      XCTAssertEqual(
        sql("SELECT state || ':' || attempt FROM cortex_task_done WHERE id = \(TaskID.parse(id)!)"), "succeeded:1",
        "\(id) was not accepted from the node that ran it")
    }
    for m in marks {
      XCTAssertEqual(((try? FileSystem.read(m)) ?? nil)?.count, 2, "\(m): the task ran again instead of its state being delivered")
    }
    for n in [a, b] {
      XCTAssertFalse(n.events().contains { $0.type == "task.completion_refused" }, "a node's completion was refused")
      // The reason is said once ("PostgreSQL: PostgreSQL: server closed the connection …").
      for e in n.events() where e.type == "cluster.unavailable" {
        XCTAssertFalse(e["detail"]?.string?.contains("PostgreSQL: PostgreSQL:") ?? false, "\(e)")
      }
    }
  }
}
