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
}
