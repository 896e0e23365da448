import CortexCore
import Posix
import XCTest

/// Groups across a cluster as one node sees them: `cortex status` counts a held group's tasks
/// in the whole cluster, `cortex resume` resumes and names every group paused in the cluster,
/// and a change a node follows from the cluster is logged as one (reason `cluster_…`, the node
/// that made it).
final class ClusterGroupTests: ClusterTestCase {
  func statusGroup(_ c: Cortex, _ name: String) -> JSON? {
    let v = try? JSON.parse(Array(c.ok(["--json", "status"]).out.utf8))
    return v?["cluster_groups"]?.array?.first { $0["name"]?.string == name }
  }

  func testStatusOnAnIdleNodeCountsALimitedGroupsTasksInTheWholeCluster() throws {
    let b = try startNode("b", workers: 3)
    XCTAssertEqual(b.run(["group", "set", "api", "--parallel", "2"]).code, 0)
    let ids = b.ok(["submit", "--no-env", "--from", "-"], input: batch(3) { _ in #"{"shell":"sleep 60","group":"api"}"# }).out
    b.eventually("b runs two api tasks") { sql("SELECT count(*) FROM cortex_task WHERE grp = 'api' AND state = 'running'") == "2" }
    // a joins idle: it runs none of them, and its status says what the cluster runs.
    let a = try startNode("a", workers: 2)
    a.eventually("a's status counts the cluster's api tasks") { self.statusGroup(a, "api")?["running"]?.int == 2 }
    XCTAssertEqual(statusGroup(a, "api")?["queued"]?.int, 1)
    let text = a.ok(["status"]).out
    let row = text.split(separator: "\n").first { $0.hasPrefix("api ") }.map { $0.split(separator: " ").map(String.init) } ?? []
    XCTAssertEqual(Array(row.prefix(4)), ["api", "running", "2/2", "1"], text)
    XCTAssertTrue(text.contains("RUNNING and QUEUED of api are the whole cluster's"), text)
    // `cortex top` shows the same counts.
    let top = a.ok(["top", "--once"]).out
    XCTAssertTrue(top.contains("api 2/2 q1"), top)
    // Once no group is held, the counts are the node's again, and status says so.
    b.ok(["group", "set", "api", "--parallel", "0"])
    a.eventually("a's status no longer counts api for the cluster") {
      a.ok(["status"]).out.contains("the cluster pauses or limits no group")
    }
    b.ok(["cancel"] + ids.split(separator: "\n").map(String.init))
  }

  func testResumeOfEverythingResumesAndNamesEveryGroupPausedInTheCluster() throws {
    // A long lease: a reads the groups again only when woken, or every 10 s.
    let a = try startNode("a", workers: 1, leaseS: 30)
    let b = try startNode("b", workers: 1, leaseS: 30)
    b.ok(["pause", "x"])
    a.eventually("a follows the pause of x") { a.events().contains { $0.type == "group.paused" } }
    // Paused a moment ago (no wake-up has reached a yet), as by a node a has not heard from.
    _ = sql("INSERT INTO cortex_group (name, paused, changed_by) VALUES ('y', true, 'c')")
    let r = a.run(["--json", "resume"])
    XCTAssertEqual(r.code, 0, r.err)
    let changed = (try JSON.parse(Array(r.out.utf8)))["changed"]?.array?.compactMap(\.string) ?? []
    XCTAssertEqual(changed, ["x", "y"], r.out)
    XCTAssertEqual(sql("SELECT count(*) FROM cortex_group WHERE paused"), "0")
    b.ok(["pause", "x"])
    _ = sql("UPDATE cortex_group SET paused = true WHERE name = 'y'")
    XCTAssertEqual(a.ok(["resume"]).err, "cortex: groups x, y resumed\n")
    // One group, paused where a has not heard of it yet: a says it resumed it. (First the
    // wake-up of that resume, which a's link reads within a second, must have been read.)
    sleepMs(1500)
    _ = sql("UPDATE cortex_group SET paused = true WHERE name = 'y'")
    XCTAssertEqual(a.ok(["resume", "y"]).err, "cortex: group y resumed\n")
    XCTAssertEqual(sql("SELECT paused FROM cortex_group WHERE name = 'y'"), "f")
  }

  func testAGroupChangeANodeFollowsFromTheClusterIsLoggedAsTheClustersWithTheNodeThatMadeIt() throws {
    let a = try startNode("a", workers: 1)
    let b = try startNode("b", workers: 1)
    func followed(_ type: String) -> JSON? { a.events().last { $0.type == type } }
    b.ok(["pause", "x"])
    a.eventually("a follows the pause of x") { followed("group.paused") != nil }
    var e = try XCTUnwrap(followed("group.paused"))
    XCTAssertEqual(e["reason"]?.string, "cluster_pause", "\(e)")
    XCTAssertEqual(e["node"]?.string, "a", "\(e)")
    XCTAssertEqual(e["changed_by"]?.string, "b", "\(e)")
    XCTAssertTrue(e["detail"]?.string?.contains("changed on node b") == true, "\(e)")
    // A resume leaves x neither paused nor limited: still said to come from b.
    b.ok(["resume", "x"])
    a.eventually("a follows the resume of x") { followed("group.resumed") != nil }
    e = try XCTUnwrap(followed("group.resumed"))
    XCTAssertEqual(e["reason"]?.string, "cluster_resume", "\(e)")
    XCTAssertEqual(e["changed_by"]?.string, "b", "\(e)")
    b.ok(["group", "set", "api", "--parallel", "3"])
    a.eventually("a follows the limit of api") { followed("group.updated") != nil }
    e = try XCTUnwrap(followed("group.updated"))
    XCTAssertEqual(e["reason"]?.string, "cluster_group_set", "\(e)")
    XCTAssertEqual(e["changed_by"]?.string, "b", "\(e)")
    // The queue's pause too.
    b.ok(["pause"])
    a.eventually("a follows the pause of the queue") { followed("queue.paused") != nil }
    e = try XCTUnwrap(followed("queue.paused"))
    XCTAssertEqual(e["reason"]?.string, "cluster_pause", "\(e)")
    XCTAssertEqual(e["changed_by"]?.string, "b", "\(e)")
    // The node that made the change logs it as its own command.
    let own = try XCTUnwrap(b.events().last { $0.type == "group.paused" })
    XCTAssertEqual(own["reason"]?.string, "cortex_pause", "\(own)")
    XCTAssertNil(own["changed_by"], "\(own)")
    b.ok(["resume"])
  }
}

extension ClusterGroupTests {
  func testListByGroupOnAnyNodeShowsTheClustersTasksOfTheGroupQueuedRunningAndFinished() throws {
    let a = try startNode("a", workers: 1)
    let b = try startNode("b", workers: 1)
    let done = b.ok(["submit", "-p", "--no-env", "--group", "api", "--shell", "true"]).out.trimmed
    waitDone(1)
    b.ok(["pause", "later"])
    let held = b.ok(["submit", "-p", "--no-env", "--group", "later", "--shell", "true"]).out.trimmed
    let long = b.ok(["submit", "-p", "--no-env", "--group", "api", "--shell", "sleep 30"]).out.trimmed
    b.eventually("b runs the long api task") { sql("SELECT state FROM cortex_task WHERE grp = 'api'") == "running" }
    // a holds none of them.
    let api = a.ok(["list", "--group", "api"]).out
    XCTAssertTrue(api.contains(done) && api.contains(long) && !api.contains(held), api)
    XCTAssertTrue(api.contains("GROUP"), api)
    let later = try JSON.parse(Array(a.ok(["--json", "list", "--group", "later"]).out.utf8))
    XCTAssertEqual(later.array?.compactMap { $0["id"]?.string }, [held], "\(later)")
    XCTAssertEqual(later.array?.first?["group"]?.string, "later", "\(later)")
    b.ok(["cancel", long])
    b.ok(["resume"])
  }
}

extension ClusterGroupTests {
  func testATaskOfAGroupPausedInTheClusterIsShownInItsGroupAndHeldByThePauseOnAnyNode() throws {
    let a = try startNode("a", workers: 1)
    let b = try startNode("b", workers: 1)
    b.ok(["pause", "later"])
    a.eventually("a follows the pause of later") { a.events().contains { $0.type == "group.paused" } }
    let held = b.ok(["submit", "-p", "--no-env", "--group", "later", "--shell", "true"]).out.trimmed
    // a holds nothing of it: what it shows comes from the cluster.
    let shown = a.ok(["show", held]).out
    XCTAssertTrue(shown.contains("group           later"), shown)
    XCTAssertTrue(shown.contains("held by a pause: it starts after cortex resume later"), shown)
    XCTAssertEqual((try JSON.parse(Array(a.ok(["--json", "show", held]).out.utf8)))["group"]?.string, "later")
    // `task create` says so at once (and `wait` would, before it blocks).
    let created = a.ok(["task", "create", "--no-env", "--group", "later", "--shell", "true"]).err
    XCTAssertTrue(created.contains("held by a pause: it starts after cortex resume later"), created)
    a.ok(["resume", "later"])
    waitDone(2)
    XCTAssertTrue(b.ok(["show", held]).out.contains("group           later"), "a finished task keeps its group")
  }
}

extension ClusterGroupTests {
  func testStatusSaysTheClustersGroupCountsAreAsLastReadWhilePostgreSQLIsUnreachable() throws {
    let a = try startNode("a", workers: 1, leaseS: 30)
    XCTAssertEqual(a.run(["group", "set", "api", "--parallel", "1"]).code, 0)
    let long = a.ok(["submit", "-p", "--no-env", "--group", "api", "--shell", "sleep 60"]).out.trimmed
    a.eventually("a's status counts the running api task") { self.statusGroup(a, "api")?["running"]?.int == 1 }
    XCTAssertTrue(a.ok(["status"]).out.contains("are the whole cluster's (the groups it pauses or limits); the rest"))
    pg.pause()
    a.eventually("a's status says its cluster counts are as last read") {
      a.ok(["status"]).out.contains(
        "are the whole cluster's (the groups it pauses or limits), as last read before PostgreSQL became unreachable")
    }
    try pg.start()
    a.eventually("a reaches PostgreSQL again") { a.run(["cancel", long]).code == 0 }
  }
}

extension ClusterGroupTests {
  func testPausingAGroupOnlyAnotherNodeHasRunIsNotTakenForATypo() throws {
    let b = try startNode("b", workers: 1)
    b.ok(["submit", "--no-env", "--group", "gpu", "--shell", "true"])
    waitDone(1)
    // a joins later: it never saw a task of group gpu, but the cluster has.
    let a = try startNode("a", workers: 1)
    let paused = a.ok(["pause", "gpu"]).err
    XCTAssertEqual(paused, "cortex: group gpu paused\n")
    let typo = a.ok(["pause", "gpv"]).err
    XCTAssertTrue(typo.contains("no task or setting has named group gpv yet"), typo)
    a.ok(["resume"])
  }
}

extension ClusterGroupTests {
  /// Found by reading the list statement: a finished task's group was its spec's `group`, so a
  /// task whose group came from its worker type left `list --group` (and `show` on another
  /// node lost its group) once it ended.
  func testAFinishedTaskWhoseGroupCameFromItsWorkerTypeIsListedInItOnAnyNode() throws {
    let review: [(String, JSON)] = [("worker_types", .object([("review", .object([("group", .string("llm"))]))]))]
    let a = try startNode("a", workers: 1, config: review)
    let b = try startNode("b", workers: 1)
    let id = a.ok(["submit", "-p", "--no-env", "--type", "review", "--shell", "true"]).out.trimmed
    waitDone(1)
    for node in [a, b] {
      let listed = try JSON.parse(Array(node.ok(["--json", "list", "--group", "llm"]).out.utf8))
      XCTAssertEqual(listed.array?.compactMap { $0["id"]?.string }, [id], "\(listed)")
      XCTAssertEqual(listed.array?.first?["group"]?.string, "llm", "\(listed)")
    }
    XCTAssertFalse(b.ok(["list", "--group", "default"]).out.contains(id))
    let shown = try JSON.parse(Array(b.ok(["--json", "show", id]).out.utf8))
    XCTAssertEqual((shown["task"] ?? shown)["group"]?.string, "llm", "\(shown)")
  }
}
