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
}
