import CortexCore
import Posix
import XCTest

/// `cortex start --foreground` printed the dashboard's address without its token (the daemon's
/// own line), which answers 401; `cortex start` prints it with the token. Both print the same.
final class ForegroundStartTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// The address in a `cortex: dashboard at URL` line of `text`.
  func dashboard(_ text: String) -> String? {
    text.split(separator: "\n").first { $0.hasPrefix("cortex: dashboard at ") }.map { String($0.dropFirst("cortex: dashboard at ".count)) }
  }

  /// GET of `url` (http://127.0.0.1:PORT/PATH) on the web view.
  func get(_ url: String) throws -> RawHTTP.Answer {
    let rest = try XCTUnwrap(url.split(separator: ":", maxSplits: 2).last, url)
    let port = try XCTUnwrap(Int(rest.prefix { $0.isNumber }), url)
    return try RawHTTP(port: port).get(String(rest.drop { $0.isNumber }))
  }

  func testStartInTheForegroundPrintsTheDashboardAddressWithItsToken() throws {
    try c.initialize()
    let fg = try c.background(["start", "--foreground", "--workers", "1"])
    var printed: String? = nil
    c.eventually("start --foreground prints the dashboard's address") {
      printed = dashboard(String(decoding: ((try? FileSystem.read(fg.err)) ?? nil) ?? [], as: UTF8.self))
      return printed != nil
    }
    let url = try XCTUnwrap(printed)
    let token = String(decoding: try XCTUnwrap(FileSystem.read(c.paths.root + "/web.token")), as: UTF8.self).trimmed
    XCTAssertTrue(url.hasSuffix("/?token=" + token), "the printed address does not carry web.token: \(url)")
    let answer = try get(url)
    XCTAssertNotEqual(answer.status, 401, "the printed address is refused: \(answer.head)")
    XCTAssertTrue(answer.head.lowercased().contains("set-cookie"), "the token was not taken: \(answer.head)")
    XCTAssertEqual(try get(String(url.prefix { $0 != "?" })).status, 401, "the page answers without the token")
    c.ok(["stop"])
    let ended = c.collect(fg)
    XCTAssertEqual(ended.code, 0, ended.err)

    // `cortex start` (detached) prints the same line for the same files.
    let bg = c.ok(["start", "--workers", "1"])
    let detached = try XCTUnwrap(dashboard(bg.err), bg.err)
    let again = String(decoding: try XCTUnwrap(FileSystem.read(c.paths.root + "/web.token")), as: UTF8.self).trimmed
    XCTAssertTrue(detached.hasSuffix("/?token=" + again), detached)
    XCTAssertNotEqual(try get(detached).status, 401)
    c.ok(["stop"])
  }
}
