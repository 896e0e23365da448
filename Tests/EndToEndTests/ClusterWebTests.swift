import CortexCore
import Posix
import XCTest

/// Issue 14 item 6: in cluster mode the pages (and their API) of any node show every node.
final class ClusterWebTests: ClusterTestCase {
  /// GET `path` on `node`'s web view with its token; the answer's JSON (nil unless 200).
  func api(_ node: Cortex, _ path: String) throws -> JSON? {
    guard let port = node.webPort else { return nil }
    let a = try RawHTTP(port: port).get(path, headers: ["Authorization: Bearer \(node.webToken)"])
    return a.status == 200 ? try JSON.parse(Array(a.body.utf8)) : nil
  }

  func testNodeAsPagesShowNodeBAndTheTasksThatRanOnB() throws {
    // B alone first: what is submitted now can only run on B.
    let b = try startNode("b", workers: 2, leaseS: 5, budget: 1_000_000)
    let done = b.ok(["submit", "-p", "--description", "ran on b", "--synthetic", "10:5"]).out.trimmed
    XCTAssertEqual(b.run(["wait", done], timeoutS: 30).code, 0)
    let long = b.ok(["submit", "-p", "--description", "runs on b", "--synthetic", "600000:5"]).out.trimmed
    b.eventually("\(long) running on b") {
      sql("SELECT coalesce(node, '') FROM cortex_task WHERE id = \(TaskID.parse(long)!) AND state = 'running'") == "b"
    }
    // A failed task and one that waits for `long` (queued in the cluster): A's pages act on them.
    let failed = b.ok(["submit", "-p", "--no-env", "--shell", "exit 3"]).out.trimmed
    XCTAssertEqual(b.run(["wait", failed], timeoutS: 30).code, 3)
    let waiting = b.ok(["submit", "-p", "--no-env", "--after", long, "--synthetic", "10:5"]).out.trimmed
    let a = try startNode("a", workers: 2, leaseS: 5, budget: 1_000_000)

    // /api/cluster and the status (pushed to the overview) on A list both nodes, B with its task.
    var cluster: JSON?
    try a.eventually("A's /api/cluster to show node b running \(long)") {
      cluster = try api(a, "/api/cluster")?["cluster"]
      let bRow = cluster?["nodes"]?.array?.first { $0["name"]?.string == "b" }
      return bRow?["tasks"]?.array?.contains { $0.string == long } == true && bRow?["running"]?.int == 1
        && cluster?["nodes"]?.array?.count == 2
    }
    XCTAssertEqual(cluster?["node"]?.string, "a")
    let bRow = cluster?["nodes"]?.array?.first { $0["name"]?.string == "b" }
    XCTAssertEqual(bRow?["state"]?.string, "alive")
    XCTAssertNotNil(bRow?["epoch"]?.int)
    XCTAssertGreaterThan(bRow?["lease_left_s"]?.double ?? 0, 0)
    XCTAssertEqual(bRow?["running"]?.int, 1)
    XCTAssertEqual(bRow?["workers"]?.int, 2)
    XCTAssertGreaterThanOrEqual(cluster?["tasks"]?["done"]?.int ?? 0, 1)
    let status = try api(a, "/api/status")
    XCTAssertEqual(status?["cluster"]?["nodes"]?.array?.map { $0["name"]?.string ?? "" }, ["a", "b"])
    XCTAssertEqual(status?["cluster"]?["database"]?.string, "reachable")
    // A node's own budget is a placeholder (2^60): neither the status nor /metrics shows it.
    XCTAssertEqual(status?["budget"]?["scope"]?.string, "cluster")
    let metrics = try RawHTTP(port: try XCTUnwrap(a.webPort)).get("/metrics", headers: ["Authorization: Bearer \(a.webToken)"])
    XCTAssertEqual(metrics.status, 200)
    XCTAssertFalse(metrics.body.contains("cortex_tokens{") || metrics.body.contains(String(1 << 60)), metrics.body)

    // A's task list is the cluster's: both of B's tasks, each naming b.
    let list = try XCTUnwrap(try api(a, "/api/tasks?limit=50"))
    XCTAssertEqual(list["scope"]?.string, "cluster")
    let rows = list["tasks"]?.array ?? []
    for id in [done, long] {
      let row = rows.first { $0["id"]?.string == id }
      XCTAssertEqual(row?["node"]?.string, "b", "\(id) in A's task list: \(row.map { $0.encoded() } ?? "missing")")
    }
    XCTAssertEqual(rows.first { $0["id"]?.string == done }?["state"]?.string, "succeeded")
    // The task page of a task that ran on B, asked of A.
    let shown = try api(a, "/api/tasks/\(done)")?["task"]
    XCTAssertEqual(shown?["node"]?.string, "b")
    XCTAssertEqual(shown?["state"]?.string, "succeeded")
    // The same in a real browser: A's overview shows B and its task; A's task list names B and
    // follows the cluster's list as A pushes it (a task submitted on B comes by itself).
    let (python, shots) = try WebBrowserTests.browser(a)
    let url = "http://127.0.0.1:\(try XCTUnwrap(a.webPort))/?token=\(a.webToken)"
    let (code, out) = try a.runProgram(
      [
        python, WebBrowserTests.repo + "/scripts/web/cluster-browser-test.py", url, "b", long, done, "1000000", shots, failed, waiting,
        Cortex.binary, b.root,
      ],
      timeoutS: 120)
    XCTAssertEqual(code, 0, "cluster browser test failed:\n\(out)")
    XCTAssertTrue(out.contains("came to A's list by itself"), out)
    // The clicks were decisions of the cluster: a retry naming the failed task, a new priority.
    let retries = sql(
      "SELECT (SELECT count(*) FROM cortex_task WHERE spec->>'retry_of' = '\(failed)') + (SELECT count(*) FROM cortex_task_done WHERE spec->>'retry_of' = '\(failed)')"
    )
    XCTAssertEqual(retries, "1", out)
    XCTAssertEqual(sql("SELECT priority FROM cortex_task WHERE id = \(TaskID.parse(waiting)!)"), String(Priority.high.rawValue), out)

    // A single host has no cluster: /api/cluster says so.
    let single = try Cortex()
    nodes.append(single)
    try single.initialize()
    single.ok(["start", "--workers", "1"])
    let port = try XCTUnwrap(single.webPort)
    XCTAssertEqual(try RawHTTP(port: port).get("/api/cluster", headers: ["Authorization: Bearer \(single.webToken)"]).status, 404)
    XCTAssertNil(try api(single, "/api/status")?["cluster"])
  }

  /// Issue 14 item 6, the rest: node A's pages show the cluster's counts and queue (from the
  /// database), node B's workers, node B's events and the output of a task that ran on B (read
  /// from B's web view with the read-only peer token B published), with no token in any answer;
  /// and once B is killed, A's pages say that B cannot be read instead of hanging or failing.
  func testNodeAReadsNodeBsWorkersEventsAndOutputAndSaysWhenBIsDown() throws {
    // A lease long enough that B stopped for a few seconds (below) is not fenced meanwhile.
    let b = try startNode("b", workers: 1, leaseS: 15, budget: 1_000_000)
    let marker = "output-of-b-\(Clock.monotonicNs())"
    let echoed = b.ok(["submit", "-p", "--description", "echo on b", "--shell", "echo \(marker)"]).out.trimmed
    XCTAssertEqual(b.run(["wait", echoed], timeoutS: 30).code, 0)
    let long = b.ok(["submit", "-p", "--description", "runs on b", "--synthetic", "600000:5"]).out.trimmed
    b.eventually("\(long) running on b") {
      sql("SELECT coalesce(node, '') FROM cortex_task WHERE id = \(TaskID.parse(long)!) AND state = 'running'") == "b"
    }
    // Waiting on the long task, these stay queued in the database (no node can claim them).
    for p in ["high", "high", "low"] { b.ok(["submit", "-p", "--priority", p, "--after", long, "--synthetic", "10"]) }
    let a = try startNode("a", workers: 2, leaseS: 5, budget: 1_000_000)

    // 1. Counts and the queue by priority are the cluster's.
    var cluster: JSON?
    try a.eventually("A's /api/cluster to count the cluster's queued tasks by priority") {
      cluster = try api(a, "/api/cluster")?["cluster"]
      return cluster?["queued_by_priority"]?["high"]?.int == 2 && cluster?["queued_by_priority"]?["low"]?.int == 1
    }
    XCTAssertEqual(cluster?["counts"]?["queued"]?.int, 3)
    XCTAssertEqual(cluster?["counts"]?["running"]?.int, 1)
    XCTAssertEqual(cluster?["counts"]?["succeeded"]?.int, 1)
    // 2. Every node's workers: B's one worker, busy with the long task.
    try a.eventually("A's /api/status to show node b's worker grid") {
      let g = try api(a, "/api/status")?["cluster"]?["workers"]?.array?.first { $0["node"]?.string == "b" }
      return g?["ok"]?.bool == true && g?["workers"]?["states"]?.string == "b"
        && g?["workers"]?["tasks"]?.array?.first?.int == Int64(TaskID.parse(long)!)
    }
    let mine = try api(a, "/api/status")?["cluster"]?["workers"]?.array?.first { $0["node"]?.string == "a" }
    XCTAssertEqual(mine?["workers"]?["states"]?.string?.count, 2)
    // 3. B's chart series (its throughput counts the task that finished there).
    try a.eventually("node b's chart series in A's status, with the task b finished") {
      let bs = try api(a, "/api/status")?["series"]?["nodes"]?.array?.first { $0["node"]?.string == "b" }?["series"]
      return (bs?["tasks_per_s"]?.array ?? []).contains { ($0.double ?? 0) > 0 }
    }
    // 4. B's events, asked of A.
    try a.eventually("node b's task.succeeded of \(echoed) in A's cluster-wide recent events") {
      let evs = try api(a, "/api/events/recent?scope=cluster&limit=1000")?["events"]?.array ?? []
      return evs.contains { $0["node"]?.string == "b" && $0["task_id"]?.string == echoed && $0["type"]?.string == "task.succeeded" }
    }
    // 5. The output of the task that ran on B, asked of A.
    let out = try XCTUnwrap(try api(a, "/api/tasks/\(echoed)/output"))
    XCTAssertTrue(out["text"]?.string?.contains(marker) == true, out.encoded())
    XCTAssertEqual(out["node"]?.string, "b")
    // …and its history, worker and timings, which only B's log holds.
    let detail = try XCTUnwrap(try api(a, "/api/tasks/\(echoed)")?["task"])
    XCTAssertEqual(detail["node"]?.string, "b")
    XCTAssertEqual(detail["worker_id"]?.string, "worker-001", detail.encoded())
    XCTAssertEqual(detail["history"]?.array?.last?["type"]?.string, "task.succeeded", detail.encoded())
    XCTAssertNil(detail["detail_note"])

    // The peer token B published reaches no answer, and reads nothing but what peers need.
    let peerToken = sql("SELECT web_peer_token FROM cortex_node WHERE name = 'b'")
    XCTAssertEqual(peerToken.count, 48)
    let aPort = try XCTUnwrap(a.webPort)
    let bPort = try XCTUnwrap(b.webPort)
    for path in ["/api/cluster", "/api/status", "/api/events/recent?scope=cluster&limit=5000", "/api/tasks?limit=100"] {
      let body = try RawHTTP(port: aPort).get(path, headers: ["Authorization: Bearer \(a.webToken)"]).body
      XCTAssertFalse(body.contains(peerToken), "\(path) on A shows B's peer token")
    }
    let asPeer = ["Authorization: Bearer \(peerToken)"]
    XCTAssertEqual(try RawHTTP(port: bPort).get("/api/status", headers: asPeer).status, 200)
    XCTAssertEqual(try RawHTTP(port: bPort).get("/api/tasks", headers: asPeer).status, 403)
    XCTAssertEqual(try RawHTTP(port: bPort).get("/", headers: asPeer).status, 403)
    XCTAssertEqual(try RawHTTP(port: bPort).post("/api/scale", body: "{\"workers\": 3}", headers: asPeer).status, 403)

    // The same in Chromium.
    let (python, shots) = try WebBrowserTests.browser(a)
    let url = "http://127.0.0.1:\(aPort)/?token=\(a.webToken)"
    let script = WebBrowserTests.repo + "/scripts/web/cluster-peers-browser-test.py"
    var (code, text) = try a.runProgram([python, script, url, "b", echoed, marker, long, "2", shots], timeoutS: 120)
    XCTAssertEqual(code, 0, "cluster peers browser test failed:\n\(text)")

    // B stops answering (SIGSTOP: connections are accepted, nothing is answered): A's request
    // for B's output ends in 502 after the answer timeout, and A answers everything else at once.
    let bPID = try XCTUnwrap(b.daemonPID)
    XCTAssertTrue(Processes.signal(bPID, Signal.stop))
    defer { _ = Processes.signal(bPID, Signal.cont) }
    let fd = try TCPSocket.connect(address: "127.0.0.1", port: aPort)
    try fd.writeAll(
      "GET /api/tasks/\(echoed)/output HTTP/1.1\r\nHost: 127.0.0.1:\(aPort)\r\nAuthorization: Bearer \(a.webToken)\r\nConnection: close\r\n\r\n"
    )
    let t0 = Clock.monotonicMs()
    for _ in 0..<5 {
      let s0 = Clock.monotonicMs()
      XCTAssertEqual(try RawHTTP(port: aPort).get("/api/status", headers: ["Authorization: Bearer \(a.webToken)"]).status, 200)
      XCTAssertLessThan(Clock.monotonicMs() - s0, 1000, "A's /api/status waited on the stopped node")
      sleepMs(200)
    }
    let stalled = try RawHTTP.read(fd, timeoutMs: 20_000)
    fd.close()
    XCTAssertEqual(stalled.status, 502, stalled.body)
    XCTAssertTrue(stalled.body.contains("node b") && stalled.body.contains("no answer"), stalled.body)
    XCTAssertLessThan(Clock.monotonicMs() - t0, 15_000)
    XCTAssertTrue(Processes.signal(bPID, Signal.cont))

    // B goes down: A's pages and answers say so, promptly.
    XCTAssertTrue(Processes.signal(bPID, Signal.kill))
    try a.eventually("A's status to say node b's workers cannot be read") {
      let g = try api(a, "/api/status")?["cluster"]?["workers"]?.array?.first { $0["node"]?.string == "b" }
      return g?["ok"]?.bool == false && g?["note"]?.string?.contains("node b") == true
    }
    try a.eventually("A's output answer for \(echoed) to say node b cannot be read") {
      let r = try RawHTTP(port: aPort).get("/api/tasks/\(echoed)/output", headers: ["Authorization: Bearer \(a.webToken)"])
      return r.status == 502 && r.body.contains("node b")
    }
    let record = try XCTUnwrap(try api(a, "/api/tasks/\(echoed)")?["task"])
    XCTAssertEqual(record["state"]?.string, "succeeded", "the cluster's record still answers")
    XCTAssertTrue(record["detail_note"]?.string?.contains("node b") == true, record.encoded())
    try a.eventually("A's cluster-wide recent events to list node b as unreadable") {
      let nodes = try api(a, "/api/events/recent?scope=cluster")?["nodes"]?.array ?? []
      return nodes.contains { $0["node"]?.string == "b" && $0["ok"]?.bool == false }
    }
    (code, text) = try a.runProgram([python, script, url, "b", echoed, marker, long, "2", shots, "down"], timeoutS: 120)
    XCTAssertEqual(code, 0, "cluster peers browser test (node b down) failed:\n\(text)")
  }

  /// In cluster mode `/api/groups` adds, for each group the cluster pauses or limits, what runs
  /// and waits in the whole cluster (as `cortex group` adds it), and judges "at limit" by it: A
  /// runs none of slow's tasks, B runs one, and slow is at its cluster-wide limit of 1. A pause
  /// through A's API is the cluster's (the database's row), logged on A as `cortex pause` is; in
  /// Chromium, A's Groups card shows the cluster's counts and resumes the group on a click.
  func testNodeAsGroupsShowTheClustersCounts() throws {
    // B alone first: what is submitted now can only run on B.
    let b = try startNode("b", workers: 2, leaseS: 5, budget: 1_000_000)
    XCTAssertEqual(b.run(["group", "set", "slow", "--parallel", "1"]).code, 0)
    let slow = batch(3) { _ in #"{"synthetic":{"duration_ms":600000,"tokens":5},"group":"slow"}"# }
    b.ok(["submit", "--no-env", "--from", "-"], input: slow)
    b.eventually("one task of slow running on b") {
      sql("SELECT count(*) FROM cortex_task WHERE grp = 'slow' AND state = 'running' AND node = 'b'") == "1"
    }
    let a = try startNode("a", workers: 2, leaseS: 5, budget: 1_000_000)
    var v: JSON?
    var row: JSON?
    try a.eventually("A's /api/groups to show the cluster's counts of slow") {
      v = try api(a, "/api/groups")
      row = v?["groups"]?.array?.first { $0["name"]?.string == "slow" }
      return row?["cluster"]?["running"]?.int == 1 && row?["cluster"]?["queued"]?.int == 2
    }
    XCTAssertEqual(row?["state"]?.string, "at_limit", v?.encoded() ?? "")
    XCTAssertEqual(row?["parallel"]?.int, 1)
    XCTAssertEqual(row?["running"]?.int, 0, "A's own count")
    let listed = v?["cluster_groups"]?.array?.first { $0["name"]?.string == "slow" }
    XCTAssertEqual(listed?["running"]?.int, 1, v?.encoded() ?? "")
    XCTAssertEqual(listed?["queued"]?.int, 2)
    XCTAssertEqual(listed?["parallel"]?.int, 1)
    // The same counts `cortex group --json` reads from the database.
    let cli = try JSON.parse(Array(a.ok(["--json", "group"]).out.utf8))
    XCTAssertEqual(cli["cluster_groups"]?.array?.first { $0["name"]?.string == "slow" }?["queued"]?.int, 2, cli.encoded())

    let port = try XCTUnwrap(a.webPort)
    let paused = try RawHTTP(port: port).post("/api/groups/slow/pause", body: "{}", headers: ["Authorization: Bearer \(a.webToken)"])
    XCTAssertEqual(paused.status, 200, paused.body)
    XCTAssertEqual(sql("SELECT paused FROM cortex_group WHERE name = 'slow'"), "t")
    let logged = a.events().first { $0.type == "group.paused" }
    XCTAssertEqual(logged?["group"]?.string, "slow")
    XCTAssertEqual(logged?["reason"]?.string, "cortex_pause")
    try a.eventually("A's /api/groups to show slow paused in the cluster") {
      let g = try api(a, "/api/groups")
      let s = g?["groups"]?.array?.first { $0["name"]?.string == "slow" }
      return s?["state"]?.string == "paused" && g?["cluster_groups"]?.array?.first?["paused"]?.bool == true
    }
    b.eventually("b follows the pause of slow") { b.events().contains { $0.type == "group.paused" } }

    // In Chromium: A's Groups card shows slow paused with the cluster's counts, follows a limit
    // set on A's command line (3), sets one itself (2), and a click on Resume resumes it in the
    // cluster.
    let (python, shots) = try WebBrowserTests.browser(a)
    let url = "http://127.0.0.1:\(port)/?token=\(a.webToken)"
    let (code, out) = try a.runProgram(
      [python, WebBrowserTests.repo + "/scripts/web/groups-browser-test.py", Cortex.binary, a.root, url, shots, "slow", "cluster"],
      timeoutS: 120)
    XCTAssertEqual(code, 0, "groups browser test (cluster) failed:\n\(out)")
    XCTAssertEqual(sql("SELECT paused::text || ':' || parallel FROM cortex_group WHERE name = 'slow'"), "false:2", out)
    XCTAssertEqual(a.events().first { $0.type == "group.resumed" }?["reason"]?.string, "cortex_resume", out)
  }
}
