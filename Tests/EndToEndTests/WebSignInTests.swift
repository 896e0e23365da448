import CortexCore
import Posix
import XCTest

/// Getting into the dashboard again without the first terminal: the sign-in page and a page
/// left open after a restart named `cortex start`, which printed the address only when it
/// started a daemon (a second one said "a daemon already runs" and no address), and `cortex
/// status`, which never shows it. The token was in a 0600 file and nowhere a command showed it.
final class WebSignInTests: XCTestCase {
  func testCortexStartPrintsTheDashboardOfTheDaemonThatAlreadyRuns() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(1))])
    c.ok(["start"])
    let port = try XCTUnwrap(c.webPort)
    let again = c.run(["start"])
    XCTAssertEqual(again.code, 1, "a second start is still refused: \(again.err)")
    XCTAssertTrue(again.err.contains("a daemon already runs"), again.err)
    XCTAssertTrue(
      again.err.contains("cortex: dashboard at http://127.0.0.1:\(port)/?token=\(c.webToken)"),
      "cortex start on a running daemon does not print its dashboard: \(again.err)")
    // The sign-in page (no cookie, or a wrong one) says which command prints the address.
    let web = RawHTTP(port: port)
    for cookie in [[], ["Cookie: cortex_\(port)=0123456789abcdef"]] {
      let a = try web.get("/tasks", headers: cookie)
      XCTAssertEqual(a.status, 401, a.body)
      XCTAssertTrue(a.body.contains("cortex start"), a.body)
      XCTAssertTrue(
        a.body.contains("already runs"), "the sign-in page does not say start prints the address of a running daemon: \(a.body)")
    }
    // A page left open names only commands that say the address.
    let script = try web.get("/static/app.js", headers: ["Authorization: Bearer \(c.webToken)"])
    XCTAssertFalse(script.body.contains("cortex status says which"), "the page says cortex status names the address; it does not")
  }

  /// With the default `port` 0, each start took a new port: a page left open across a stop and
  /// start could only say "no answer" and never recover. A start now takes the previous port
  /// when it is free (another one when it is not), so the open page reaches the new daemon.
  func testAStartTakesThePreviousPortWhenItIsFree() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(1))])
    c.ok(["start"])
    let first = try XCTUnwrap(c.webPort)
    c.ok(["stop"])
    let again = c.ok(["start"])
    XCTAssertEqual(c.webPort, first, "the second start serves another port than the first")
    XCTAssertTrue(again.err.contains("dashboard at http://127.0.0.1:\(first)/?token=\(c.webToken)"), again.err)
    c.ok(["stop"])
    // The port taken by someone else meanwhile: the start takes another one, and serves.
    let taken = try TCPSocket.listen(address: "127.0.0.1", port: first)
    defer { taken.close() }
    c.ok(["start"])
    let other = try XCTUnwrap(c.webPort)
    XCTAssertNotEqual(other, first)
    XCTAssertEqual(try RawHTTP(port: other).get("/api/status", headers: ["Authorization: Bearer \(c.webToken)"]).status, 200)
  }
}
