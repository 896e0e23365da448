import CortexCore
import Posix
import XCTest

/// Typos a newcomer makes, answered with what was meant: a worker type one letter off
/// (`developmnt`) listed the types without pointing at the one meant, and `cortex task list`
/// (after learning `cortex task create`) said only that `task create` is the one.
final class NewUserTypoTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testATypoOfAWorkerTypeOrATaskSubcommandNamesTheOneMeant() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let type = c.run(["task", "create", "--type", "developmnt", "--", "true"])
    XCTAssertEqual(type.code, 65, type.err)
    XCTAssertTrue(type.err.contains("unknown worker type 'developmnt' (did you mean 'development'? known: "), type.err)
    let far = c.run(["task", "create", "--type", "zzz", "--", "true"])
    XCTAssertTrue(far.err.contains("unknown worker type 'zzz' (known: "), far.err)
    for sub in ["list", "show", "cancel"] {
      let r = c.run(["task", sub])
      XCTAssertEqual(r.code, 64, r.err)
      XCTAssertTrue(r.err.contains("\(sub) is a command of its own: cortex \(sub)"), r.err)
    }
    XCTAssertFalse(c.run(["task", "frobnicate"]).err.contains("command of its own"))
  }
}
