import CortexCore
import Posix
import XCTest

/// What the commands say and return: one exit-code rule for `wait` and `submit --wait`, JSON
/// errors under `--json`, batch positions counted from 1, the max_queue hint, `log` of a
/// synthetic task, `tail -f -n`, `status` of a stopped daemon, and `top` quitting on `q`.
final class CLIPolishTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testABatchLargerThanMaxQueueSaysWhatToChangeAndExits65() throws {
    try c.initialize([("max_queue", .int(3))])
    c.ok(["start", "--workers", "1"])
    let five = String(repeating: #"{"synthetic":{"duration_ms":0}}"# + "\n", count: 5)
    let r = c.run(["submit", "--from", "-"], input: five)
    XCTAssertEqual(r.code, 65, "retrying cannot help, so not 75: \(r.err)")
    for hint in ["max_queue", "config.json", "HUP", "split"] { XCTAssertTrue(r.err.contains(hint), "no '\(hint)' in: \(r.err)") }
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" })
    XCTAssertEqual(c.events().last { $0.type == "task.rejected" }?["reason"]?.string, "batch_too_large")
    // A full queue is still 75: it can succeed later.
    for _ in 0..<4 { _ = c.run(["submit", "--shell", "sleep 30"]) }
    let full = c.run(["submit", "--", "true"])
    XCTAssertEqual(full.code, 75, full.err)
    c.ok(["stop", "--timeout", "0"], timeoutS: 30)
  }

  func testBatchPositionsCountFromOneInEveryMessage() throws {
    try c.initialize([("token_budget_total", .int(1000))])
    c.ok(["start", "--workers", "1"])
    // A blank line: the file's line and the task's position differ, and both are right.
    let file = c.scratch + "/batch.jsonl"
    try FileSystem.writeAtomically(
      file, Array((#"{"synthetic":{"duration_ms":0}}"# + "\n\n" + #"{"synthetic":{"duration_ms":0},"priority":"urgent"}"# + "\n").utf8))
    let invalid = c.run(["submit", "--json", "--from", file])
    XCTAssertEqual(invalid.code, 65)
    XCTAssertTrue(invalid.err.contains("batch.jsonl line 3: task 2 of 2: priority"), invalid.err)
    let j = try JSON.parse(Array(invalid.out.utf8))
    XCTAssertEqual(j["field"]?.string, "[2].priority")
    XCTAssertEqual(j["position"]?.int, 2)
    // The budget refusal counts the same way.
    let twoSpecs = #"{"synthetic":{"duration_ms":0,"tokens":10}}"# + "\n" + #"{"synthetic":{"duration_ms":0},"token_budget":5000}"#
    let budget = c.run(["submit", "--from", "-"], input: twoSpecs)
    XCTAssertEqual(budget.code, 75)
    XCTAssertTrue(budget.err.contains("stdin line 2: task 2 of 2 needs 5000 tokens"), budget.err)
    // A parse error names the line and the task.
    let garbage = c.run(["submit", "--from", "-"], input: #"{"synthetic":{"duration_ms":0}}"# + "\nnot json\n")
    XCTAssertEqual(garbage.code, 65)
    XCTAssertTrue(garbage.err.contains("stdin line 2: task 2: not JSON"), garbage.err)
  }

  /// 600 specs of 4 KiB (2.4 MiB) go in parts no longer than 1 MiB, and are admitted whole; with a
  /// bad spec in the last part, nothing is.
  func testABigBatchIsSentInPartsAndAdmittedWhole() throws {
    try c.initialize([("max_queue", .int(1000))])
    c.ok(["start", "--workers", "1"])
    let pad = String(repeating: "d", count: 4096)
    var batch = ""
    for _ in 0..<600 { batch += #"{"synthetic":{"duration_ms":0},"description":"\#(pad)"}"# + "\n" }
    var bad = batch
    bad += #"{"synthetic":{"duration_ms":0},"priority":"urgent"}"# + "\n"
    let refused = c.run(["submit", "--from", "-"], input: bad, timeoutS: 60)
    XCTAssertEqual(refused.code, 65, refused.err)
    XCTAssertTrue(refused.err.contains("stdin line 601: task 601 of 601: priority"), refused.err)
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" }, "part of a refused batch was admitted")
    let ok = c.ok(["submit", "--from", "-"], input: batch, timeoutS: 60)
    XCTAssertEqual(ok.out.split(separator: "\n").count, 600)
    XCTAssertEqual(c.events().filter { $0.type == "task.submitted" }.count, 600)
  }
}
