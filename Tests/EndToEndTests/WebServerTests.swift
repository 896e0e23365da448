import CortexCore
import Posix
import XCTest

/// The web server against hostile and broken clients, and its authentication (SPEC §12).
final class WebServerTests: XCTestCase {
  func started(_ c: Cortex, workers: Int = 2) throws -> RawHTTP {
    try c.initialize([("workers", .int(Int64(workers))), ("max_queue", .int(10_000))])
    c.ok(["start"])
    guard let port = c.webPort else { throw HarnessError(message: "no web.url after start") }
    return RawHTTP(port: port)
  }

  func testAuthenticationCookieOriginAndNoSecrets() throws {
    let c = try Cortex()
    defer { c.finish() }
    let web = try started(c)
    let token = c.webToken
    XCTAssertEqual(token.count, 48)
    XCTAssertEqual(FileSystem.permissions(c.root + "/web.token"), 0o600)

    // No token: 401, for the API and for pages.
    XCTAssertEqual(try web.get("/api/status").status, 401)
    XCTAssertEqual(try web.get("/").status, 401)
    XCTAssertEqual(try web.get("/metrics").status, 401)
    XCTAssertEqual(try web.get("/api/status", headers: ["Authorization: Bearer wrong"]).status, 401)
    XCTAssertEqual(try web.get("/api/status", headers: ["Cookie: cortex_\(web.port)=wrong"]).status, 401)
    // The printed URL's token becomes an HttpOnly, SameSite=Strict cookie and leaves the address.
    let login = try web.get("/tasks?token=\(token)")
    XCTAssertEqual(login.status, 303)
    XCTAssertTrue(login.head.contains("Location: /tasks\r\n"), login.head)
    // The rest of the printed link's query stays (a link to a filtered events page).
    let filtered = try web.get("/events?type=task.succeeded&token=\(token)&task=task-000001")
    XCTAssertTrue(filtered.head.contains("Location: /events?type=task.succeeded&task=task-000001\r\n"), filtered.head)
    XCTAssertTrue(login.head.contains("Set-Cookie: cortex_\(web.port)=\(token); Path=/; HttpOnly; SameSite=Strict"), login.head)
    let cookie = "Cookie: cortex_\(web.port)=\(token)"
    XCTAssertEqual(try web.get("/", headers: [cookie]).status, 200)
    XCTAssertEqual(try web.get("/api/status", headers: ["Authorization: Bearer \(token)"]).status, 200)
    // Another Host (DNS rebinding) is refused.
    XCTAssertEqual(try web.send("GET /api/status HTTP/1.1\r\nHost: evil.example:\(web.port)\r\n\(cookie)\r\n\r\n").status, 403)

    // State-changing requests: cookie + a foreign Origin, or cookie and no Origin, are refused.
    let scale = #"{"workers": 3}"#
    XCTAssertEqual(try web.post("/api/scale", body: scale, headers: [cookie, "Origin: http://evil.example"]).status, 403)
    XCTAssertEqual(try web.post("/api/scale", body: scale, headers: [cookie]).status, 403)
    XCTAssertEqual(try web.post("/api/scale", body: scale, headers: []).status, 401)
    XCTAssertEqual(
      try web.post("/api/scale", body: scale, headers: ["Authorization: Bearer \(token)", "Origin: http://evil.example"]).status, 403)
    XCTAssertEqual(c.events().filter { $0.type == "pool.scaled" }.count, 0, "a refused request changed something")
    let ok = try web.post("/api/scale", body: scale, headers: [cookie, "Origin: http://127.0.0.1:\(web.port)"])
    XCTAssertEqual(ok.status, 200, ok.body)
    XCTAssertEqual(c.events().filter { $0.type == "pool.scaled" }.last?["reason"]?.string, "requested")
    let bad = try web.post("/api/scale", body: #"{"workers": 0}"#, headers: ["Authorization: Bearer \(token)"])
    XCTAssertEqual(bad.status, 400)
    XCTAssertTrue(bad.body.contains("workers"), bad.body)

    // No secret in any answer: a redacted env value, and the token itself.
    // It exits 3 only when it has the secret, 19 bytes (so the retry below shows the daemon passed it on).
    let id = c.ok([
      "submit", "--env", "API_TOKEN=hunter2-very-secret", "--shell", #"[ "${#API_TOKEN}" = 19 ] && exit 3; exit 1"#,
    ])
    .out.trimmed
    c.ok(["wait", id], code: 3)
    c.eventually("the web view to see \(id) finish") {
      (try? web.get("/api/tasks/\(id)", headers: [cookie]).body.contains("\"failed\"")) ?? false
    }
    for path in ["/api/tasks/\(id)", "/api/tasks?q=task", "/api/events/recent?limit=500", "/api/status", "/metrics", "/", "/static/app.js"]
    {
      let a = try web.get(path, headers: [cookie])
      XCTAssertEqual(a.status, 200, path)
      XCTAssertFalse(a.body.contains("hunter2"), "\(path) shows a secret")
      XCTAssertFalse(a.body.contains(token), "\(path) shows the token")
    }
    // Retry is the daemon's `retry` (as `cortex retry`): the new task keeps its secret, which the
    // daemon holds and the answer does not show.
    let retry = try web.post("/api/tasks/\(id)/retry", body: "{}", headers: ["Authorization: Bearer \(token)"])
    XCTAssertEqual(retry.status, 200, retry.body)
    XCTAssertFalse(retry.body.contains("hunter2"), retry.body)
    let again = (try? JSON.parse(Array(retry.body.utf8)))?["ids"]?.array?.first?.string ?? "?"
    let shown = try? JSON.parse(Array(c.ok(["--json", "show", again]).out.utf8))
    XCTAssertEqual(shown?["retry_of"]?.string, id)
    c.ok(["wait", again], code: 3)
    // An unfinished task cannot be retried: a conflict, not a server error.
    let running = c.ok(["submit", "--synthetic", "60000:1"]).out.trimmed
    let early = try web.post("/api/tasks/\(running)/retry", body: "{}", headers: ["Authorization: Bearer \(token)"])
    XCTAssertEqual(early.status, 409, early.body)

    // /metrics: real counters (the task and its retry failed) and histograms, no per-task labels.
    let m = try web.get("/metrics", headers: [cookie]).body
    XCTAssertTrue(m.contains("cortex_tasks_finished_total{outcome=\"failed\"} 2"), m)
    for h in ["cortex_task_queue_wait_seconds", "cortex_task_run_seconds", "cortex_log_fsync_seconds"] {
      XCTAssertTrue(m.contains("# TYPE \(h) histogram") && m.contains("\(h)_bucket{le=\"+Inf\"}"), "no histogram \(h)")
    }
    XCTAssertFalse(m.contains("task-0"), "a metric is labelled with a task")
  }

  /// With nobody connected the web thread sleeps: 2,000 tasks cost it no CPU time at all (it used
  /// to read and parse every log line anyway). The first request then reads what it missed before
  /// answering, so the answer is current.
  func testTheWebViewCostsNothingWhileNobodyLooks() throws {
    let c = try Cortex()
    defer { c.finish() }
    let web = try started(c, workers: 4)
    let batch = (0..<2000).map { _ in #"{"synthetic":{"duration_ms":0}}"# }.joined(separator: "\n")
    let path = c.scratch + "/batch.jsonl"
    try FileSystem.writeAtomically(path, Array(batch.utf8), durable: false)
    let ids = c.ok(["submit", "--from", path]).out.split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, 2000)
    c.ok(["wait"] + ids)
    let pid = try XCTUnwrap(c.daemonPID)
    XCTAssertEqual(try Self.cpuTicks(pid: pid, thread: "cortex-web"), 0, "the web thread ran with nobody connected")
    let a = try web.get("/api/tasks?state=succeeded&limit=1", headers: ["Authorization: Bearer \(c.webToken)"])
    XCTAssertEqual(a.status, 200, a.body)
    XCTAssertTrue(a.body.contains(#""total":2000"#), String(a.body.prefix(300)))
  }

  /// utime + stime of the daemon's thread named `thread` (/proc/PID/task/TID/stat), in clock ticks.
  static func cpuTicks(pid: Int32, thread: String) throws -> Int {
    let f = try threadStat(pid: pid, thread: thread)
    return (Int(f[11]) ?? -1) + (Int(f[12]) ?? -1)
  }

  /// The fields of /proc/PID/task/TID/stat after the name, for the daemon's thread named `thread`
  /// (the state is [0], utime [11], stime [12], nice [16]).
  static func threadStat(pid: Int32, thread: String) throws -> [Substring] {
    for tid in try FileSystem.list("/proc/\(pid)/task") {
      let stat = String(decoding: (try FileSystem.read("/proc/\(pid)/task/\(tid)/stat")) ?? [], as: UTF8.self)
      guard let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")"),
        stat[stat.index(after: open)..<close] == thread
      else { continue }
      return stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
    }
    throw HarnessError(message: "no thread named \(thread) in daemon \(pid)")
  }

  func testMalformedOversizedTraversalIdleAndStuckClients() throws {
    let c = try Cortex()
    defer { c.finish() }
    let web = try started(c)
    let auth = "Authorization: Bearer \(c.webToken)"

    // Malformed and oversized requests: answered with the right status and closed.
    let cases: [(String, Int)] = [
      ("NONSENSE\r\n\r\n", 400),
      ("GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505),
      ("GET / HTTP/1.1\r\nHost: 127.0.0.1:\(web.port)\r\nX: " + String(repeating: "a", count: 40_000) + "\r\n\r\n", 431),
      ("POST /api/scale HTTP/1.1\r\nHost: 127.0.0.1:\(web.port)\r\nContent-Length: 10000000\r\n\r\n", 413),
      ("POST /api/scale HTTP/1.1\r\nHost: 127.0.0.1:\(web.port)\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
    ]
    for (raw, status) in cases {
      let a = try web.send(raw)
      XCTAssertEqual(a.status, status, "\(raw.prefix(50)): \(a.head)")
      XCTAssertTrue(a.closed, "\(raw.prefix(50)): connection kept open after an error")
    }
    // Path traversal: nothing outside what the server builds is ever read.
    for path in [
      "/static/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/api/tasks/..%2f..%2f..%2fetc%2fpasswd/output",
      "/static/%2e%2e%2fapp.js", "//etc/passwd",
    ] {
      let a = try web.get(path, headers: [auth])
      XCTAssertNotEqual(a.status, 200, path)
      XCTAssertFalse(a.body.contains("root:"), "\(path) served /etc/passwd")
    }

    // Odd API input: a clear 4xx naming the problem, or an answer; never a crash.
    let odd: [(String, Int)] = [
      ("/api/tasks?label==", 400), ("/api/tasks?label=", 200), ("/api/tasks?limit=0", 400), ("/api/tasks?offset=-1", 400),
      ("/api/tasks?state=bogus", 400), ("/api/tasks?priority=urgent", 400), ("/api/tasks/task-999999", 404),
      ("/api/tasks/nonsense", 404), ("/api/tasks/task-000001/output?offset=-5", 400), ("/api/events/recent?limit=abc", 400),
      ("/api/events?task=bogus", 400), ("/api/nothing", 404),
    ]
    for (path, status) in odd {
      let a = try web.get(path, headers: [auth])
      XCTAssertEqual(a.status, status, "\(path): \(a.body)")
      if status >= 400 { XCTAssertTrue(a.body.contains("\"error\""), "\(path): no error message") }
    }
    // A page that does not exist is a page (a person typed it), with the path escaped; the API's are JSON.
    let page = try web.get("/nothing%3Cb%3Ebold", headers: [auth])
    XCTAssertEqual(page.status, 404)
    XCTAssertTrue(page.head.lowercased().contains("content-type: text/html"), page.head)
    XCTAssertTrue(page.body.contains("No page /nothing") && page.body.contains("href=\"/\""), page.body)
    XCTAssertFalse(page.body.contains("<b>"), page.body)
    XCTAssertEqual(try web.send("DELETE /api/scale HTTP/1.1\r\nHost: 127.0.0.1:\(web.port)\r\n\(auth)\r\n\r\n").status, 405)

    // Keep-alive: two requests on one connection.
    let fd = try TCPSocket.connect(address: "127.0.0.1", port: web.port)
    let one = "GET /api/status HTTP/1.1\r\nHost: 127.0.0.1:\(web.port)\r\n\(auth)\r\n\r\n"
    for _ in 0..<2 {
      try fd.writeAll(one)
      XCTAssertEqual(try RawHTTP.read(fd, timeoutMs: 5000).status, 200)
    }
    fd.close()

    // 2,000 idle connections, and a client that never reads an event stream while 2,000 tasks
    // run: the daemon keeps acknowledging, a new client is still served, and nothing is lost.
    _ = Processes.raiseOpenFileLimit(8192)
    var idle: [FileDescriptor] = []
    defer { for f in idle { f.close() } }
    for _ in 0..<2000 { idle.append(try TCPSocket.connect(address: "127.0.0.1", port: web.port)) }
    let stuck = try TCPSocket.connect(address: "127.0.0.1", port: web.port)
    defer { stuck.close() }
    try stuck.writeAll("GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:\(web.port)\r\n\(auth)\r\n\r\n")
    let begin = Clock.monotonicMs()
    let fresh = try web.get("/api/status", headers: [auth])
    XCTAssertEqual(fresh.status, 200)
    XCTAssertLessThan(Clock.monotonicMs() - begin, 2000, "a new client waited behind 2,000 idle ones")
    let batch = (0..<2000).map { _ in #"{"synthetic":{"duration_ms":0}}"# }.joined(separator: "\n")
    try FileSystem.writeAtomically(c.scratch + "/batch.jsonl", Array(batch.utf8), durable: false)
    let submitBegin = Clock.monotonicMs()
    c.ok(["submit", "--from", c.scratch + "/batch.jsonl"])
    XCTAssertLessThan(Clock.monotonicMs() - submitBegin, 10_000, "the daemon was slow to acknowledge")
    c.eventually("2,000 tasks done", timeoutS: 60) {
      c.events().filter { $0.type == "task.succeeded" }.count == 2000
    }
    let after = try web.get("/api/tasks?state=succeeded&limit=1", headers: [auth])
    XCTAssertEqual(after.status, 200)
    c.eventually("the web view to count 2,000 succeeded") {
      (try? web.get("/api/tasks?state=succeeded&limit=1", headers: [auth]).body.contains("\"total\":2000")) ?? false
    }
    XCTAssertEqual(c.ok(["status"]).code, 0)
  }

  /// The task search compared up to the whole query at every byte of every task's text: an
  /// 8 KB `q` against five tasks with 60 KB descriptions held the web thread 28 s (debug build).
  func testALongSearchAgainstLongDescriptionsAnswersAtOnce() throws {
    let c = try Cortex()
    defer { c.finish() }
    let web = try started(c, workers: 1)
    let auth = "Authorization: Bearer \(c.webToken)"
    let long = JSON.string(String(repeating: "a", count: 60_000))
    let spec = JSON.object([("synthetic", .object([("duration_ms", .int(1))])), ("description", long)])
    let tasks = JSON.array(Array(repeating: spec, count: 5))
    let reply = try c.rawRequest(JSON.object([("op", .string("submit")), ("tasks", tasks)]).encoded())
    XCTAssertEqual(reply["ok"]?.bool, true, reply.encoded())
    c.eventually("the web view knows the five tasks") {
      (try? web.get("/api/tasks?q=aaaa", headers: [auth]))?.body.contains(#""total":5"#) == true
    }
    let miss = try web.get("/api/tasks?q=" + String(repeating: "a", count: 8000) + "b", headers: [auth])
    XCTAssertEqual(miss.status, 200, miss.body)
    XCTAssertTrue(miss.body.contains(#""total":0"#), miss.body)
    let hit = try web.get("/api/tasks?q=" + String(repeating: "a", count: 8000), headers: [auth])
    XCTAssertTrue(hit.body.contains(#""total":5"#), String(hit.body.prefix(200)))
  }

  /// The events API's `type` filter is a short list: thousands of comma-separated types (each once
  /// compared with every event, per request and per tick of a stream) are refused with 400 naming
  /// the limit, at once; a list at the limit answers with exactly the matching events.
  func testAHugeEventTypeListIsRefusedAtOnceNamingTheLimit() throws {
    let c = try Cortex()
    defer { c.finish() }
    let web = try started(c)
    let auth = "Authorization: Bearer \(c.webToken)"
    let id = c.ok(["submit", "--wait", "-p", "--synthetic", "0"]).out.trimmed
    c.eventually("the web view to see \(id) succeed") {
      (try? web.get("/api/events/recent?type=task.succeeded", headers: [auth]).body.contains(id)) ?? false
    }
    let huge = (0..<2000).map { "x.t\($0)" }.joined(separator: ",")
    for path in ["/api/events/recent?type=", "/api/events?type=", "/api/events/recent?scope=cluster&type="] {
      let start = Clock.monotonicMs()
      let a = try web.get(path + huge, headers: [auth])
      XCTAssertEqual(a.status, 400, "\(path): \(a.body)")
      XCTAssertTrue(a.body.contains("type") && a.body.contains("2000") && a.body.contains("64"), "\(path): \(a.body)")
      XCTAssertLessThan(Clock.monotonicMs() - start, 2000, path)
    }
    // 64 types, one of them real: only its events; a prefix among 63 others works too.
    let filler = (1..<64).map { "x.t\($0)" }.joined(separator: ",")
    for type in ["task.succeeded", "task."] {
      let a = try web.get("/api/events/recent?limit=5000&type=\(filler),\(type)", headers: [auth])
      XCTAssertEqual(a.status, 200, a.body)
      let events = try XCTUnwrap(JSON.parse(Array(a.body.utf8))["events"]?.array)
      let types = Set(events.compactMap { $0["type"]?.string })
      XCTAssertTrue(types.contains("task.succeeded"), "\(type): \(types)")
      XCTAssertTrue(types.allSatisfy { type.hasSuffix(".") ? $0.hasPrefix(type) : $0 == type }, "\(type): \(types)")
    }
    XCTAssertTrue(c.daemonPID.map(Processes.isAlive) ?? false)
  }

  /// `cortex restart` execs a new daemon, whose web view has a new token and (with `port` 0) a
  /// new port: every open page is signed out. It said only "restarted in place", so nobody knew
  /// where the dashboard had gone; it now prints the new address with its token, as start does.
  func testRestartPrintsTheNewDashboardAddress() throws {
    let c = try Cortex()
    defer { c.finish() }
    _ = try started(c)
    let oldToken = c.webToken
    let r = c.ok(["restart"])
    let line = r.err.split(separator: "\n").first { $0.hasPrefix("cortex: dashboard at ") }.map(String.init)
    let url = try XCTUnwrap(line, "cortex restart printed no dashboard address: \(r.err)").split(separator: " ").last.map(String.init) ?? ""
    let port = try XCTUnwrap(c.webPort)
    XCTAssertNotEqual(c.webToken, oldToken, "the restarted daemon kept the token; the test checks nothing")
    XCTAssertEqual(url, "http://127.0.0.1:\(port)/?token=\(c.webToken)")
    // The printed address signs in to the new daemon; the old one's token is refused there.
    let web = RawHTTP(port: port)
    let login = try web.get("/?token=\(c.webToken)")
    XCTAssertEqual(login.status, 303, login.head)
    XCTAssertTrue(login.head.contains("Set-Cookie: cortex_\(port)=\(c.webToken);"), login.head)
    XCTAssertEqual(try web.get("/api/status", headers: ["Authorization: Bearer \(oldToken)"]).status, 401)
    let json = try JSON.parse(Array(c.ok(["--json", "restart"]).out.utf8))
    XCTAssertEqual(json["web_url"]?.string, "http://127.0.0.1:\(try XCTUnwrap(c.webPort))/?token=\(c.webToken)")
  }
}
