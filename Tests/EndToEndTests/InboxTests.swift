import CortexCore
import Posix
import XCTest

/// SPEC §2: specs dropped into `inbox/` are submitted; bad ones move to `inbox/rejected/` with a
/// `.error` file beside them, and nothing there can stop the daemon serving.
final class InboxTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// The `.error` file written for a rejected inbox entry, once there is one.
  func rejection(_ name: String) -> String? {
    ((try? FileSystem.read(c.paths.inboxRejected + "/" + name + ".error")) ?? nil).map { String(decoding: $0, as: UTF8.self) }
  }

  /// A FIFO named `*.json` used to block the daemon's loop forever in open(2) (no writer ever
  /// came), so it answered nothing; a file larger than a request was read whole into memory.
  func testAFIFOOrAnOversizedFileInTheInboxIsRejectedAndTheDaemonServes() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    let fifo = c.paths.inbox + "/pipe.json"
    try FileSystem.makeFIFO(fifo)
    // Whitespace around a valid spec: only its size is wrong (the default limit is 8 MiB).
    let big = Array(repeating: UInt8(32), count: 9 << 20) + Array(#"{"synthetic":{"duration_ms":1}}"#.utf8)
    try FileSystem.writeAtomically(c.paths.inbox + "/big.json", big, durable: false)
    c.eventually("both rejected", timeoutS: 15) { rejection("pipe.json") != nil && rejection("big.json") != nil }
    // Before the fix the daemon was stuck in open(2): let it go, so the test ends either way.
    if let w = try? FileDescriptor.open(fifo, [.writeOnly, .nonBlocking]) { w.close() }
    XCTAssertTrue(rejection("pipe.json")?.contains("not a regular file") == true, rejection("pipe.json") ?? "no .error")
    XCTAssertTrue(rejection("big.json")?.contains("max_request_bytes") == true, rejection("big.json") ?? "no .error")
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" }, "a rejected inbox file was accepted")
    c.ok(["submit", "--wait", "--synthetic", "1"], timeoutS: 30)
    XCTAssertEqual(c.daemonPID, pid)
  }

  /// `[]` (a batch of no tasks) used to stay in `inbox/` for good, neither accepted nor
  /// rejected, with no word of why.
  func testAnEmptyBatchInTheInboxIsRejectedNamingTasks() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    try FileSystem.writeAtomically(c.paths.inbox + "/empty.json", Array("[]\n".utf8), durable: false)
    c.eventually("empty.json rejected", timeoutS: 15) { rejection("empty.json") != nil }
    XCTAssertTrue(rejection("empty.json")?.contains("tasks: no task given") == true, rejection("empty.json") ?? "no .error")
    XCTAssertFalse(FileSystem.exists(c.paths.inbox + "/empty.json"))
    c.ok(["submit", "--wait", "--synthetic", "1"], timeoutS: 30)
  }

  /// A field given twice in an inbox spec ran its last copy; and the inbox skipped the check the
  /// socket makes of labels (a label with no name was accepted from a file, refused from `submit`).
  func testAnInboxSpecWithAFieldTwiceOrANamelessLabelIsRejectedNamingIt() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    try FileSystem.writeAtomically(
      c.paths.inbox + "/twice.json", Array(#"{"shell":"exit 0","shell":"exit 7"}"#.utf8), durable: false)
    try FileSystem.writeAtomically(c.paths.inbox + "/label.json", Array(#"{"shell":"true","labels":{"":"x"}}"#.utf8), durable: false)
    c.eventually("both rejected", timeoutS: 15) { rejection("twice.json") != nil && rejection("label.json") != nil }
    XCTAssertTrue(rejection("twice.json")?.contains("shell: is given twice") == true, rejection("twice.json") ?? "no .error")
    XCTAssertTrue(rejection("label.json")?.contains("labels: every label needs a name") == true, rejection("label.json") ?? "no .error")
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" }, "a rejected inbox file was accepted")
  }

  /// Found by killing the daemon during bursts of inbox files: one killed after an inbox file's
  /// `task.submitted` was durable but before the file moved to `accepted/` found the file still
  /// in `inbox/` at its next start and submitted it again — two tasks from one file. The crash
  /// point is `CORTEX_FAULT=inbox.settle` (a kill -9 at that moment).
  func testAFileSubmittedJustBeforeACrashIsMovedNotSubmittedAgain() throws {
    try c.initialize()
    c.environment = ["CORTEX_FAULT=inbox.settle"]
    c.ok(["start", "--workers", "1"])
    c.environment = []
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    let batch = Array("[{\"synthetic\": {\"duration_ms\": 1}}, {\"synthetic\": {\"duration_ms\": 1}}]\n".utf8)
    try c.dropInInbox("batch.json", batch)
    c.eventually("the daemon exits at inbox.settle") { !Processes.isAlive(pid) }
    let before = c.events().filter { $0.type == "task.submitted" }.compactMap(\.taskID)
    XCTAssertEqual(before.count, 2, "the crash came after the batch's tasks were logged")
    XCTAssertTrue(FileSystem.exists(c.paths.inbox + "/batch.json"), "the crash came before the file moved")

    c.ok(["start", "--workers", "1"])
    // Moved either way (its tasks are logged before it moves): count them once it has.
    c.eventually("batch.json leaves inbox/") { !FileSystem.exists(c.paths.inbox + "/batch.json") }
    XCTAssertTrue(FileSystem.exists(c.paths.inboxAccepted + "/batch.json"))
    c.ok(["wait"] + before, timeoutS: 30)
    let after = c.events().filter { $0.type == "task.submitted" }.compactMap(\.taskID)
    XCTAssertEqual(after, before, "one file must be one batch of tasks, not two")
    let moved = c.events().first { $0.type == "inbox.accepted" && $0["reason"]?.string == "already_submitted" }
    XCTAssertEqual(moved?["task_ids"]?.array?.compactMap(\.string), before)

    // The same name dropped again after the move is a new file: submitted as usual.
    try FileSystem.writeAtomically(c.paths.inbox + "/batch.json", batch, durable: false)
    c.eventually("the file dropped again is submitted") { c.events().filter { $0.type == "task.submitted" }.count == 4 }
  }
}
