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

  /// A config of its own types (no `routing` section): a description is routed among them, never
  /// to a built-in type the config lacks (before, "Fix the crash…" went to `fix` and was refused
  /// with "unknown worker type 'fix'", a type the user never named); when none of them matches
  /// and the default type is not one of them either, the refusal says so and what to do.
  func testOnlyTheConfiguredTypesAreChosen() throws {
    let out = c.scratch + "/said"
    let template: JSON = .object([("shell", .string("printf '%s\\n' {description} >> \(out)"))])
    try c.initialize([("worker_types", .object([("development", template), ("security", template)]))])
    c.ok(["start", "--workers", "1"])
    let fix = c.ok(["task", "create", "--description", "Fix the crash when the login form is empty"])
    XCTAssertTrue(fix.err.contains("routed to development (confidence 0.00; default: "), fix.err)
    let sec = c.ok(["task", "create", "--description", "Fix the crash in the security login form"])
    XCTAssertTrue(sec.err.contains("routed to security"), "its own type's evidence decides: \(sec.err)")
    for (run, type) in [(fix, "development"), (sec, "security")] {
      XCTAssertTrue(c.ok(["show", run.out.trimmed, "--json"]).out.contains(#""type":"\#(type)""#))
    }

    // A batch line is not routed: the refusal says a description needs a type, not "nothing to run".
    let batch = c.run(["submit", "--from", "-"], input: #"{"description":"Add README.md"}"# + "\n")
    XCTAssertEqual(batch.code, 65, batch.err)
    XCTAssertTrue(
      batch.err.contains(#"a description alone needs a worker type to run it: give "type" (development, security); cortex task create"#),
      batch.err)

    try c.configure([("worker_types", .object([("build", template), ("deploy", template)]))])
    let refused = c.run(["task", "create", "--description", "Fix the crash"])
    XCTAssertEqual(refused.code, 65, refused.err)
    XCTAssertTrue(
      refused.err.contains(
        "no worker type in config.json matched this description and the routing default, 'development', is not one of them (build, deploy); give --type"
      ),
      refused.err)
    XCTAssertFalse(refused.err.contains("routed to"), refused.err)
  }
}
