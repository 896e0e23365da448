import CortexCore
import Posix
import Synchronization
import XCTest

/// Cluster mode as an operator runs it on two hosts: node `b` on a host of its own (a network
/// namespace, as in `ClusterPartitionTests`), reaching PostgreSQL over TCP; node `a` (and `c`)
/// on this side. Both "hosts" have the same host name, as hosts cloned from one image often do.
/// Needs root (`ip netns`).
final class ClusterHostsTests: ClusterOverANetworkTestCase {
  /// GET `path` on `node`'s web view (on this side) with its token: status and JSON.
  func api(_ node: Cortex, _ path: String) throws -> (Int, JSON?) {
    let a = try RawHTTP(port: try XCTUnwrap(node.webPort)).get(path, headers: ["Authorization: Bearer \(node.webToken)"])
    return (a.status, try? JSON.parse(Array(a.body.utf8)))
  }

  /// Every host keeps the default `web.bind` (127.0.0.1), with one fixed port, as an operator
  /// copying one config.json to every host would. Node a cannot read b's 127.0.0.1 and must say
  /// so, naming the setting. It decided by host name: with equal names it asked its own
  /// loopback, met its own web view there, and said only "node b's web view answered HTTP 401".
  /// Node c, on a's loopback, is still read.
  func testAWebViewOnTheLoopbackOfAnotherHostIsNamedAsUnreadableWithTheSettingToChange() throws {
    let port = try freeTCPPort()
    let web = { (p: Int) -> [(String, JSON)] in [("web", .object([("bind", .string("127.0.0.1")), ("port", .int(Int64(p)))]))] }
    let b = try startNode("b", workers: 1, leaseS: 4, config: web(port), dsn: pg.tcpDSN, launcher: net.launcher)
    let ran = b.ok(["submit", "--no-env", "--shell", "echo on-b"]).out.trimmed
    XCTAssertEqual(b.run(["wait", ran], timeoutS: 30).code, 0)
    let a = try startNode("a", workers: 1, leaseS: 4, config: web(port), dsn: pg.tcpDSN)
    try startNode("c", workers: 1, leaseS: 4, config: web(0), dsn: pg.tcpDSN)

    var grids: [JSON] = []
    try a.eventually("A's status to say whether it reads node b's and node c's workers", timeoutS: 15) {
      grids = try api(a, "/api/status").1?["cluster"]?["workers"]?.array ?? []
      let b = grids.first { $0["node"]?.string == "b" }, c = grids.first { $0["node"]?.string == "c" }
      return b?["note"] != nil && c?["ok"]?.bool == true
    }
    let note = grids.first { $0["node"]?.string == "b" }?["note"]?.string ?? ""
    XCTAssertTrue(note.contains("127.0.0.1") && note.contains("cannot reach") && note.contains("\"bind\""), note)
    // The output of the task that ran on b: 502 with the same reason, at once.
    let asked = Clock.monotonicMs()
    let (status, answer) = try api(a, "/api/tasks/\(ran)/output")
    XCTAssertEqual(status, 502)
    XCTAssertTrue(answer?["error"]?.string?.contains("\"bind\"") == true, answer?.encoded() ?? "no answer")
    XCTAssertLessThan(Clock.monotonicMs() - asked, 1000)
  }

  /// `cortex log -f` of a task that runs on another host said nothing and ended 0 when the task
  /// ended (it followed a file this node never has); `cortex log` without -f names the node.
  /// Now both name it, also when the task was queued when following began and b then took it.
  func testLogFollowOfATaskOnAnotherHostNamesTheNode() throws {
    try startNode("b", workers: 1, leaseS: 4, dsn: pg.tcpDSN, launcher: net.launcher)
    let a = try startNode("a", workers: 1, leaseS: 4, dsn: pg.tcpDSN)
    // One long task on each node's one worker (neither claims ahead before a task ended on it).
    let long = a.ok(["submit", "--no-env", "--from", "-"], input: batch(2) { _ in #"{"command":["sleep","60"]}"# }).out
      .split(separator: "\n").map(String.init)
    a.eventually("a long task on each node") { sql("SELECT string_agg(node, ',' ORDER BY node) FROM cortex_task") == "a,b" }
    let onB = try XCTUnwrap(long.first { sql("SELECT node FROM cortex_task WHERE id = \(TaskID.parse($0)!)") == "b" })
    var started = Clock.monotonicMs()
    let running = a.run(["log", "-f", onB], timeoutS: 20)
    XCTAssertEqual(running.code, 1, running.err)
    XCTAssertTrue(running.err.contains("\(onB) runs on node b"), running.err)
    XCTAssertLessThan(Clock.monotonicMs() - started, 5000)

    // Followed while queued in the cluster; b takes it once its long task is cancelled.
    let queued = a.ok(["submit", "--no-env", "--shell", "echo on-b"]).out.trimmed
    let out = try FileDescriptor.open(a.scratch + "/follow.out", [.writeOnly, .create, .truncate])
    let err = try FileDescriptor.open(a.scratch + "/follow.err", [.writeOnly, .create, .truncate])
    let pid = try Processes.spawn(
      [Cortex.binary, "--dir", a.root, "log", "-f", queued], environment: Environment.all(), stdin: nil, stdout: out, stderr: err,
      newProcessGroup: false)
    out.close()
    err.close()
    sleepMs(500)
    started = Clock.monotonicMs()
    a.ok(["cancel", onB])
    var status: ExitStatus? = nil
    while status == nil && Clock.monotonicMs() - started < 20_000 {
      status = Processes.reap(pid)?.1
      sleepMs(20)
    }
    if status == nil {
      _ = Processes.signal(pid, Signal.kill)
      _ = Processes.wait(pid)
    }
    let said = String(decoding: (try FileSystem.read(a.scratch + "/follow.err")) ?? [], as: UTF8.self)
    a.eventually("\(queued) to end on b") { sql("SELECT node FROM cortex_task_done WHERE id = \(TaskID.parse(queued)!)") == "b" }
    XCTAssertEqual(status, .exited(1), "log -f of \(queued), which b took: \(said)")
    XCTAssertTrue(said.contains("\(queued) ") && said.contains("on node b"), said)
  }
}

extension ClusterHostsTests {
  /// A second host with the same host name (clones of one image) and the same node name (the
  /// default one is the host name): refused as a name alive elsewhere. It took the name over
  /// (the check was "this host name, and no process with the holder's pid here"), so the live
  /// node a was fenced and ran nothing more. A node restarted in its own directory after a
  /// kill -9 still takes its name back at once, well within its lease.
  func testANodeNameAliveOnAnotherHostWithTheSameHostNameIsRefused() throws {
    let a = try startNode("a", workers: 1, leaseS: 30, dsn: pg.tcpDSN)
    let other = try Cortex()
    other.launcher = try net.otherHost()
    nodes.append(other)
    try other.initialize([("cluster", .object([("postgres", .string(pg.tcpDSN)), ("node", .string("a")), ("lease_s", .double(30))]))])
    let r = other.run(["start", "--workers", "1"], timeoutS: 30)
    XCTAssertNotEqual(r.code, 0, "a second node a started on the other host")
    XCTAssertTrue(r.err.contains("already alive"), r.err)
    sleepMs(500)
    XCTAssertEqual(sql("SELECT state || ' ' || epoch || ' ' || pid FROM cortex_node WHERE name = 'a'"), "alive 1 \(a.daemonPID ?? 0)")
    XCTAssertFalse(a.events().contains { $0.type == "node.fenced" }, "node a was fenced by a node on another host")

    // kill -9, then a start in the same directory: the name back at once, under a new epoch.
    let pid = try XCTUnwrap(a.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    a.eventually("node a's daemon is gone") { !Processes.isAlive(pid) || Processes.info(pid)?.isZombie == true }
    let started = Clock.monotonicMs()
    a.ok(["start", "--workers", "1"])
    XCTAssertEqual(sql("SELECT state || ' ' || epoch FROM cortex_node WHERE name = 'a'"), "alive 2")
    XCTAssertLessThan(Clock.monotonicMs() - started, 10_000)
    // Again, with `cortex doctor --repair` between (it removes the stale daemon.pid).
    let second = try XCTUnwrap(a.daemonPID)
    XCTAssertTrue(Processes.signal(second, Signal.kill))
    a.eventually("node a's daemon is gone again") { !Processes.isAlive(second) || Processes.info(second)?.isZombie == true }
    a.run(["doctor", "--repair"])
    XCTAssertFalse(FileSystem.exists(a.root + "/daemon.pid"))
    a.ok(["start", "--workers", "1"])
    XCTAssertEqual(sql("SELECT state || ' ' || epoch FROM cortex_node WHERE name = 'a'"), "alive 3")
  }
}

extension ClusterHostsTests {
  /// `cortex init --cluster` on a host with a DSN whose port is wrong: the start fails at once,
  /// naming the server and its refusal; with the DSN fixed the next start joins and says nothing
  /// about its own files. The failed start had left an empty (all zero) hot-state.mmap, which
  /// every next start called invalid and set aside as hot-state.mmap.bad-… (a warning on
  /// `cortex start` and one more file per failed attempt).
  func testAFailedFirstJoinLeavesNothingTheNextStartCallsInvalid() throws {
    let b = try Cortex()
    b.launcher = net.launcher
    nodes.append(b)
    let wrong = "postgresql://cortex@\(net.hostAddress):\(pg.port + 1)/postgres"
    let asked = Clock.monotonicMs()
    let refused = b.run(["init", "--cluster", wrong, "--node", "b", "--workers", "1"], timeoutS: 30)
    XCTAssertEqual(refused.code, 1, refused.err)
    XCTAssertTrue(refused.err.contains("cannot join the cluster") && refused.err.contains("\(net.hostAddress)"), refused.err)
    XCTAssertLessThan(Clock.monotonicMs() - asked, 5000)
    // Twice, as an operator trying again before finding the typo.
    XCTAssertEqual(b.run(["start", "--workers", "1"], timeoutS: 30).code, 1)

    let joined = b.run(["init", "--force", "--cluster", pg.tcpDSN, "--node", "b", "--workers", "1"], timeoutS: 30)
    XCTAssertEqual(joined.code, 0, joined.err)
    XCTAssertFalse(joined.err.contains("hot-state"), joined.err)
    XCTAssertEqual(try FileSystem.list(b.root).filter { $0.hasPrefix("hot-state.mmap.") }, [])
    XCTAssertFalse(b.events().contains { $0["reason"]?.string == "hot_state_invalid" })
    XCTAssertEqual(sql("SELECT state FROM cortex_node WHERE name = 'b'"), "alive")
  }
}

/// A node's web view as another host whose clock is `skewMs` behind this one's serves it: its
/// one event happened just now, and its `ts` and `now_ms` say so on its own clock. Answers
/// `/api/events/recent` and `/api/status`, each request on a new connection, until `stop()`.
final class SkewedPeer: Sendable {
  let listener: FileDescriptor
  let port: Int
  let stopped = Mutex(false)

  init(address: String, skewMs: Int64) throws {
    listener = try TCPSocket.listen(address: address, port: 0)
    port = TCPSocket.localPort(listener)
    let happened = Clock.wallMs() - skewMs
    try startThread { [self] in
      while !stopped.withLock({ $0 }) {
        guard listener.waitReadable(timeoutMs: 100), let c = UnixSocket.accept(listener) else { continue }
        var request: [UInt8] = []
        while c.waitReadable(timeoutMs: 1000), (try? c.read(appendingTo: &request)) ?? 0 > 0,
          ByteSearch.firstIndex(of: [13, 10, 13, 10], in: request[...]) == nil
        {}
        let path = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self)
        let event = #"{"seq":1,"ts":"\#(Timestamp.rfc3339(ms: happened))","type":"task.succeeded","node":"z","task_id":"task-000777"}"#
        let body =
          path.contains("/api/events/recent") ? #"{"ok":true,"now_ms":\#(Clock.wallMs() - skewMs),"events":[\#(event)]}"# : #"{"ok":true}"#
        try? c.writeAll(
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        c.close()
      }
      listener.close()
    }
  }

  func stop() { stopped.withLock { $0 = true } }
}

extension ClusterHostsTests {
  /// Hosts' clocks need not agree. Node z (a stand-in web view on the other host, its clock an
  /// hour behind) logged an event just now: node a's cluster-wide newest events include it.
  /// A merged by each node's own `ts`, so z's events sorted an hour back, before all of a's,
  /// and the newest ones left them out.
  func testEventsOfANodeWhoseClockIsBehindAreMergedByWhenTheyHappened() throws {
    let a = try startNode("a", workers: 1, leaseS: 4, dsn: pg.tcpDSN)
    let z = try SkewedPeer(address: net.hostAddress, skewMs: 3_600_000)
    defer { z.stop() }
    try pg.psql(
      "INSERT INTO cortex_node (name, epoch, state, lease_until, host, pid, workers, running, started_at, web_url, web_peer_token) "
        + "VALUES ('z', 1, 'alive', now() + interval '1 hour', 'other-host', 1, 1, 0, now(), 'http://\(net.hostAddress):\(z.port)/', 'peer')"
    )
    var answer: JSON?
    try a.eventually("node z's event among a's 3 newest of the cluster", timeoutS: 15) {
      answer = try api(a, "/api/events/recent?scope=cluster&limit=3").1
      return answer?["events"]?.array?.contains { $0["node"]?.string == "z" } == true
    }
    XCTAssertEqual(answer?["nodes"]?.array?.first { $0["node"]?.string == "z" }?["ok"]?.bool, true, answer?.encoded() ?? "")
    // Its line is as z wrote it (its own clock), only its place is this node's.
    let line = answer?["events"]?.array?.first { $0["node"]?.string == "z" }
    XCTAssertEqual(line?["task_id"]?.string, "task-000777")
  }
}

extension ClusterHostsTests {
  /// `cortex show` on a node cut off from the database, of a task it does not hold (another node
  /// ran it): it waited with no end, even after the link came back (the link answered every
  /// other request it could not run with an error, and dropped a `show`). Now 75 with the reason
  /// within the lease, and the record again once the link is back.
  func testShowOnACutOffNodeOfATaskItDoesNotHoldAnswersWithTheReason() throws {
    let a = try startNode("a", workers: 1, leaseS: 4, dsn: pg.tcpDSN)
    let id = a.ok(["submit", "-p", "--no-env", "--", "true"]).out.trimmed
    XCTAssertEqual(a.run(["wait", id], timeoutS: 30).code, 0)
    // b, on the other host, started after: it holds nothing of the task.
    let other = try startNode("b", workers: 1, leaseS: 4, dsn: pg.tcpDSN, launcher: net.launcher)
    XCTAssertTrue(other.ok(["show", id]).out.contains("node            a"))

    try net.cut()
    for when in ["just cut", "cut for a while"] {
      if when != "just cut" { sleepMs(3000) }
      let asked = Clock.monotonicMs()
      let r = other.run(["show", id], timeoutS: 20)
      XCTAssertEqual(r.code, 75, "\(when): \(r.out) \(r.err)")
      XCTAssertTrue(r.err.contains("cannot be read") && r.err.contains(id), "\(when): \(r.err)")
      XCTAssertLessThan(Clock.monotonicMs() - asked, 8000, "\(when): show waited too long")
    }
    try net.heal()
    other.eventually("show answers from the cluster's record again", timeoutS: 20) { other.run(["show", id]).code == 0 }
  }
}

extension ClusterHostsTests {
  /// The web view's task page and output of a task that ran on another node, while this node
  /// cannot read the database: 503 with the reason (they said 404, "not found", of a task that
  /// exists), and the record again once the database is back.
  func testTaskPageOfAnotherNodesTaskWhileTheDatabaseIsUnreachableIs503() throws {
    let b = try startNode("b", workers: 1, leaseS: 4, dsn: pg.tcpDSN, launcher: net.launcher)
    let id = b.ok(["submit", "-p", "--no-env", "--", "true"]).out.trimmed
    XCTAssertEqual(b.run(["wait", id], timeoutS: 30).code, 0)
    let a = try startNode("a", workers: 1, leaseS: 4, dsn: pg.tcpDSN)
    XCTAssertEqual(try api(a, "/api/tasks/\(id)").0, 200)
    pg.pause()
    for path in ["/api/tasks/\(id)", "/api/tasks/\(id)/output"] {
      let (status, answer) = try api(a, path)
      XCTAssertEqual(status, 503, "\(path): \(answer?.encoded() ?? "")")
      XCTAssertTrue(answer?["error"]?.string?.contains("cannot be read") == true, "\(path): \(answer?.encoded() ?? "")")
    }
    try pg.start()
    try a.eventually("A's page of \(id) again once PostgreSQL is back", timeoutS: 20) { try api(a, "/api/tasks/\(id)").0 == 200 }
  }
}

extension ClusterHostsTests {
  /// `cortex init --force --cluster DSN --node NEW` on a host whose node runs: the daemon
  /// re-reads config.json but keeps its cluster settings (read at start only). It said only
  /// "daemon reloaded config.json", as if the node were now NEW; now it says what stays.
  func testReInitWithAnotherNodeNameOnARunningNodeSaysItTakesAStop() throws {
    let b = try startNode("b", workers: 1, leaseS: 4, dsn: pg.tcpDSN, launcher: net.launcher)
    let r = b.run(["init", "--force", "--cluster", pg.tcpDSN, "--node", "b2", "--workers", "1"], timeoutS: 30)
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertTrue(r.err.contains("\"cluster\" is read at start only: this daemon stays node b until cortex stop"), r.err)
    XCTAssertEqual(sql("SELECT string_agg(name, ',') FROM cortex_node"), "b")
    // Stopped and started, it is node b2.
    b.ok(["stop"])
    b.ok(["start", "--workers", "1"])
    XCTAssertEqual(sql("SELECT string_agg(name || ' ' || state, ',' ORDER BY name) FROM cortex_node"), "b stopped,b2 alive")
  }
}
