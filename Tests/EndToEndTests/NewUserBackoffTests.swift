import CortexCore
import Posix
import XCTest

/// `cortex show` of a task waiting out its retry backoff said `state queued` with no queue line
/// (it has no place in the queue yet), beside the failed attempt's `pid`, `exit code` and
/// `started` as if they were the new attempt's: when it would run again was only in `--json`.
final class NewUserBackoffTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testShowOfATaskWaitingToRetrySaysWhenAndNamesTheLastAttempt() throws {
    try c.initialize([("retry_backoff_base_ms", .int(60_000)), ("retry_backoff_max_ms", .int(60_000))])
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--retries", "2", "--", "sh", "-c", "exit 7"]).out.trimmed
    c.eventually("the first attempt fails and the task waits to retry") {
      c.events().contains { $0.type == "task.retrying" && $0.taskID == id }
    }
    let shown = c.ok(["show", id]).out
    let rows = shown.split(separator: "\n").map(String.init)
    func row(_ name: String) -> String? {
      rows.first { $0.hasPrefix(name + " ") }.map { String($0.dropFirst(name.count)).trimmed }
    }
    XCTAssertEqual(row("state"), "queued", shown)
    XCTAssertEqual(row("attempt"), "2 of 3", shown)
    XCTAssertEqual(row("last exit code"), "7", shown)
    XCTAssertNil(row("exit code"), "the failed attempt's exit code is not the queued attempt's:\n\(shown)")
    XCTAssertNil(row("pid"), shown)
    XCTAssertNotNil(row("last pid"), shown)
    let queue = try XCTUnwrap(row("queue"), "no line says when it runs again:\n\(shown)")
    XCTAssertTrue(queue.hasPrefix("waiting to retry: attempt 2 joins the queue at "), queue)
    XCTAssertTrue(queue.contains("(in "), queue)
    c.ok(["cancel", id])
  }
}
