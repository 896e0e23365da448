import CortexCore
import XCTest

/// The replay that tells a start which inbox files were submitted but not moved (InboxLedger).
final class InboxLedgerTests: XCTestCase {
  func submitted(_ n: Int, _ file: String, crc: UInt32) -> JSON {
    .object(
      [("type", .string("task.submitted")), ("task_id", .string(TaskID.format(n)))]
        + InboxLedger.fields(file: file, crc32c: crc))
  }

  func accepted(_ file: String) -> JSON {
    .object([("type", .string("inbox.accepted")), ("file", .string(file))])
  }

  func testABatchIsPendingUntilItsMoveIsLoggedAndADropAgainStartsOver() {
    var l = InboxLedger()
    l.replay(.object([("type", .string("task.submitted")), ("task_id", .string("task-000001"))]))
    XCTAssertTrue(l.pending.isEmpty, "a task that did not come from the inbox is not pending")
    l.replay(submitted(2, "a.json", crc: 7))
    l.replay(submitted(3, "a.json", crc: 7))
    XCTAssertEqual(l.pending, ["a.json": .init(crc32c: 7, tasks: [2, 3])])
    l.replay(accepted("a.json"))
    XCTAssertTrue(l.pending.isEmpty)
    // The same name again, other bytes: only the new file's task.
    l.replay(submitted(4, "a.json", crc: 9))
    XCTAssertEqual(l.pending, ["a.json": .init(crc32c: 9, tasks: [4])])
  }
}
