import CortexCore
import Posix
import XCTest

/// The live event stream's cost controls (issue 14): `newest=N` and the web thread's priority.
final class WebStreamTests: XCTestCase {
  /// One message of an event stream: its `event:` name and its `data:`.
  struct Message {
    var event: String
    var data: String
  }

  /// Reads an open event stream until `done` says so (bounded by `timeoutMs`).
  static func read(_ fd: FileDescriptor, timeoutMs: Int64, until done: ([Message]) -> Bool) throws -> [Message] {
    var buf: [UInt8] = []
    var messages: [Message] = []
    let deadline = Clock.monotonicMs() + timeoutMs
    while !done(messages) {
      let left = deadline - Clock.monotonicMs()
      if left <= 0 {
        throw HarnessError(message: "stream: not done within \(timeoutMs) ms; last messages: \(messages.suffix(3))")
      }
      guard fd.waitReadable(timeoutMs: Int32(left)) else { continue }
      guard (try fd.read(appendingTo: &buf, max: 1 << 16)) > 0 else { throw HarnessError(message: "stream closed") }
      // Whole messages end with an empty line.
      while let end = buf.indices.dropLast().first(where: { buf[$0] == 10 && buf[$0 + 1] == 10 }) {
        let block = String(decoding: buf[..<end], as: UTF8.self)
        buf.removeFirst(end + 2)
        var m = Message(event: "message", data: "")
        for line in block.split(separator: "\n") {
          if line.hasPrefix("event: ") { m.event = String(line.dropFirst(7)) }
          if line.hasPrefix("data: ") { m.data = String(line.dropFirst(6)) }
        }
        if !m.data.isEmpty { messages.append(m) }
      }
    }
    return messages
  }

  func testAStreamSendsTheNewestEventsItAsksForAndSaysHowManyItLeftOut() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(2)), ("max_queue", .int(10_000))])
    c.ok(["start"])
    let port = try XCTUnwrap(c.webPort)
    let web = RawHTTP(port: port)
    let auth = "Authorization: Bearer \(c.webToken)"

    // A number it cannot use is refused, and says which parameter.
    for bad in ["0", "-3", "many", "100001"] {
      let a = try web.get("/api/events?newest=\(bad)", headers: [auth])
      XCTAssertEqual(a.status, 400, "newest=\(bad): \(a.body)")
      XCTAssertTrue(a.body.contains("newest: '\(bad)'"), a.body)
    }

    let fd = try TCPSocket.connect(address: "127.0.0.1", port: port)
    defer { fd.close() }
    try fd.writeAll(
      Array("GET /api/events?type=task.submitted&batch=1&newest=5 HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\(auth)\r\n\r\n".utf8))
    // The stream is open (its headers came: the server follows the log for it from then on)
    // before the tasks are submitted.
    XCTAssertTrue(fd.waitReadable(timeoutMs: 10_000), "no answer to the stream request within 10 s")
    var head: [UInt8] = []
    _ = try fd.read(appendingTo: &head, max: 1 << 16)
    let headText = String(decoding: head, as: UTF8.self)
    XCTAssertTrue(headText.hasPrefix("HTTP/1.1 200") && headText.contains("text/event-stream"), headText)
    let n = 500
    let path = c.scratch + "/batch.jsonl"
    try FileSystem.writeAtomically(
      path, Array(String(repeating: #"{"synthetic":{"duration_ms":0}}"# + "\n", count: n).utf8), durable: false)
    let ids = c.ok(["submit", "--from", path]).out.split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, n)

    var sent = 0
    var skipped = 0
    var lastID = ""
    let messages = try Self.read(fd, timeoutMs: 15_000) { ms in
      sent = 0
      skipped = 0
      for m in ms {
        if m.event == "skipped" { skipped += (try? JSON.parse(Array(m.data.utf8)))?["skipped"]?.int.map(Int.init) ?? 0 }
        if m.event == "logs", let list = (try? JSON.parse(Array(m.data.utf8)))?.array {
          sent += list.count
          lastID = list.last?["task_id"]?.string ?? lastID
        }
      }
      return sent + skipped >= n
    }
    let logs = messages.filter { $0.event == "logs" }
    for m in logs {
      let count = (try JSON.parse(Array(m.data.utf8))).array?.count ?? -1
      XCTAssertTrue((1...5).contains(count), "a logs message with \(count) events: \(m.data.prefix(200))")
    }
    // Every event is either sent or counted as left out, and the newest one is sent.
    XCTAssertEqual(sent + skipped, n, "\(logs.count) logs messages")
    XCTAssertGreaterThan(skipped, 0, "500 submits in one request fit in a few ticks: most are left out")
    XCTAssertEqual(lastID, ids.last)
    c.ok(["wait"] + ids)

    // The web thread yields to the loop when both want a core.
    let pid = try XCTUnwrap(c.daemonPID)
    XCTAssertEqual(try Self.nice(pid: pid, thread: "cortex-web"), 10)
    XCTAssertEqual(try Self.nice(pid: pid, thread: "cortex"), 0)
  }

  /// `GET /api/tasks?…&follow=1`: the list's answer as a stream, sent again while its tasks
  /// change but (after a pause's first two) at most every 150 ms (the task list draws what it is sent, with no request per
  /// redraw); a `follow` that is not 0 or 1 is refused naming it.
  func testAFollowedTaskListIsSentAgainAsItsTasksChange() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(2)), ("max_queue", .int(10_000))])
    c.ok(["start"])
    let port = try XCTUnwrap(c.webPort)
    let auth = "Authorization: Bearer \(c.webToken)"
    let bad = try RawHTTP(port: port).get("/api/tasks?follow=yes", headers: [auth])
    XCTAssertEqual(bad.status, 400, bad.body)
    XCTAssertTrue(bad.body.contains("follow: 'yes' is not 0 or 1"), bad.body)

    let fd = try TCPSocket.connect(address: "127.0.0.1", port: port)
    defer { fd.close() }
    try fd.writeAll(Array("GET /api/tasks?limit=5&follow=1 HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n\(auth)\r\n\r\n".utf8))
    let first = try Self.read(fd, timeoutMs: 10_000) { $0.contains { $0.event == "tasks" } }
    let start = try JSON.parse(Array(try XCTUnwrap(first.first { $0.event == "tasks" }).data.utf8))
    XCTAssertEqual(start["total"]?.int, 0, "the list as it is when the stream opens: \(start)")

    let n = 300
    let path = c.scratch + "/batch.jsonl"
    try FileSystem.writeAtomically(
      path, Array(String(repeating: #"{"synthetic":{"duration_ms":2}}"# + "\n", count: n).utf8), durable: false)
    let began = Clock.monotonicMs()
    let ids = c.ok(["submit", "--from", path]).out.split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, n)
    var lists: [JSON] = []
    _ = try Self.read(fd, timeoutMs: 15_000) { ms in
      lists = ms.filter { $0.event == "tasks" }.compactMap { try? JSON.parse(Array($0.data.utf8)) }
      let newest = lists.last?["tasks"]?.array ?? []
      return newest.first?["id"]?.string == ids.last && newest.allSatisfy { $0["state"]?.string == "succeeded" }
    }
    let took = Clock.monotonicMs() - began
    let last = try XCTUnwrap(lists.last)
    XCTAssertEqual(last["total"]?.int, Int64(n))
    XCTAssertEqual(last["tasks"]?.array?.compactMap { $0["id"]?.string }, Array(ids.suffix(5).reversed()))
    XCTAssertGreaterThan(last["seq"]?.int ?? 0, start["seq"]?.int ?? .max)
    // Sent again as the tasks changed (300 tasks of 2 ms on two workers take at least 300 ms), but
    // not on every tick: after a pause two ticks in a row, then at most one list per 125 ms (150
    // with half a tick of slack).
    XCTAssertGreaterThanOrEqual(lists.count, 2)
    XCTAssertLessThanOrEqual(lists.count, 3 + Int(took / 125), "\(lists.count) lists in \(took) ms")
  }

  /// The nice value of the daemon's thread named `thread`.
  static func nice(pid: Int32, thread: String) throws -> Int {
    Int(try WebServerTests.threadStat(pid: pid, thread: thread)[16]) ?? -99
  }
}
