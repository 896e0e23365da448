import CortexCore
import Posix
import XCTest

/// Inbox files in cluster mode (docs/design.md, "Inbox files across a crash"): the submit of an
/// inbox file commits in PostgreSQL, with a record of the file, before the file moves to
/// `accepted/`; a node killed between the two moves the file at its next start instead of
/// submitting it again.
final class ClusterInboxTests: ClusterTestCase {
  /// Every task the cluster knows (live or finished), as ids in order.
  var clusterTasks: [String] {
    sql("SELECT string_agg(id::text, ',' ORDER BY id) FROM (SELECT id FROM cortex_task UNION ALL SELECT id FROM cortex_task_done) x")
      .split(separator: ",").map { TaskID.format(Int($0) ?? 0) }
  }

  /// Found by reading docs/design.md: the window the single host closed stayed open in cluster
  /// mode — a node killed after the batch committed and before the file moved submitted the
  /// file again at its next start (four tasks from a file of two). The crash point is
  /// `CORTEX_FAULT=inbox.settle` (a kill -9 at that moment).
  func testAFileSubmittedToTheClusterJustBeforeACrashIsMovedNotSubmittedAgain() throws {
    let c = try Cortex()
    nodes.append(c)
    try c.initialize([("cluster", .object([("postgres", .string(pg.dsn)), ("node", .string("a")), ("lease_s", .double(2))]))])
    c.environment = ["CORTEX_FAULT=inbox.settle"]
    c.ok(["start", "--workers", "1"])
    c.environment = []
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    let batch = Array("[{\"synthetic\": {\"duration_ms\": 1}}, {\"synthetic\": {\"duration_ms\": 1}}]\n".utf8)
    try c.dropInInbox("batch.json", batch)
    c.eventually("the node exits at inbox.settle") { !Processes.isAlive(pid) }
    let before = clusterTasks
    XCTAssertEqual(before.count, 2, "the crash came after the batch committed")
    XCTAssertTrue(FileSystem.exists(c.paths.inbox + "/batch.json"), "the crash came before the file moved")

    c.ok(["start", "--workers", "1"])
    c.eventually("batch.json leaves inbox/") { !FileSystem.exists(c.paths.inbox + "/batch.json") }
    XCTAssertTrue(FileSystem.exists(c.paths.inboxAccepted + "/batch.json"))
    waitDone(2)
    XCTAssertEqual(clusterTasks, before, "one file must be one batch of tasks, not two")
    let moved = c.events().first { $0.type == "inbox.accepted" && $0["reason"]?.string == "already_submitted" }
    XCTAssertEqual(moved?["task_ids"]?.array?.compactMap(\.string), before, "\(String(describing: moved))")
    c.eventually("the record of the moved file is gone") { sql("SELECT count(*) FROM cortex_inbox") == "0" }

    // The same name dropped again after the move is a new file: submitted as usual, and its
    // record is gone once it has moved.
    try FileSystem.writeAtomically(c.paths.inbox + "/batch.json", batch, durable: false)
    c.eventually("the file dropped again is submitted") { clusterTasks.count == 4 }
    c.eventually("the file dropped again moves") { !FileSystem.exists(c.paths.inbox + "/batch.json") }
    c.eventually("its record is gone") { sql("SELECT count(*) FROM cortex_inbox") == "0" }
    waitDone(4)
  }

  /// Found by dropping a file into a node's inbox while PostgreSQL was down: it moved to
  /// `inbox/rejected/` ("the cluster's database did not take the batch"), to be dropped again
  /// by hand, where a full disk leaves inbox files waiting.
  func testAFileDroppedWhilePostgreSQLIsUnreachableWaitsAndIsSubmittedOnceWhenItIsBack() throws {
    let a = try startNode("a", workers: 1, leaseS: 30)
    pg.pause()
    let spec = Array("{\"synthetic\": {\"duration_ms\": 1}}\n".utf8)
    try a.dropInInbox("x.json", spec)
    a.eventually("a says PostgreSQL is unreachable") { a.ok(["status"]).out.contains("POSTGRESQL UNREACHABLE") }
    sleepMs(1500)
    guard FileSystem.exists(a.paths.inbox + "/x.json") else {
      return XCTFail(
        "x.json left inbox/ while PostgreSQL was unreachable; rejected: \(FileSystem.exists(a.paths.inboxRejected + "/x.json"))")
    }
    try pg.start()
    a.eventually("x.json is submitted once PostgreSQL answers", timeoutS: 30) { FileSystem.exists(a.paths.inboxAccepted + "/x.json") }
    waitDone(1)
    XCTAssertEqual(clusterTasks.count, 1)
  }
}
