import CortexCore
import Posix
import XCTest

/// `task create --description D` without `--type` (issue 17 part 5): the type is chosen from the
/// keyword rules, including the `"routing"` overrides in config.json, and the choice is printed.
final class RoutingCLITests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testTaskCreateWithoutTypeIsRoutedAndSaysWhy() throws {
    let out = c.scratch + "/said"
    let template: JSON = .object([("shell", .string("printf '%s\\n' {description} >> \(out)"))])
    try c.initialize([
      ("worker_types", .object([("security", template), ("review", template), ("analysis", template)])),
      ("routing", .object([("default_type", .string("analysis")), ("rules", .object([("review", .array([.string("looks fine^9")]))]))])),
    ])
    c.ok(["start", "--workers", "1"])
    let sec = c.ok(["task", "create", "--description", "Remediate CVE-2023-44487 in the gateway"])
    XCTAssertTrue(sec.err.contains("routed to security (confidence "), sec.err)
    XCTAssertTrue(sec.err.contains("keyword: cve"), sec.err)
    let rev = c.ok(["task", "create", "--description", "Check that PR #9 looks fine"])
    XCTAssertTrue(rev.err.contains("routed to review"), "the config's rule wins: \(rev.err)")
    let vague = c.ok(["task", "create", "--description", "zzz qqq"])
    XCTAssertTrue(vague.err.contains("routed to analysis (confidence 0.00; default: no keyword or similar past task)"), vague.err)
    let given = c.ok(["task", "create", "--type", "review", "--description", "Remediate CVE-2023-44487"])
    XCTAssertFalse(given.err.contains("routed"), "an explicit --type is never second-guessed: \(given.err)")
    for (run, type) in [(sec, "security"), (rev, "review"), (vague, "analysis"), (given, "review")] {
      let show = c.ok(["show", run.out.trimmed, "--json"]).out
      XCTAssertTrue(show.contains(#""type":"\#(type)""#), show)
    }
  }
}
