import CortexCore
import Posix
import XCTest

/// daemon.log holds the detached daemon's messages and its workers' and hooks' output: a hook that
/// prints for every task grew it for ever. Past `retention.daemon_log_bytes` its newest bytes move
/// to daemon.log.1 and it starts again, every writer going on at its new end.
final class DaemonLogTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func size(_ path: String) -> Int { (try? FileSystem.read(path))??.count ?? -1 }
  func text(_ path: String) -> String { String(decoding: ((try? FileSystem.read(path)) ?? nil) ?? [], as: UTF8.self) }

  func testADaemonLogPastItsLimitMovesToDaemonLog1AndEveryWriterGoesOn() throws {
    let limit = 65_536
    // 30,000 bytes of one letter and a newline from each task's hook: a hook's output is appended
    // to daemon.log.
    let hook = "head -c 30000 /dev/zero | tr '\\0' \"$(echo $CORTEX_TASK_ID | tail -c 2)\"; echo"
    try c.initialize([("on_finish", .string(hook)), ("retention", .object([("daemon_log_bytes", .int(Int64(limit)))]))])
    c.ok(["start", "--workers", "2"])
    let log = c.root + "/daemon.log", old = log + ".1"
    for _ in 0..<8 { c.ok(["submit", "-p", "--wait", "--no-env", "--", "true"]) }
    c.eventually("daemon.log to move to daemon.log.1 (checked every 5 s)", timeoutS: 30) {
      FileSystem.exists(old) && size(log) < limit
    }
    XCTAssertGreaterThanOrEqual(size(old), limit, "daemon.log.1 holds the newest \(limit) bytes")
    XCTAssertLessThan(size(old), limit + 8 * 30_001)
    XCTAssertEqual(try FileSystem.status(old).map { $0.mode & 0o777 }, 0o600, "hook output may be private")
    XCTAssertTrue(
      text(log).contains("daemon.log passed retention.daemon_log_bytes (\(limit)); what it held is in daemon.log.1"), text(log))
    // The hooks (and the daemon, and its workers) write on at daemon.log's new end.
    let next = c.ok(["submit", "-p", "--wait", "--no-env", "--", "true"]).out.trimmed
    let letter = String(next.last!)
    c.eventually("the next hook's output in daemon.log") { text(log).contains(String(repeating: letter, count: 30_000)) }
    XCTAssertFalse(text(log).hasPrefix("\0"), "no hole where the cut was")
    XCTAssertEqual(c.run(["status"]).code, 0)
  }

  func testALimitBelowItsFloorIsRefusedNamingIt() throws {
    try c.initialize([("retention", .object([("daemon_log_bytes", .int(1000))]))])
    let r = c.run(["start"])
    XCTAssertNotEqual(r.code, 0)
    XCTAssertTrue(r.err.contains("retention.daemon_log_bytes: must be 0 (no limit) or at least 65536"), r.err)
  }
}
