import CortexCore
import Posix
import XCTest

/// Sealing rewrote `events/manifest.json`, which lists every sealed segment, once per segment:
/// quadratic in their number. With small segments (`log_segment_bytes` 4096, the least allowed)
/// and the log kept whole, 15,000 synthetic tasks made 1,900 segments; the lifecycle thread fell
/// more than a minute behind the writer, took a core from the loop (the run took 55 s, 16 s now),
/// and `cortex stop` waited 74 s for it. One job now seals every segment rotated since the last.
final class LogSealingTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testSealingKeepsUpWithManySmallSegments() throws {
    try c.initialize([
      ("log_segment_bytes", .int(4096)), ("max_queue", .int(10_000)),
      ("retention", .object([("log_days", .int(0)), ("log_bytes", .int(0))])),
    ])
    c.ok(["start", "--workers", "4"])
    let batch = String(repeating: "{\"synthetic\": {\"duration_ms\": 0}}\n", count: 8000)
    c.ok(["submit", "-p", "--from", "-"], input: batch)
    c.eventually("the 8,000 tasks end", timeoutS: 120) {
      c.run(["status"]).out.contains("queue      0 queued")
    }
    func rotated() -> [Int] { LogSegments.indexes((try? FileSystem.list(c.paths.events)) ?? []).dropLast() }
    func sealed() -> Int? { ((try? FileSystem.read(c.paths.manifest)) ?? nil).flatMap { try? Manifest.decode($0) }?.segments.last?.index }
    XCTAssertGreaterThan(rotated().count, 900, "the log was cut into many small segments")
    c.eventually("the manifest lists every rotated segment soon after the writer left it", timeoutS: 10) {
      let r = rotated()
      return sealed() != nil && sealed()! >= (r.last ?? 0)
    }
    let t0 = Clock.monotonicMs()
    c.ok(["stop"])
    XCTAssertLessThan(Clock.monotonicMs() - t0, 10_000, "cortex stop waits for no backlog of seals")
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--wait", "--synthetic", "1"])
    XCTAssertEqual(c.ok(["doctor"]).code, 0)
  }
}
