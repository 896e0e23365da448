import CortexCore
import Posix
import XCTest

/// `cortex tail -f` behind its reader (a slow pipe, a paused pager) while retention removed the
/// segments it had not read yet stopped for good: it waited for the segment after its own, which
/// was gone too, printed nothing more and never ended. It goes on from the oldest segment left,
/// and says which events it could not show.
final class NewUserTailRetentionTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testAFollowerBehindRetentionGoesOnFromTheOldestSegmentLeft() throws {
    try c.initialize([
      ("log_segment_bytes", .int(4096)), ("snapshot_interval_s", .int(1)), ("max_queue", .int(5000)),
      ("retention", .object([("log_bytes", .int(16384))])),
    ])
    c.ok(["start", "--workers", "2"])
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"]
    let (r, w) = try makePipe()
    let errPath = c.scratch + "/tail.err"
    let e = try FileDescriptor.open(errPath, [.writeOnly, .create, .truncate])
    let pid = try Processes.spawn(
      [Cortex.binary, "--dir", c.root, "--json", "tail", "-f", "-n", "0"], environment: env, stdin: nil, stdout: w, stderr: e,
      newProcessGroup: false)
    w.close()
    e.close()
    defer {
      r.close()
      if Processes.reap(pid) == nil {
        _ = Processes.signal(pid, Signal.kill)
        _ = Processes.wait(pid)
      }
    }
    // Nothing reads the pipe: the follower blocks once it is full (64 KiB), while the log moves
    // on through segments of 4 KiB and retention keeps 16 KiB of them.
    let batch = String(repeating: "{\"synthetic\": {\"duration_ms\": 0}}\n", count: 1500)
    c.ok(["submit", "-p", "--from", "-"], input: batch)
    c.eventually("the batch ends", timeoutS: 60) { c.run(["status"]).out.contains("queue      0 queued") }
    c.eventually("retention removed segments the follower had not read", timeoutS: 30) {
      (LogSegments.indexes((try? FileSystem.list(c.paths.events)) ?? []).first ?? 0) > 40
    }
    let last = c.ok(["submit", "-p", "--wait", "--synthetic", "1"]).out.trimmed
    var out: [UInt8] = []
    c.eventually("the follower reaches the newest task's events", timeoutS: 20) {
      while r.waitReadable(timeoutMs: 50) {
        guard let k = try? r.read(appendingTo: &out, max: 1 << 16), k > 0 else { break }
      }
      return String(decoding: out, as: UTF8.self).contains("\"type\":\"task.succeeded\",\"task_id\":\"\(last)\"")
    }
    let said = String(decoding: (try FileSystem.read(errPath)) ?? [], as: UTF8.self)
    XCTAssertTrue(said.contains("were removed by retention (retention.log_bytes / log_days in config.json) before tail read them"), said)
  }
}
