import XCTest

@testable import CortexCore

/// `TaskRecord` keeps its fields in a shared copy-on-write box: a record whose box is copied must
/// keep every field, and a change to one record must never show in another.
final class TaskRecordTests: XCTestCase {
  private func filled() -> TaskRecord {
    var spec = TaskSpec()
    spec.command = ["echo", "hi"]
    spec.type = "reviewer"
    var r = TaskRecord(
      number: 42, spec: spec, specJSON: Array("{}".utf8), maxAttempts: 3, budget: 500, timeoutMs: 9_000, submittedMs: 1)
    r.state = .running
    r.attempt = 2
    r.reserved = 400
    r.tokensUsed = 17
    r.worker = 5
    r.pid = 4242
    r.assignedMs = 2
    r.startedMs = 3
    r.endedMs = 4
    r.exitCode = 7
    r.signal = 9
    r.reason = "why"
    r.detail = "why, in a sentence"
    r.notBeforeMs = 5
    r.deadlineMs = 6
    r.workerKills = 1
    r.stopping = .timeout
    r.stopDeadlineMs = 8
    r.waitingReason = "group_full"
    r.progress = 0.5
    r.message = "half"
    r.lastProgressLogMs = 10
    r.enqueueSeq = 11
    r.inQueue = true
    r.group = 12
    r.rateLimitedRetries = 13
    return r
  }

  /// Every stored field of the record (its box's `Fields`), by name, as text.
  private func fields(_ r: TaskRecord) -> [String: String] {
    guard let box = Mirror(reflecting: r).children.first?.value,
      let stored = Mirror(reflecting: box).children.first?.value
    else { return [:] }
    var out: [String: String] = [:]
    for c in Mirror(reflecting: stored).children { out[c.label ?? "?"] = String(describing: c.value) }
    return out
  }

  func testACopyKeepsEveryFieldAndAChangeStaysInItsRecord() {
    let original = filled()
    let before = fields(original)
    XCTAssertEqual(before.count, 33, "TaskRecord has a new field: set it in filled() so that the copy below checks it")
    var copy = original
    copy.state = .succeeded  // the box is shared: this copies it first
    var after = fields(copy)
    XCTAssertEqual(after["state"], "succeeded")
    after["state"] = before["state"]
    XCTAssertEqual(after, before, "a field was lost when the box was copied")
    XCTAssertEqual(original.state, .running, "a change to the copy showed in the original")
    copy.spec.command = ["true"]
    XCTAssertEqual(original.spec.command ?? [], ["echo", "hi"])
    XCTAssertEqual(copy.spec.command ?? [], ["true"])
  }

  func testARecordHeldElsewhereDoesNotSeeAChangeMadeThroughTheTable() {
    var table: [Int: TaskRecord] = [42: filled()]
    let held = table[42]!
    table[42]!.tokensUsed = 99
    XCTAssertEqual(held.tokensUsed, 17, "a record held elsewhere saw a change made through the table")
    XCTAssertEqual(table[42]!.tokensUsed, 99)
  }

  func testAStatesOrdinalIsItsPlaceInAllCases() {
    // The hot state file stores `ordinal` and reads it back through `allCases`.
    for (i, s) in TaskState.allCases.enumerated() { XCTAssertEqual(s.ordinal, i, "\(s)") }
  }
}
