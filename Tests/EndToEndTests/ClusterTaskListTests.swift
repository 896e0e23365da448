import CortexCore
import Posix
import XCTest

/// Issue 14: in cluster mode the task list follows the cluster's list as the server pushes it
/// (`GET /api/tasks?…&follow=1`), rows from every node, as on a single host. It used to be
/// refused (400), and the page asked again after every task event it saw.
final class ClusterTaskListTests: ClusterTestCase {
  /// Opens `path` on `node`'s web view as an event stream (its headers read).
  func openStream(_ node: Cortex, _ path: String) throws -> FileDescriptor {
    let port = try XCTUnwrap(node.webPort)
    let fd = try TCPSocket.connect(address: "127.0.0.1", port: port)
    try fd.writeAll(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAuthorization: Bearer \(node.webToken)\r\n\r\n".utf8))
    return fd
  }

  /// The `event: tasks` lists among `messages`.
  func lists(_ messages: [WebStreamTests.Message]) -> [JSON] {
    messages.filter { $0.event == "tasks" }.compactMap { try? JSON.parse(Array($0.data.utf8)) }
  }

  func row(_ list: JSON?, _ id: String) -> JSON? { list?["tasks"]?.array?.first { $0["id"]?.string == id } }

  /// The lists pushed on `fd` until one shows `id` succeeded (20 s at most).
  func listsUntilSucceeded(_ fd: FileDescriptor, _ id: String) throws -> [JSON] {
    var seen: [JSON] = []
    _ = try WebStreamTests.read(fd, timeoutMs: 20_000) { ms in
      seen = lists(ms)
      return row(seen.last, id)?["state"]?.string == "succeeded"
    }
    return seen
  }

  func testAFollowedClusterListIsPushedAsAnyNodesTasksChange() throws {
    // B alone first: its task runs on B, and only B's log has its events.
    let b = try startNode("b", workers: 2, leaseS: 5)
    let onB = b.ok(["submit", "-p", "--description", "runs on b", "--synthetic", "2000:5"]).out.trimmed
    b.eventually("\(onB) running on b") {
      sql("SELECT coalesce(node, '') FROM cortex_task WHERE id = \(TaskID.parse(onB)!) AND state = 'running'") == "b"
    }
    let a = try startNode("a", workers: 2, leaseS: 5)
    let port = try XCTUnwrap(a.webPort)
    let head = try RawHTTP(port: port).send(
      "HEAD /api/tasks?limit=5&follow=1 HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nAuthorization: Bearer \(a.webToken)\r\n\r\n"
    )
    XCTAssertEqual(head.status, 200, head.head)
    XCTAssertTrue(head.head.contains("text/event-stream"), head.head)

    // A follows the cluster's list: first as it is (B's task running on b), then, with no
    // further request, the same task succeeded, which only B and the database saw.
    let fd = try openStream(a, "/api/tasks?limit=5&follow=1")
    defer { fd.close() }
    let seen = try listsUntilSucceeded(fd, onB)
    let first = try XCTUnwrap(seen.first)
    XCTAssertEqual(first["scope"]?.string, "cluster", "\(first)")
    XCTAssertEqual(row(first, onB)?["node"]?.string, "b", "\(first)")
    XCTAssertEqual(row(seen.last, onB)?["node"]?.string, "b", "\(seen.last!)")

    // Tasks submitted on B while A follows: pushed as they change, at most one list per 125 ms
    // after a pause's first two, until the newest five have succeeded. Both nodes run them; a row
    // of one that A ran shows what the database has of its spec (A's log has only its run: the
    // rows said `medium`, untitled, with no type).
    let spec = #"{"synthetic":{"duration_ms":100},"priority":"high","description":"batch from b"}"#
    let ids = b.ok(["submit", "--from", "-"], input: batch(30) { _ in spec }).out.split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, 30)
    let began = Clock.monotonicMs()
    var pushed: [JSON] = []
    _ = try WebStreamTests.read(fd, timeoutMs: 30_000) { ms in
      pushed = lists(ms)
      let newest = pushed.last?["tasks"]?.array ?? []
      return newest.first?["id"]?.string == ids.last && newest.allSatisfy { $0["state"]?.string == "succeeded" }
    }
    let took = Clock.monotonicMs() - began
    let last = try XCTUnwrap(pushed.last)
    XCTAssertEqual(last["tasks"]?.array?.compactMap { $0["id"]?.string }, Array(ids.suffix(5).reversed()), "\(last)")
    XCTAssertGreaterThanOrEqual(pushed.count, 2, "the list was not sent again as its tasks ran")
    XCTAssertLessThanOrEqual(pushed.count, 3 + Int(took / 125), "\(pushed.count) lists in \(took) ms")
    let rows = pushed.flatMap { $0["tasks"]?.array ?? [] }.filter { ids.contains($0["id"]?.string ?? "") }
    XCTAssertTrue(rows.contains { $0["node"]?.string == "a" }, "A ran none of the 30 tasks: \(last)")
    for r in rows {
      let shown = [r["priority"]?.string, r["type"]?.string, r["title"]?.string, r["node"]?.string ?? "b"]
      XCTAssertTrue(
        shown[0] == "high" && shown[1] == "synthetic" && shown[2] == "batch from b" && ["a", "b"].contains(shown[3]), r.encoded())
    }
    // A filter the web view applies itself (priority) is followed too, A's rows included.
    let fd2 = try openStream(a, "/api/tasks?priority=high&limit=5&follow=1")
    defer { fd2.close() }
    let high = try WebStreamTests.read(fd2, timeoutMs: 20_000) { !lists($0).isEmpty }
    XCTAssertEqual(lists(high).last?["tasks"]?.array?.compactMap { $0["id"]?.string }, Array(ids.suffix(5).reversed()))
  }

  /// A node whose web view is off sends A no events: its tasks' changes reach A's followed list
  /// through the cluster snapshot A reads from PostgreSQL (counts, running tasks).
  func testAFollowedClusterListFollowsANodeWhoseWebViewIsOff() throws {
    let b = try startNode("b", workers: 1, leaseS: 5, config: [("web", .object([("enabled", .bool(false))]))])
    let onB = b.ok(["submit", "-p", "--description", "runs on b", "--synthetic", "3000:5"]).out.trimmed
    b.eventually("\(onB) running on b") {
      sql("SELECT coalesce(node, '') FROM cortex_task WHERE id = \(TaskID.parse(onB)!) AND state = 'running'") == "b"
    }
    let a = try startNode("a", workers: 1, leaseS: 5)
    let fd = try openStream(a, "/api/tasks?limit=5&follow=1")
    defer { fd.close() }
    let seen = try listsUntilSucceeded(fd, onB)
    XCTAssertEqual(row(seen.first, onB)?["state"]?.string, "running", "\(seen.first.map { $0.encoded() } ?? "none")")
    XCTAssertEqual(row(seen.last, onB)?["node"]?.string, "b")
  }
}
