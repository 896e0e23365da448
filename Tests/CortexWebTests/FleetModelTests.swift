import CortexCore
import Posix
import XCTest

@testable import CortexWeb

/// The web view's projection of the decision log, fed lines as the daemon writes them.
final class FleetModelTests: XCTestCase {
  func line(_ seq: Int, _ ms: Int64, _ type: String, task: Int? = nil, worker: Int? = nil, _ extra: String = "") -> ArraySlice<UInt8> {
    logLine(seq, ms, type, task: task, worker: worker, extra)
  }

  func testTasksHistoryCountersAndQueries() {
    let m = FleetModel()
    let t0: Int64 = 1_800_000_000_000
    m.apply(
      line: line(
        1, t0, "task.submitted", task: 1,
        #","priority":"high","token_budget":100,"spec":{"type":"review","description":"Check auth.py","labels":{"team":"infra"}}"#))
    m.apply(line: line(2, t0, "task.submitted", task: 2, #","priority":"low","spec":{"shell":"make test"}"#))
    m.apply(line: line(3, t0 + 10, "task.assigned", task: 1, worker: 3))
    m.apply(line: line(4, t0 + 20, "task.started", task: 1, worker: 3))
    m.apply(line: line(5, t0 + 520, "task.failed", task: 1, worker: 3, #","reason":"exit_code","exit_code":2,"tokens_used":40"#))
    m.apply(line: line(6, t0 + 600, "task.cancelled", task: 2, #","reason":"cancelled""#))
    XCTAssertNil(m.apply(line: Array("not json".utf8)[...]))

    let one = m.task(1)!
    XCTAssertEqual(one.state, .failed)
    XCTAssertEqual(one.title, "Check auth.py")
    XCTAssertEqual(one.type, "review")
    XCTAssertEqual(one.exitCode, 2)
    XCTAssertEqual(one.tokensUsed, 40)
    XCTAssertEqual(one.history.map(\.type), ["task.submitted", "task.assigned", "task.started", "task.failed"])
    XCTAssertEqual(m.task(2)?.title, "make test")
    XCTAssertEqual(m.lastSeq, 6)

    XCTAssertEqual(m.metrics.finishedTotal["failed"], 1)
    XCTAssertEqual(m.metrics.finishedTotal["cancelled"], 1)
    XCTAssertEqual(m.metrics.queueWait.count, 1)
    XCTAssertEqual(m.metrics.run.count, 1)
    XCTAssertEqual(m.metrics.run.sum, 0.5, accuracy: 1e-9)

    var q = FleetModel.TaskQuery()
    XCTAssertEqual(m.query(q).rows.map(\.number), [2, 1], "newest first")
    q.state = "failed"
    XCTAssertEqual(m.query(q).rows.map(\.number), [1])
    q = FleetModel.TaskQuery()
    q.label = ("team", "infra")
    XCTAssertEqual(m.query(q).total, 1)
    q = FleetModel.TaskQuery()
    q.text = "AUTH.PY"
    XCTAssertEqual(m.query(q).rows.map(\.number), [1])
    q = FleetModel.TaskQuery()
    q.offset = 1
    q.limit = 1
    let page = m.query(q)
    XCTAssertEqual(page.rows.map(\.number), [1])
    XCTAssertEqual(page.total, 2)

    XCTAssertEqual(m.events(after: 4).map(\.seq), [5, 6])
    let series = m.metrics.series.json(nowSec: (t0 + 600) / 1000)
    let rates = series["tasks_per_s"]?.array?.compactMap(\.double) ?? []
    XCTAssertEqual(rates.reduce(0, +) * 5, 2, accuracy: 1e-9, "two tasks finished in the window")
  }

  /// A spec without a type is listed as `cortex list` names it: `exec` (a command or shell) or
  /// `synthetic`; `?type=exec` finds them as `cortex list --type exec` does.
  func testATaskWithoutATypeIsListedAsExecOrSynthetic() {
    let m = FleetModel()
    let t0: Int64 = 1_800_000_000_000
    m.apply(line: line(1, t0, "task.submitted", task: 1, #","spec":{"shell":"make test"}"#))
    m.apply(line: line(2, t0, "task.submitted", task: 2, #","spec":{"synthetic":{"duration_ms":5}}"#))
    m.apply(line: line(3, t0, "task.submitted", task: 3, #","spec":{"type":"review","description":"Check"}"#))
    XCTAssertEqual(m.task(1)?.summaryJSON()["type"]?.string, "exec")
    XCTAssertEqual(m.task(2)?.summaryJSON()["type"]?.string, "synthetic")
    XCTAssertEqual(m.task(3)?.summaryJSON()["type"]?.string, "review")
    for (type, want) in [("exec", [1]), ("synthetic", [2]), ("review", [3])] {
      var q = FleetModel.TaskQuery()
      q.type = type
      XCTAssertEqual(m.query(q).rows.map(\.number), want, type)
    }
  }

  /// A task that a re-adoption logged: its start and end are the worker's (`started_ms`,
  /// `ended_ms`), not the times of the events, which a daemon wrote after a gap without one.
  func testARereadoptedTaskKeepsTheWorkersStartAndEnd() {
    let m = FleetModel()
    let t0: Int64 = 1_800_000_000_000
    m.apply(line: line(1, t0, "task.submitted", task: 3, #","spec":{"shell":"sleep 1.5"}"#))
    m.apply(line: line(2, t0, "task.assigned", task: 3, worker: 1))
    m.apply(line: line(3, t0 + 9000, "task.started", task: 3, worker: 1, #","reason":"readopted","started_ms":\#(t0 + 5)"#))
    m.apply(
      line: line(4, t0 + 9000, "task.succeeded", task: 3, worker: 1, #","exit_code":0,"duration_ms":1500,"ended_ms":\#(t0 + 1505)"#))
    let t = m.task(3)!
    XCTAssertEqual(t.startedMs, t0 + 5)
    XCTAssertEqual(t.endedMs, t0 + 1505)
    XCTAssertEqual(m.metrics.run.sum, 1.5, accuracy: 1e-9)
  }

  /// cortex edit (the task page's priority control): the list shows, filters and searches the new spec.
  func testAnEditedTaskShowsItsNewPriorityAndSpec() {
    let m = FleetModel()
    let t0: Int64 = 1_800_000_000_000
    m.apply(line: line(1, t0, "task.submitted", task: 7, #","priority":"low","spec":{"shell":"make test"}"#))
    m.apply(
      line: line(
        2, t0 + 5, "task.edited", task: 7,
        #","reason":"cortex_edit","before":{"priority":"low"},"after":{"priority":"critical"},"spec":{"priority":"critical","shell":"make check","labels":{"k":"v"}}"#
      ))
    let t = m.task(7)!
    XCTAssertEqual(t.priority, "critical")
    XCTAssertEqual(t.title, "make check")
    XCTAssertEqual(t.state, .queued)
    XCTAssertEqual(t.history.map(\.type), ["task.submitted", "task.edited"])
    var q = FleetModel.TaskQuery()
    q.priority = "critical"
    XCTAssertEqual(m.query(q).total, 1)
    q.priority = nil
    q.text = "make check"
    XCTAssertEqual(m.query(q).total, 1)
  }

  /// Appends `text` to segment `segment` of the log in `dir`.
  static func append(_ dir: String, _ segment: Int, _ text: String) throws {
    let fd = try FileDescriptor.open(dir + "/" + LogSegments.name(segment), [.writeOnly, .create, .append])
    defer { fd.close() }
    try fd.writeAll(Array(text.utf8))
  }

  /// A temporary log directory (removed after the test) whose segment 1 holds `{"seq":1}`, and a
  /// tail on it that has not read yet.
  func logWithOneLine() throws -> (String, LogTail) {
    let dir = try FileSystem.makeTemporaryDirectory(prefix: "cortex-tail-")
    addTeardownBlock { FileSystem.removeTree(dir) }
    try Self.append(dir, 1, "{\"seq\":1}\n")
    return (dir, LogTail(directory: dir))
  }

  /// What a paused reader would have to catch up on: the bytes after its position, across segments.
  func testTheTailKnowsHowMuchIsUnread() throws {
    var (dir, tail) = try logWithOneLine()
    func append(_ segment: Int, _ text: String) throws { try Self.append(dir, segment, text) }
    XCTAssertEqual(tail.unread(), 0, "before the first poll")
    var lines = 0
    tail.poll { _ in lines += 1 }
    XCTAssertEqual(lines, 1)
    XCTAssertEqual(tail.unread(), 0)
    try append(1, "{\"seq\":2}\n")
    try append(2, "{\"seq\":3}\n")
    XCTAssertEqual(tail.unread(), 20)
    tail.poll { _ in lines += 1 }
    XCTAssertEqual(lines, 3)
    XCTAssertEqual(tail.unread(), 0)
  }

  /// Behind the writer while retention removed its segment and the next ones, the tail waited
  /// for ever for the segment after its own (the web view's events stopped for good). It goes on
  /// from the oldest segment left.
  func testTheTailGoesOnWhenRetentionRemovedTheSegmentsAfterIt() throws {
    var (dir, tail) = try logWithOneLine()
    func append(_ segment: Int, _ text: String) throws { try Self.append(dir, segment, text) }
    var lines: [String] = []
    tail.poll { lines.append(String(decoding: $0, as: UTF8.self)) }
    XCTAssertEqual(lines, ["{\"seq\":1}"])
    try append(2, "{\"seq\":2}\n")
    try append(3, "{\"seq\":3}\n")
    for i in 1...2 { try FileSystem.remove(dir + "/" + LogSegments.name(i)) }
    tail.poll { lines.append(String(decoding: $0, as: UTF8.self)) }
    XCTAssertEqual(lines, ["{\"seq\":1}", "{\"seq\":3}"])
    try append(3, "{\"seq\":4}\n")
    tail.poll { lines.append(String(decoding: $0, as: UTF8.self)) }
    XCTAssertEqual(lines.last, "{\"seq\":4}")
  }

  /// At the cap the oldest finished tasks are forgotten, a quarter of the cap at a time; tasks
  /// still running stay, however old, and every kept task is still found by its number.
  func testAtTheCapTheOldestFinishedTasksAreForgotten() {
    let m = FleetModel(maxTasks: 40)
    let t0: Int64 = 1_800_000_000_000
    var seq = 0
    func ev(_ type: String, _ n: Int) {
      seq += 1
      m.apply(line: line(seq, t0 + Int64(seq), type, task: n, type == "task.submitted" ? #","spec":{"shell":"t\#(n)"}"# : ""))
    }
    for n in 1...40 {
      ev("task.submitted", n)
      if n % 4 != 1 { ev("task.succeeded", n) }  // 1, 5, 9, ... stay running
    }
    XCTAssertEqual(m.taskCount, 40)
    ev("task.submitted", 41)  // the 41st row: 10 finished ones go first
    XCTAssertEqual(m.taskCount, 31)
    let forgotten = (1...40).filter { m.task($0) == nil }
    XCTAssertEqual(forgotten, [2, 3, 4, 6, 7, 8, 10, 11, 12, 14], "the oldest ten finished tasks, and only those")
    for n in 1...41 where !forgotten.contains(n) { XCTAssertEqual(m.task(n)?.title, "t\(n)", "task \(n)") }
    ev("task.succeeded", 1)  // an old running task's end still lands on its row
    XCTAssertEqual(m.task(1)?.state, .succeeded)
    let (page, total) = m.query(FleetModel.TaskQuery(limit: 3))
    XCTAssertEqual(total, 31)
    XCTAssertEqual(page.map(\.number), [41, 40, 39], "newest first, as before")
  }

  func testTheEventRingKeepsTheLastEvents() {
    let m = FleetModel()
    for i in 1...(FleetModel.ringCapacity + 10) { m.apply(line: line(i, 1_800_000_000_000, "worker.ready", worker: 1)) }
    let all = m.events(after: 0)
    XCTAssertEqual(all.count, FleetModel.ringCapacity)
    XCTAssertEqual(all.first?.seq, 11)
    XCTAssertEqual(all.last?.seq, UInt64(FleetModel.ringCapacity + 10))
  }

  /// A full ring reuses its slots' bytes: each event still has its own line, of whatever length,
  /// and an event held from before its slot was reused keeps the line it had.
  func testTheRingsReusedSlotsHoldTheirOwnLines() {
    let m = FleetModel()
    var sent: [UInt64: [UInt8]] = [:]
    var held: FleetModel.RingEvent?
    let n = 2 * FleetModel.ringCapacity + 7
    for i in 1...n {
      let l = line(i, 1_800_000_000_000, "task.progress", task: 1, #","reason":"\#(String(repeating: "x", count: i % 97))""#)
      sent[UInt64(i)] = Array(l)
      let e = m.apply(line: l)
      XCTAssertEqual(e.map { Array($0.line) }, Array(l))
      if i == FleetModel.ringCapacity + 3 { held = e }
    }
    let all = m.events(after: 0)
    XCTAssertEqual(all.map(\.seq), Array(UInt64(n - FleetModel.ringCapacity + 1)...UInt64(n)))
    for e in all { XCTAssertEqual(e.line, sent[e.seq], "\(e.seq)") }
    XCTAssertEqual(held?.line, sent[UInt64(FleetModel.ringCapacity + 3)])
  }

  /// `newest`: the last N of the events a filter matches, after a message counting the rest.
  func testAStreamAskingForTheNewestGetsTheLastOnesAndACount() {
    let events = (1...10).map { i in
      FleetModel.RingEvent(
        seq: UInt64(i), type: i % 2 == 0 ? "task.started" : "task.succeeded", task: i, line: Array("{\"seq\":\(i)}".utf8))
    }
    var out: [UInt8] = []
    WebServer.appendEvents(events.lazy.filter { $0.type == "task.succeeded" }, batch: true, newest: 3, to: &out)
    XCTAssertEqual(
      String(decoding: out, as: UTF8.self),
      "event: skipped\ndata: {\"skipped\":2}\n\nid: 9\nevent: logs\ndata: [{\"seq\":5},{\"seq\":7},{\"seq\":9}]\n\n")
    out = []
    WebServer.appendEvents(events.lazy.filter { $0.task == 4 }, batch: false, newest: 3, to: &out)
    XCTAssertEqual(String(decoding: out, as: UTF8.self), "id: 4\nevent: log\ndata: {\"seq\":4}\n\n")
  }

  func testAuthChecksTokenCookieHostAndOrigin() {
    let a = Auth(token: "abc", bind: "127.0.0.1", port: 8080)
    func req(_ headers: [(String, String)], method: String = "GET", query: [(String, String)] = []) -> HTTPRequest {
      HTTPRequest(method: method, path: "/", query: query, version: "HTTP/1.1", headers: [("host", "127.0.0.1:8080")] + headers, body: [])
    }
    XCTAssertEqual(a.credential(req([])), .none)
    XCTAssertEqual(a.credential(req([("authorization", "Bearer abc")])), .bearer)
    XCTAssertEqual(a.credential(req([("authorization", "Bearer abd")])), .none)
    // The scheme is case-insensitive (RFC 9110 §11.1): curl users write `bearer` too.
    XCTAssertEqual(a.credential(req([("authorization", "bearer abc")])), .bearer)
    XCTAssertEqual(a.credential(req([("authorization", "BEARER abc")])), .bearer)
    XCTAssertEqual(a.credential(req([("authorization", "Basic abc")])), .none)
    XCTAssertEqual(a.credential(req([("cookie", "x=1; cortex_8080=abc")])), .cookie)
    XCTAssertEqual(a.credential(req([("cookie", "cortex_9090=abc")])), .none)
    XCTAssertEqual(a.credential(req([], query: [("token", "abc")])), .query)
    XCTAssertTrue(a.originAllowed(req([("origin", "http://127.0.0.1:8080")], method: "POST"), .cookie))
    XCTAssertFalse(a.originAllowed(req([("origin", "http://evil.example")], method: "POST"), .cookie))
    XCTAssertFalse(a.originAllowed(req([], method: "POST"), .cookie))
    XCTAssertTrue(a.originAllowed(req([], method: "POST"), .bearer))
    XCTAssertFalse(
      a.hostAllowed(HTTPRequest(method: "GET", path: "/", query: [], version: "HTTP/1.1", headers: [("host", "evil:8080")], body: [])))
  }

  /// Cluster mode: the peer token another node's web view sends reads four GET endpoints and
  /// nothing else; a single host has no peer token.
  func testThePeerTokenReadsOnlyWhatPeersNeed() {
    let a = Auth(token: "abc", peerToken: "peer", bind: "127.0.0.1", port: 8080)
    func req(_ method: String, _ path: String) -> HTTPRequest {
      HTTPRequest(
        method: method, path: path, query: [], version: "HTTP/1.1",
        headers: [("host", "127.0.0.1:8080"), ("authorization", "Bearer peer")],
        body: [])
    }
    XCTAssertEqual(a.credential(req("GET", "/api/status")), .peer)
    XCTAssertEqual(Auth(token: "abc", bind: "127.0.0.1", port: 8080).credential(req("GET", "/api/status")), .none)
    for path in ["/api/status", "/api/events/recent", "/api/tasks/task-000001", "/api/tasks/task-000001/output"] {
      XCTAssertTrue(Auth.peerReadable(req("GET", path)), path)
      XCTAssertFalse(Auth.peerReadable(req("POST", path)), "POST " + path)
    }
    for path in [
      "/", "/tasks", "/events", "/api/tasks", "/api/cluster", "/api/workers", "/api/events", "/metrics", "/api/tasks/task-000001/cancel",
    ] {
      XCTAssertFalse(Auth.peerReadable(req("GET", path)), path)
    }
  }

  /// Published addresses: http://IPv4:PORT/ only; a server on every address is reached locally.
  func testAPeerAddressIsParsedOrRefused() {
    XCTAssertTrue(PeerFetcher.parse("http://127.0.0.1:8080/")! == ("127.0.0.1", 8080))
    XCTAssertTrue(PeerFetcher.parse("http://0.0.0.0:9/")! == ("127.0.0.1", 9))
    XCTAssertTrue(PeerFetcher.parse("http://10.1.2.3:65535")! == ("10.1.2.3", 65535))
    for bad in ["", "https://127.0.0.1:80/", "http://127.0.0.1/", "http://127.0.0.1:0/", "http://127.0.0.1:70000/", "http://[::1]:80/"] {
      XCTAssertNil(PeerFetcher.parse(bad), bad)
    }
  }

  func testTheScannerReadsWhatTheEncoderWrites() {
    let events = [
      Event(
        "task.failed", task: 12, worker: 3, attempt: 2, reason: "exit_code", detail: #"said "type":"x", \ and "task_id":"task-9""#,
        fields: [("exit_code", .int(-1)), ("tokens_used", .int(40)), ("duration_ms", .int(7))]),
      Event("task.progress", task: 5, worker: 1, attempt: 1, fields: [("progress", .double(0.25)), ("tokens_used", .int(3))]),
      Event("budget.released", task: 7, attempt: 1, fields: [("tokens", .int(100))]),
    ]
    for e in events {
      var w = JSONWriter()
      e.encode(seq: 42, tsMs: 1_800_000_000_123, into: &w)
      let line = LogLine(bytes: w.bytes[...])
      let full = try! JSON.parse(w.bytes)
      XCTAssertEqual(line.string("type"), full["type"]?.string)
      XCTAssertEqual(line.int("seq"), 42)
      XCTAssertEqual(line.string("ts"), full["ts"]?.string)
      XCTAssertEqual(line.string("task_id"), full["task_id"]?.string)
      XCTAssertEqual(line.string("worker_id"), full["worker_id"]?.string)
      XCTAssertEqual(line.int("attempt"), full["attempt"]?.int)
      XCTAssertEqual(line.string("reason"), full["reason"]?.string)
      XCTAssertEqual(line.int("exit_code"), full["exit_code"]?.int)
      XCTAssertEqual(line.int("tokens_used"), full["tokens_used"]?.int)
      XCTAssertEqual(line.double("progress"), full["progress"]?.double)
      XCTAssertEqual(line.int("tokens"), full["tokens"]?.int)
    }
  }

  func testTheScannerSaysWhenALineMustBeParsedInFull() {
    let flat = LogLine(bytes: Array(#"{"seq":7,"ts":"x","type":"task.started","reason":"a,}:b","n":-3}"#.utf8)[...])
    XCTAssertTrue(flat.flat)
    XCTAssertEqual(flat.string("reason"), "a,}:b")
    XCTAssertEqual(flat.int("n"), -3, "a field after a string holding a comma and a brace")
    XCTAssertNil(flat.int("missing"))
    // A string with an escape is left to the full parse; the fields after it are still found.
    let escaped = LogLine(bytes: Array(#"{"seq":7,"type":"task.started","reason":"a\"b,}","n":-3}"#.utf8)[...])
    XCTAssertFalse(escaped.flat)
    XCTAssertEqual(escaped.int("n"), -3)
    // A nested value is skipped over, brackets and strings in it included, and kept whole; its
    // fields are not the line's.
    let nested = LogLine(
      bytes: Array(#"{"seq":8,"type":"task.submitted","spec":{"seq":9,"a":["]}\"{",{"b":[]}]},"priority":"high"}"#.utf8)[...])
    XCTAssertTrue(nested.flat)
    XCTAssertEqual(nested.int("seq"), 8)
    XCTAssertEqual(nested.string("type"), "task.submitted")
    XCTAssertEqual(nested.string("priority"), "high")
    XCTAssertEqual(nested.value("spec").map { String(decoding: $0, as: UTF8.self) }, #"{"seq":9,"a":["]}\"{",{"b":[]}]}"#)
    for broken in [
      #"{"seq":1,"type":"task.started""#, #"{"seq":1,"type":"task.started"} trailing"#, "[1]", "", #"{"seq" 1}"#,
      #"{"seq":1,"spec":{"a":[1}}"#, #"{"seq":1,"spec":{"a":"}"#, #"{"seq":1,"spec":[[1]"#,
      #"{"seq":1,"spec":"# + String(repeating: "[", count: 65) + String(repeating: "]", count: 65) + "}",
    ] {
      XCTAssertFalse(LogLine(bytes: Array(broken.utf8)[...]).flat, broken)
    }
    // Such a line still reaches the model through the full parse.
    let m = FleetModel()
    m.apply(line: line(1, 1_800_000_000_000, "task.submitted", task: 1, #","spec":{"shell":"true"}"#))
    m.apply(
      line: Array(
        #"{"seq":2,"ts":"2027-01-15T08:00:00.000Z","type":"task.started","task_id":"task-000001","worker_id":"worker-002","reason":"q\"x"}"#
          .utf8)[...])
    XCTAssertEqual(m.task(1)?.state, .running)
    XCTAssertEqual(m.task(1)?.worker, 2)
    XCTAssertEqual(m.task(1)?.history.last?.reason, #"q"x"#)
  }

  /// The task search (Knuth-Morris-Pratt, linear in each text) finds exactly what a plain
  /// byte-by-byte search finds.
  func testSearchFindsWhatAPlainSearchFinds() {
    func plain(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
      if needle.isEmpty { return true }
      guard needle.count <= hay.count else { return false }
      return (0...(hay.count - needle.count)).contains { Array(hay[$0..<($0 + needle.count)]) == needle }
    }
    var rng = SystemRandomNumberGenerator()
    for _ in 0..<20_000 {
      let hay = (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 97...99, using: &rng) }
      let needle = (0..<Int.random(in: 0...6, using: &rng)).map { _ in UInt8.random(in: 97...99, using: &rng) }
      XCTAssertEqual(FleetModel.contains(hay, needle), plain(hay, needle), "\(hay) \(needle)")
    }
  }
}
