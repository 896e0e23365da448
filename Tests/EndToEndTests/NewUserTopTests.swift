import CortexCore
import Posix
import XCTest

/// `cortex top` in an ordinary 80×24 terminal: its legend and budget lines were longer than 80
/// columns and wrapped, so every frame pushed its own lines about. Each frame now fits the
/// terminal it is drawn on.
final class NewUserTopTests: XCTestCase {
  var c: Cortex!
  var socket: String { c.scratch + "/tmux.sock" }

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() {
    if c != nil { _ = tmux(["kill-server"]) }
    c?.finish()
  }

  func tmux(_ args: [String]) -> String {
    c.tmux(socket: socket, args)
  }

  func testTopFitsAnEightyColumnTerminal() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    _ = tmux([
      "new-session", "-d", "-s", "top", "-x", "80", "-y", "24",
      "env NO_COLOR=1 TERM=xterm '\(Cortex.binary)' --dir '\(c.root)' top --interval 100",
    ])
    var screen: [String] = []
    c.eventually("top to draw a frame") {
      screen = tmux(["capture-pane", "-p", "-t", "top"]).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
      return screen.contains { $0.hasPrefix("log ") }
    }
    _ = tmux(["send-keys", "-t", "top", "q"])
    let text = screen.joined(separator: "\n")
    XCTAssertTrue(screen.first?.hasPrefix("cortex top") == true, text)
    XCTAssertEqual(screen.dropFirst().first, "", "the header is one line:\n\(text)")
    let budget = try XCTUnwrap(screen.firstIndex { $0.hasPrefix("budget ") }, text)
    XCTAssertTrue(screen[budget + 1].hasPrefix("log "), "the budget line is one line:\n\(text)")
    let legend = try XCTUnwrap(screen.firstIndex { $0.hasPrefix("workers 2 ") }, text)
    XCTAssertEqual(screen[legend + 1], "..", "the legend is one line:\n\(text)")
  }

  /// `cortex --json top --once` printed a text frame on stdout, where --json promises JSON (a
  /// script parsing it failed on the first line). It is refused as a usage error, in JSON, naming
  /// the command that gives the state as JSON.
  func testTopWithJSONIsRefusedNamingStatus() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let r = c.run(["--json", "top", "--once"])
    XCTAssertEqual(r.code, 64, r.out)
    let v = try JSON.parse(Array(r.out.utf8))
    XCTAssertEqual(v["ok"]?.bool, false, r.out)
    XCTAssertTrue(v["error"]?.string?.contains("cortex --json status") == true, r.out)
    XCTAssertTrue(c.ok(["top", "--once"]).out.hasPrefix("cortex top"))
  }
}
