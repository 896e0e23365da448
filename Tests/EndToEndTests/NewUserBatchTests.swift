import CortexCore
import Posix
import XCTest

/// What a new user trips on with `cortex submit --from` (NewUserTests has the rest).
final class NewUserBatchTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// A batch written as a JSON array, or as one pretty-printed object, failed with "must be a
  /// JSON object, not an array" or "not JSON: unexpected end of input" at line 1; the error says
  /// --from takes one task object per line and gives the jq line that makes them.
  func testAJSONArrayOrAPrettyObjectSaysHowToMakeLines() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let cases: [(String, String)] = [
      (#"[{"command":["true"]},{"command":["true"]}]"#, "stdin line 1: a JSON array; --from takes one task object per line: jq -c '.[]'"),
      ("[\n{\"command\":[\"true\"]},\n{\"command\":[\"true\"]}\n]", "the input is one JSON array over several lines"),
      (
        "{\n  \"command\": [\"true\"]\n}", "the input is one JSON object over several lines; --from takes one task object per line: jq -c ."
      ),
    ]
    for (input, says) in cases {
      let r = c.run(["submit", "--from", "-"], input: input + "\n")
      XCTAssertEqual(r.code, 65, r.err)
      XCTAssertTrue(r.err.contains(says), r.err)
    }
    // A --from that names no file (a typo) or a directory is a usage error (64), not a failure (1).
    let missing = c.run(["submit", "--from", c.scratch + "/nope.jsonl"])
    XCTAssertEqual(missing.code, 64, missing.err)
    XCTAssertTrue(missing.err.contains("nope.jsonl: it does not exist"), missing.err)
    let directory = c.run(["submit", "--from", c.scratch])
    XCTAssertEqual(directory.code, 64, directory.err)
    XCTAssertTrue(directory.err.contains("--from \(c.scratch) is a directory"), directory.err)
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" })
  }
}
