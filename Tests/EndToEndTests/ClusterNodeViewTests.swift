import CortexCore
import Posix
import XCTest

extension ClusterModeTests {
  /// `cortex cluster status` showed a stopped node's lease as a negative number that grew
  /// ("-37.4s"); it says how long ago it lapsed. The JSON keeps the signed seconds.
  func testAStoppedNodesLeaseShowsAsLapsedNotNegative() throws {
    let b = try startNode("b", workers: 1, leaseS: 1)
    b.ok(["stop"])
    b.eventually("b's lease lapses") {
      let s = try? JSON.parse(Array(b.ok(["--json", "cluster", "status"]).out.utf8))
      return (s?["nodes"]?.array?.first?["lease_left_s"]?.double ?? 0) < -1
    }
    let out = b.ok(["cluster", "status"]).out
    let row = out.split(separator: "\n").first { $0.hasPrefix("b ") }.map(String.init) ?? ""
    XCTAssertTrue(row.contains("stopped"), out)
    let lapsed = row.split(separator: " ").map(String.init)
    let i = lapsed.firstIndex(of: "lapsed") ?? lapsed.endIndex
    XCTAssertTrue(i + 2 < lapsed.count && lapsed[i + 1].dropLast().allSatisfy(\.isNumber) && lapsed[i + 2] == "ago", out)
    XCTAssertFalse(row.contains(" -"), out)
  }
}

extension ClusterModeTests {
  /// A node restarted after a kill -9 hands its old claims back to the cluster (a local
  /// `task.cancelled`, reason `returned_to_cluster`); its `cortex status` and `top` counted them as
  /// cancelled, a cancel nobody asked for. The queue is paused here so that no node claims the
  /// task again before the counts are read.
  func testTasksARestartedNodeReturnsToTheClusterAreNotCountedAsCancelled() throws {
    let a = try startNode("a", workers: 1, config: [("snapshot_interval_s", .int(1))])
    let id = a.ok(["submit", "-p", "--no-env", "--shell", "sleep 60"]).out.trimmed
    a.eventually("a runs \(id)") { sql("SELECT count(*) FROM cortex_task WHERE node = 'a' AND state = 'running'") == "1" }
    // A claim comes back at a start from the snapshot (task-queue.json), written every second here.
    a.eventually("a's snapshot holds \(id)") {
      String(decoding: ((try? FileSystem.read(a.paths.taskQueue)) ?? nil) ?? [], as: UTF8.self).contains(id)
    }
    a.ok(["pause"])
    let pid = try XCTUnwrap(a.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    a.eventually("the killed daemon is gone") { !Processes.isAlive(pid) }
    a.ok(["start", "--workers", "1"])
    XCTAssertTrue(
      a.events().contains { $0.taskID == id && $0["reason"]?.string == "returned_to_cluster" },
      "\(a.events().suffix(12).map { ($0["type"]?.string ?? "") + " " + ($0["reason"]?.string ?? "") })")
    let s = try JSON.parse(Array(a.ok(["--json", "status"]).out.utf8))
    XCTAssertEqual(s["tasks"]?["cancelled"]?.int, 0, "\(s.encoded())")
    XCTAssertFalse(a.ok(["status"]).out.contains("1 cancelled"))
    // Not held here any more: show reads the cluster's record (queued again, the queue paused).
    let shown = a.run(["show", id])
    XCTAssertEqual(shown.code, 0, shown.err)
    XCTAssertTrue(shown.out.contains("queued"), shown.out)
    // The same after another restart, which reads the log again.
    a.ok(["stop"])
    a.ok(["start", "--workers", "1"])
    let again = try JSON.parse(Array(a.ok(["--json", "status"]).out.utf8))
    XCTAssertEqual(again["tasks"]?["cancelled"]?.int, 0, "\(again.encoded())")
    a.ok(["resume"])
    a.ok(["cancel", id])
  }
}

extension ClusterModeTests {
  /// SPEC §11: `show` names the node. It did only for a task another node ran (the cluster's
  /// record); a task the asking node ran itself was shown from its own memory with no `node`
  /// line and no `node` in `--json`, so a script reading `.node` got null for half the tasks.
  /// `cortex log` of a task this node ran still reads its own output.
  func testShowNamesTheNodeAlsoForATaskThisNodeRan() throws {
    let a = try startNode("a", workers: 1)
    let id = a.ok(["submit", "-p", "--no-env", "--shell", "echo ran here"]).out.trimmed
    XCTAssertEqual(a.run(["wait", id]).code, 0)
    let own = try JSON.parse(Array(a.ok(["--json", "show", id]).out.utf8))
    XCTAssertEqual(own["node"]?.string, "a", "a's show of a task a ran: \(own.encoded())")
    XCTAssertTrue(a.ok(["show", id]).out.split(separator: "\n").contains { $0.hasPrefix("node ") && $0.hasSuffix(" a") })
    XCTAssertEqual(a.ok(["log", id]).out, "ran here\n")
  }
}

extension ClusterModeTests {
  /// `show` of a task queued in the cluster, or of one another node ran, printed no type,
  /// priority or description (the cluster's record has them only in its spec), so a priority
  /// changed with `cortex edit` showed only deep in the spec dump. Named as a task held here is.
  func testShowOfTheClustersRecordNamesTypePriorityAndDescription() throws {
    let a = try startNode("a", workers: 1)
    let b = try startNode("b", workers: 1)
    a.ok(["pause"])
    let id = a.ok(["submit", "-p", "--no-env", "--type", "review", "-d", "look at it", "--priority", "low", "--", "true"]).out.trimmed
    a.ok(["edit", id, "--priority", "high"])
    for (label, node) in [("queued", a), ("queued, on b", b)] {
      let v = try JSON.parse(Array(node.ok(["--json", "show", id]).out.utf8))
      XCTAssertEqual(v["state"]?.string, "queued", label)
      XCTAssertEqual(v["priority"]?.string, "high", "\(label): \(v.encoded())")
      XCTAssertEqual(v["type"]?.string, "review", "\(label): \(v.encoded())")
      XCTAssertEqual(v["description"]?.string, "look at it", "\(label): \(v.encoded())")
    }
    let text = b.ok(["show", id]).out.split(separator: "\n").map(String.init)
    for row in ["priority        high", "type            review", "description     look at it"] {
      XCTAssertTrue(text.contains(row), "no '\(row)' in:\n\(text.joined(separator: "\n"))")
    }
    b.ok(["stop"])
    a.ok(["resume"])
    XCTAssertEqual(a.run(["wait", id]).code, 0)
    // Ran on a: b reads the cluster's record of it.
    b.ok(["start", "--workers", "1"])
    let done = try JSON.parse(Array(b.ok(["--json", "show", id]).out.utf8))
    XCTAssertEqual(done["node"]?.string, "a", done.encoded())
    XCTAssertEqual(done["priority"]?.string, "high", done.encoded())
    XCTAssertEqual(done["type"]?.string, "review", done.encoded())
  }
}
