import CortexCore
import Posix
import XCTest

/// The HTTP API as a script author meets it (docs/web.md's table): a wrong method, a bad
/// parameter or an unknown task gets the status that names it, in the documented error shape,
/// and what the API lists matches `cortex list`.
final class WebAPITests: XCTestCase {
  func started(_ c: Cortex) throws -> (RawHTTP, String) {
    try c.initialize([("workers", .int(2))])
    c.ok(["start"])
    guard let port = c.webPort else { throw HarnessError(message: "no web.url after start") }
    return (RawHTTP(port: port), "Authorization: Bearer \(c.webToken)")
  }

  /// Sends `raw` (one or more requests, the last with `Connection: close`) and reads until the
  /// server closes: every answer's bytes, as they came.
  func exchange(_ web: RawHTTP, _ raw: String) throws -> String {
    let fd = try TCPSocket.connect(address: "127.0.0.1", port: web.port)
    defer { fd.close() }
    try fd.writeAll(Array(raw.utf8))
    var buf: [UInt8] = []
    let deadline = Clock.monotonicMs() + 5000
    while Clock.monotonicMs() < deadline {
      guard fd.waitReadable(timeoutMs: 100) else { continue }
      if (try? fd.read(appendingTo: &buf, max: 1 << 16)) ?? 0 == 0 { return String(decoding: buf, as: UTF8.self) }
    }
    throw HarnessError(message: "the server did not close within 5 s: \(String(decoding: buf.prefix(500), as: UTF8.self))")
  }

  /// The error answer's fields: its status must be the HTTP status, and it must say something.
  func error(_ a: RawHTTP.Answer, file: StaticString = #filePath, line: UInt = #line) -> String {
    let j = try? JSON.parse(Array(a.body.utf8))
    XCTAssertEqual(j?["ok"]?.bool, false, a.body, file: file, line: line)
    XCTAssertEqual(j?["status"]?.int, Int64(a.status), "the error's status field: \(a.body)", file: file, line: line)
    return j?["error"]?.string ?? ""
  }

  /// A route asked with another method is 405 with `Allow` (it used to be 404 "no API endpoint",
  /// or 405 without `Allow`); an unknown path is 404 whatever the method.
  func testAWrongMethodIs405WithAllowAndAnUnknownPathIs404() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (web, auth) = try started(c)
    let id = c.ok(["submit", "--synthetic", "1:1"]).out.trimmed
    c.ok(["wait", id])
    let json = ["Content-Type: application/json", auth]
    let cases: [(String, String, String)] = [
      ("GET", "/api/scale", "POST"), ("GET", "/api/tasks/\(id)/cancel", "POST"), ("GET", "/api/tasks/\(id)/retry", "POST"),
      ("GET", "/api/tasks/\(id)/priority", "POST"), ("POST", "/api/status", "GET, HEAD"), ("POST", "/api/tasks", "GET, HEAD"),
      ("POST", "/api/tasks/\(id)", "GET, HEAD"), ("POST", "/api/tasks/\(id)/output", "GET, HEAD"), ("POST", "/api/events", "GET, HEAD"),
      ("POST", "/api/events/recent", "GET, HEAD"), ("POST", "/metrics", "GET, HEAD"), ("PUT", "/api/workers", "GET, HEAD"),
      ("DELETE", "/api/tasks/\(id)", "GET, HEAD"), ("OPTIONS", "/api/scale", "POST"), ("PATCH", "/", "GET, HEAD"),
    ]
    for (method, path, allow) in cases {
      let a = try web.send(
        "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(web.port)\r\nConnection: close\r\nContent-Length: 2\r\n"
          + json.map { $0 + "\r\n" }.joined() + "\r\n{}")
      XCTAssertEqual(a.status, 405, "\(method) \(path): \(a.body)")
      XCTAssertTrue(a.head.contains("\r\nAllow: \(allow)"), "\(method) \(path): \(a.head)")
      XCTAssertTrue(error(a).contains("\(method) not allowed on \(path)"), a.body)
    }
    for (method, path) in [("GET", "/api/nothing"), ("PUT", "/api/nothing"), ("POST", "/api/tasks/\(id)/bogus")] {
      let a = try web.send("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(web.port)\r\nConnection: close\r\n\(auth)\r\n\r\n")
      XCTAssertEqual(a.status, 404, "\(method) \(path): \(a.body)")
      XCTAssertFalse(error(a).isEmpty)
    }
    // Authentication still comes first: a wrong method without the token is 401.
    XCTAssertEqual(try web.get("/api/scale").status, 401)
    XCTAssertEqual(c.events().filter { $0.type == "pool.scaled" }.count, 0, "a refused request changed something")
  }

  /// The printed URL's redirect puts the path in `Location` encoded again: a `%0d%0a` in it used
  /// to become a CR LF in the answer's head (a header of the requester's choosing), and `//host`
  /// a redirect to another site.
  func testTheTokenRedirectKeepsThePathInsideItsHeader() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (web, _) = try started(c)
    let token = c.webToken
    let split = try web.get("/a%0d%0aX-Injected:%20yes?token=\(token)")
    XCTAssertEqual(split.status, 303, split.head)
    XCTAssertFalse(split.head.contains("\r\nX-Injected"), split.head)
    XCTAssertTrue(split.head.contains("\r\nLocation: /a%0D%0AX-Injected%3A%20yes\r\n"), split.head)
    let away = try web.get("//evil.example/tasks?token=\(token)&q=%E2%9C%93")
    XCTAssertTrue(away.head.contains("\r\nLocation: /evil.example/tasks?q=%E2%9C%93\r\n"), away.head)
    let page = try web.get("/tasks/task-000001?token=\(token)")
    XCTAssertTrue(page.head.contains("\r\nLocation: /tasks/task-000001\r\n"), page.head)
  }

  /// HEAD answers with the headers only, also where the answer comes later from the daemon
  /// (`/api/tasks/ID` sent its body after the headers), and `HEAD /api/events` does not become
  /// a stream (it did, and swallowed the next request): the next request on the connection is
  /// answered.
  func testAHeadAnswerHasNoBodyAndTheNextRequestIsAnswered() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (web, auth) = try started(c)
    let id = c.ok(["submit", "--synthetic", "1:1"]).out.trimmed
    c.ok(["wait", id])
    let host = "Host: 127.0.0.1:\(web.port)\r\n\(auth)\r\n"
    for path in ["/api/tasks/\(id)", "/api/events?since=0", "/api/status"] {
      let all = try exchange(web, "HEAD \(path) HTTP/1.1\r\n\(host)\r\nGET /api/workers HTTP/1.1\r\n\(host)Connection: close\r\n\r\n")
      let answers = all.components(separatedBy: "HTTP/1.1 ")
      XCTAssertEqual(answers.count, 3, "two answers to HEAD \(path) then GET: \(all.prefix(1500))")
      XCTAssertTrue(answers.dropFirst().first?.hasPrefix("200 OK") ?? false, all)
      XCTAssertTrue(answers.dropFirst().first?.hasSuffix("\r\n\r\n") ?? false, "HEAD \(path) sent a body: \(all.prefix(1500))")
      XCTAssertTrue(answers.last?.contains(#""workers":["#) ?? false, "the GET after HEAD \(path) was not answered: \(all.prefix(1500))")
    }
  }

  /// A parameter that is not what it takes is 400 naming it (they used to fall back to a default
  /// or be ignored: `limit=abc` gave 200 events, `since=abc` replayed nothing, `task=task-abc` on
  /// the recent events an empty list where the stream said 400, `offset=-1` read from 0, `label=`
  /// with no key before its `=` matched nothing, as if no task had it).
  func testABadQueryParameterIs400NamingIt() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (web, auth) = try started(c)
    let id = c.ok(["submit", "--shell", "echo hello"]).out.trimmed
    c.ok(["wait", id])
    let bad = [
      ("/api/events/recent?limit=0", "limit: '0'"), ("/api/events/recent?limit=abc", "limit: 'abc'"),
      ("/api/events/recent?limit=5001", "limit: '5001'"), ("/api/events/recent?after=abc", "after: 'abc'"),
      ("/api/events/recent?after=-1", "after: '-1'"), ("/api/events/recent?task=task-abc", "task: 'task-abc'"),
      ("/api/events?since=abc", "since: 'abc'"), ("/api/events?status=yes", "status: 'yes'"), ("/api/events?batch=true", "batch: 'true'"),
      ("/api/events?newest=0", "newest: '0'"), ("/api/tasks?limit=0", "limit: '0'"), ("/api/tasks?offset=-1", "offset: '-1'"),
      ("/api/tasks?label=%3Dred", "label: '=red' has no key"),
      ("/api/tasks/\(id)/output?offset=-1", "offset: '-1'"), ("/api/tasks/\(id)/output?offset=abc", "offset: 'abc'"),
    ]
    for (path, says) in bad {
      let a = try web.get(path, headers: [auth])
      XCTAssertEqual(a.status, 400, "\(path): \(a.body)")
      XCTAssertTrue(error(a).contains(says), "\(path): \(a.body)")
    }
    // Good values still answer.
    let recent = try web.get("/api/events/recent?limit=5000&after=0&task=\(id)", headers: [auth])
    XCTAssertEqual(recent.status, 200, recent.body)
    XCTAssertTrue(recent.body.contains(#""type":"task.succeeded""#), recent.body)
    let out = try web.get("/api/tasks/\(id)/output?offset=2", headers: [auth])
    XCTAssertEqual(out.status, 200, out.body)
    XCTAssertTrue(out.body.contains(#""text":"llo\n""#), out.body)
  }

  /// An unknown task is 404 on every task endpoint, as `cortex show`/`log`/`cancel` fail for it
  /// (the output was 200 and empty, a cancel 200 with `results` saying "unknown task", a retry
  /// 400, a priority edit 409), and every refusal the daemon gives carries `status`.
  func testAnUnknownTaskIs404AndEveryRefusalCarriesItsStatus() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (web, auth) = try started(c)
    let done = c.ok(["submit", "--synthetic", "1:1"]).out.trimmed
    c.ok(["wait", done])
    let ghost = "task-099999"
    c.ok(["log", ghost], code: 65)
    let output = try web.get("/api/tasks/\(ghost)/output", headers: [auth])
    XCTAssertEqual(output.status, 404, output.body)
    XCTAssertTrue(error(output).contains("unknown task"), output.body)
    for action in ["cancel", "retry", "priority"] {
      let a = try web.post("/api/tasks/\(ghost)/\(action)", body: action == "priority" ? #"{"priority":"low"}"# : "{}", headers: [auth])
      XCTAssertEqual(a.status, 404, "\(action): \(a.body)")
      XCTAssertTrue(error(a).contains("unknown task \(ghost)"), "\(action): \(a.body)")
    }
    // A known task with no output yet answers the documented fields, empty.
    let long = c.ok(["submit", "--synthetic", "60000:1"]).out.trimmed
    let queued = c.ok(["submit", "--synthetic", "1:1", "--after", long]).out.trimmed
    let empty = try web.get("/api/tasks/\(queued)/output", headers: [auth])
    XCTAssertEqual(empty.status, 200, empty.body)
    let e = try JSON.parse(Array(empty.body.utf8))
    XCTAssertEqual(e["next_offset"]?.int, 0, empty.body)
    XCTAssertEqual(e["size"]?.int, 0, empty.body)
    // The daemon's refusals keep its fields and add `status`: 409 for a state that does not allow
    // the action, 400 for a bad value (which it names).
    let edit = try web.post("/api/tasks/\(done)/priority", body: #"{"priority":"low"}"#, headers: [auth])
    XCTAssertEqual(edit.status, 409, edit.body)
    XCTAssertTrue(error(edit).contains("succeeded"), edit.body)
    let scale = try web.post("/api/scale", body: #"{"workers":"5"}"#, headers: [auth])
    XCTAssertEqual(scale.status, 400, scale.body)
    XCTAssertTrue(error(scale).contains("workers"), scale.body)
    let prio = try web.post("/api/tasks/\(queued)/priority", body: #"{"priority":"urgent"}"#, headers: [auth])
    XCTAssertEqual(prio.status, 400, prio.body)
    XCTAssertTrue(error(prio).contains("urgent"), "the refusal names the value: \(prio.body)")
    // A body with a field the action does not take, or that is not JSON, is refused naming why
    // (an extra field used to be dropped without a word, and a parse error not said).
    let bodies = [
      ("/api/scale", #"{"workers":3,"worker":4}"#, "worker: unknown field"),
      ("/api/tasks/\(done)/cancel", #"{"force":true}"#, "force"),
      ("/api/tasks/\(queued)/priority", #"{"priority":"low","group":"x"}"#, "group"),
      ("/api/scale", #"{"workers":"#, "invalid JSON at byte"), ("/api/scale", "[3]", "not [3]"),
    ]
    for (path, body, says) in bodies {
      let a = try web.post(path, body: body, headers: [auth])
      XCTAssertEqual(a.status, 400, "\(path) \(body): \(a.body)")
      XCTAssertTrue(error(a).contains(says), "\(path) \(body): \(a.body)")
    }
    XCTAssertFalse(c.events().contains { $0.type == "pool.scaled" || $0.type == "task.edited" }, "a refused request changed something")
  }

  /// The task list names a task's type as `cortex list` does (`exec`, `synthetic`, or the
  /// spec's), and `?type=` filters by it: it used to leave the type out and find nothing.
  func testTheTaskListNamesTypesAsCortexListDoes() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (web, auth) = try started(c)
    let shell = c.ok(["submit", "--shell", "true"]).out.trimmed
    let synthetic = c.ok(["submit", "--synthetic", "1:1"]).out.trimmed
    c.ok(["wait", shell, synthetic])
    for type in ["exec", "synthetic"] {
      let cli = c.ok(["--json", "list", "--type", type]).out
      let want = (try JSON.parse(Array(cli.utf8))).array?.compactMap { $0["id"]?.string } ?? []
      let a = try web.get("/api/tasks?type=\(type)", headers: [auth])
      XCTAssertEqual(a.status, 200, a.body)
      let rows = (try JSON.parse(Array(a.body.utf8)))["tasks"]?.array ?? []
      XCTAssertEqual(rows.compactMap { $0["id"]?.string }.sorted(), want.sorted(), "type=\(type): \(a.body)")
      XCTAssertEqual(rows.compactMap { $0["type"]?.string }, Array(repeating: type, count: want.count), a.body)
    }
  }

  /// A task held by its dependencies: `/api/tasks/ID` names them with their states, as `cortex
  /// show --json` does (the task page draws it), and says none of its attempts has begun.
  func testATaskHeldByItsDependenciesNamesThemInTheAPI() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (web, auth) = try started(c)
    let first = c.ok(["submit", "--no-env", "--", "sleep", "30"]).out.trimmed
    let held = c.ok(["submit", "--no-env", "--after", first, "--", "true"]).out.trimmed
    c.eventually("\(first) to run") { c.ok(["--json", "show", first]).out.contains(#""state":"running""#) }
    let a = try web.get("/api/tasks/\(held)", headers: [auth])
    XCTAssertEqual(a.status, 200, a.body)
    let t = (try JSON.parse(Array(a.body.utf8)))["task"]
    XCTAssertEqual(t?["waiting"]?.string, "dependencies", a.body)
    XCTAssertEqual(t?["waiting_on"]?.array?.map { [$0["id"]?.string, $0["state"]?.string] }, [[first, "running"]], a.body)
    XCTAssertEqual(t?["not_started"]?.bool, true, a.body)
    c.ok(["cancel", first])
  }

  /// After a scale-down the slots of the larger pool stay in the hot state as `stopped`:
  /// `/api/workers` and the overview's grid listed them, where `cortex workers` does not.
  func testWorkersAfterAScaleDownAreThePoolsAsCortexWorkersShowsThem() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (web, auth) = try started(c)
    c.ok(["scale", "5"])
    c.eventually("5 idle workers") { c.ok(["status"]).out.contains("5 idle") }
    c.ok(["scale", "2"])
    // The whole line: while worker-005 still exits it reads "2 in the pool: 2 idle, 1 stopping".
    c.eventually("the pool back to 2, nothing stopping") {
      c.ok(["status"]).out.split(separator: "\n").contains { $0.hasSuffix("2 in the pool: 2 idle") }
    }
    let cli = (try JSON.parse(Array(c.ok(["--json", "workers"]).out.utf8)))
    let cliCount = (cli["workers"]?.array ?? cli.array ?? []).count
    let rows = (try JSON.parse(Array(try web.get("/api/workers", headers: [auth]).body.utf8)))["workers"]?.array ?? []
    XCTAssertEqual(rows.count, 2, "\(rows)")
    XCTAssertEqual(rows.count, cliCount)
    let status = try JSON.parse(Array(try web.get("/api/status", headers: [auth]).body.utf8))
    XCTAssertEqual(status["workers"]?["states"]?.string, "ii")
    // `cortex --json status` counted the three stopped slots as the pool's ({"idle":2,"stopped":3}).
    let cliStatus = try JSON.parse(Array(c.ok(["--json", "status"]).out.utf8))
    XCTAssertEqual(cliStatus["workers"]?.encoded(), #"{"idle":2}"#)
  }

  /// `/api/status` answers while a long queue drains. The daemon rewrites hot-state.mmap at every
  /// batch of events, and with thousands queued a write holds its seqlock for milliseconds (10–20
  /// in a debug build); the web view's reader gave up after 5 × 200 attempts that each found the
  /// seqlock odd, well under a millisecond in all, so most answers were 503 "hot-state.mmap
  /// cannot be read yet" and the overview stood still. It now waits for the write to end.
  func testStatusAnswersWhileALongQueueDrains() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(4)), ("max_queue", .int(20_000)), ("max_queue_wait_s", .int(2_592_000))])
    c.ok(["start"])
    let web = RawHTTP(port: try XCTUnwrap(c.webPort))
    let auth = "Authorization: Bearer \(c.webToken)"
    let batch = (0..<12_000).map { _ in #"{"synthetic":{"duration_ms":10,"tokens":1}}"# }.joined(separator: "\n")
    let path = c.scratch + "/batch.jsonl"
    try FileSystem.writeAtomically(path, Array(batch.utf8), durable: false)
    c.ok(["submit", "--from", path], timeoutS: 120)
    var failures: [String] = []
    // The first request after a quiet spell reads the log it missed (the 12,000 submits) before
    // it answers: on a loaded machine, at the web thread's nice 10, that took more than the 5 s a
    // request gets below ("no whole answer within 5000 ms"), which is not what this test is about.
    let first = try web.get("/api/status", headers: [auth], timeoutMs: 120_000)
    if first.status != 200 { failures.append("\(first.status) \(first.body.prefix(120))") }
    for _ in 0..<100 {
      let a = try web.get("/api/status", headers: [auth])
      if a.status != 200 { failures.append("\(a.status) \(a.body.prefix(120))") }
    }
    let queued = try JSON.parse(Array(try web.get("/api/status", headers: [auth]).body.utf8))["counts"]?["queued"]?.int ?? 0
    XCTAssertGreaterThan(queued, 5000, "the queue drained before the requests were made; the test checked nothing")
    XCTAssertEqual(failures, [], "\(failures.count) of 101 status requests failed while \(queued) tasks were queued")
  }

  /// A task's output read as the page reads it (64 KiB at a time from `next_offset`) is the
  /// output: a character cut by the 64 KiB bound is sent whole in the next read. Each half was
  /// decoded on its own, and the page showed `��` for an `é` that sat on the bound.
  func testOutputReadInPiecesKeepsCharactersWhole() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (web, auth) = try started(c)
    // 65,535 bytes of `a`, then `é` (2 bytes: the 64 KiB bound falls between them) and `✓`.
    let id = c.ok(["submit", "-p", "--shell", "head -c 65535 /dev/zero | tr '\\0' a; printf '\\303\\251\\342\\234\\223 done\\n'"]).out
      .trimmed
    c.ok(["wait", id])
    var text = "", offset = 0, reads = 0
    while reads < 10 {
      reads += 1
      let a = try web.get("/api/tasks/\(id)/output?offset=\(offset)", headers: [auth])
      XCTAssertEqual(a.status, 200, a.body)
      let j = try JSON.parse(Array(a.body.utf8))
      text += j["text"]?.string ?? ""
      offset = Int(j["next_offset"]?.int ?? 0)
      if offset >= Int(j["size"]?.int ?? 0) { break }
    }
    XCTAssertEqual(offset, 65535 + 2 + 3 + 6, "the reads did not reach the output's end in \(reads)")
    XCTAssertFalse(text.contains("\u{FFFD}"), "a character was cut: \(text.suffix(20).debugDescription)")
    XCTAssertEqual(String(text.suffix(8)), "é✓ done\n")
    XCTAssertEqual(text.utf8.count, 65535 + 11)
  }
}
