import CortexCore
import Posix
import XCTest

/// A torn last line of the event log (SPEC §9) in the cases `CrashTests` does not cover: a start
/// that cuts it and then fails for another reason, and a torn line whose `seq` is garbage.
final class TornTailTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// The newest segment of the log.
  var newestSegment: String {
    get throws {
      let last = try XCTUnwrap(LogSegments.indexes(try FileSystem.list(c.paths.events)).last, "the log has no segment")
      return c.paths.events + "/" + LogSegments.name(last)
    }
  }

  /// A log with a few finished tasks and the final snapshot of a stop, then `torn` (no newline)
  /// appended to its newest segment, as a crash in the middle of a write leaves it.
  func logEndingWith(torn: String) throws -> (segment: String, bytes: [UInt8]) {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--wait", "--from", "-"], input: String(repeating: #"{"synthetic":{"duration_ms":1}}"# + "\n", count: 3))
    c.ok(["stop"])
    let segment = try newestSegment
    let clean = try FileSystem.read(segment) ?? []
    XCTAssertEqual(clean.last, 10, "the log does not end with a whole line")
    try FileSystem.writeAtomically(segment, clean + Array(torn.utf8))
    return (segment, clean)
  }

  /// A start cut the torn last line, then failed (here: a cluster it cannot reach). The cut
  /// left no trace: the `log.truncated` event was only buffered, and the next start found a
  /// clean log and said nothing of what was cut. Now the event is written before anything else
  /// of the start can fail, and the next start finds it in the log.
  func testATornTailCutByAStartThatThenFailsIsRecordedInTheLog() throws {
    let torn = #"{"seq":40,"ts":"2026-12-01T05:00:00.000Z","type":"task.subm"#
    let (segment, clean) = try logEndingWith(torn: torn)
    let config = try XCTUnwrap(FileSystem.read(c.paths.config))
    // Nothing listens on port 1: the join fails after recovery cut the tail.
    try c.configure([
      ("cluster", .object([("postgres", .string("postgresql://cortex@127.0.0.1:1/cortex?connect_timeout=2")), ("node", .string("n1"))]))
    ])
    let failed = c.run(["start", "--workers", "1"])
    XCTAssertNotEqual(failed.code, 0, "the start joined a cluster that is not there: \(failed.err)")
    XCTAssertNil(c.daemonPID, "the failed start left its pid file")
    XCTAssertTrue(
      failed.err.contains("cut \(torn.utf8.count) bytes of an incomplete last line"), "the start did not say what it cut: \(failed.err)")
    let after = try FileSystem.read(segment) ?? []
    XCTAssertEqual(Array(after.prefix(clean.count)), clean, "the start changed the log before the torn line")
    XCTAssertEqual(after.last, 10, "the torn line is still there, or the log ends in a partial line")
    let cut = c.events().filter { $0.type == "log.truncated" }
    XCTAssertEqual(cut.count, 1, "the failed start cut \(torn.utf8.count) bytes and logged \(cut.count) log.truncated events")
    XCTAssertEqual(cut.first?["bytes"]?.int, Int64(torn.utf8.count), "\(cut)")
    XCTAssertEqual(cut.first?["reason"]?.string, "torn_tail", "\(cut)")

    // The next start (the cluster setting taken out again) recovers; the cut is on record once.
    try FileSystem.writeAtomically(c.paths.config, config)
    c.ok(["start", "--workers", "1"])
    let events = c.events()
    XCTAssertEqual(events.filter { $0.type == "log.truncated" }.count, 1, "\(events.filter { $0.type == "log.truncated" })")
    let seqs = events.compactMap { $0["seq"]?.int }
    XCTAssertEqual(seqs, seqs.sorted(), "seq does not increase")
    XCTAssertEqual(Set(seqs).count, seqs.count, "a seq was used twice")
    c.ok(["stop"])
    XCTAssertEqual(c.run(["doctor"]).code, 0)
  }

  /// A torn last line whose partial content carries a `seq` far ahead of the log (garbage from
  /// the crash) was read as where the segment goes on: the start warned `log_gap`, events
  /// "missing" that never existed, beside the `log.truncated` that cut the same line.
  func testATornLastLineWithAGarbledSeqIsCutNotReportedAsAGap() throws {
    let torn = #"{"seq":987654321,"ts":"2026-12-01T05:00:00.000Z","type":"task.sub"#
    let (segment, clean) = try logEndingWith(torn: torn)
    let lastSeq = try XCTUnwrap(c.events().last?["seq"]?.int)
    let started = c.ok(["start", "--workers", "1"])
    XCTAssertFalse(started.err.contains("are missing"), "the start reports missing events: \(started.err)")
    let events = c.events()
    XCTAssertNil(events.first { $0["reason"]?.string == "log_gap" }, "a torn line was reported as a gap: \(events.last!)")
    let cut = try XCTUnwrap(events.first { $0.type == "log.truncated" }, "no log.truncated")
    XCTAssertEqual(cut["bytes"]?.int, Int64(torn.utf8.count), cut.encoded())
    XCTAssertEqual(cut["seq"]?.int, lastSeq + 1, "the seq after the cut does not follow the log's last whole line: \(cut.encoded())")
    XCTAssertEqual(Array((try FileSystem.read(segment) ?? []).prefix(clean.count)), clean)
    c.ok(["stop"])
    XCTAssertEqual(c.run(["doctor"]).code, 0)
  }

  /// A crash in the first write to a segment just begun leaves it holding only a torn line. The
  /// seq at the start of that line (here garbage: 1) was taken as where the segment begins, so the
  /// segment before it seemed to end at seq 0 and, with no snapshot to start from, was skipped:
  /// the start knew none of the tasks in it.
  func testASegmentHoldingOnlyATornLineDoesNotHideTheSegmentBeforeIt() throws {
    try c.initialize([("snapshot_interval_s", .int(3600)), ("orphan_timeout_s", .double(0.05))])
    c.ok(["start", "--workers", "1"])
    c.ok(["pause"])
    let ids = (0..<3).map { _ in c.ok(["submit", "-p", "--", "true"]).out.trimmed }
    let pid = try XCTUnwrap(c.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the daemon is gone") { !Processes.isAlive(pid) }
    c.eventually("its worker is gone") { c.leftovers.filter { !$0.isZombie }.isEmpty }
    XCTAssertFalse(FileSystem.exists(c.paths.taskQueue), "a snapshot covers the log")
    let segments = LogSegments.indexes(try FileSystem.list(c.paths.events))
    XCTAssertEqual(segments, [1])
    let torn = #"{"seq":1,"ts":"2026-12-01T05:00:00.000Z","type":"task.sub"#
    try FileSystem.writeAtomically(c.paths.events + "/" + LogSegments.name(2), Array(torn.utf8))

    c.ok(["start", "--workers", "1"])
    for id in ids {
      let shown = try JSON.parse(Array(c.ok(["--json", "show", id]).out.utf8))
      XCTAssertEqual(shown["state"]?.string, "queued", "\(id) is not queued after the start: \(shown.encoded())")
    }
    let events = c.events()
    XCTAssertTrue(events.contains { $0.type == "log.truncated" && $0["bytes"]?.int == Int64(torn.utf8.count) }, "no log.truncated")
    let seqs = events.compactMap { $0["seq"]?.int }
    XCTAssertEqual(Set(seqs).count, seqs.count, "a seq was used twice")
    c.ok(["resume"])
    c.ok(["wait"] + ids, timeoutS: 60)
    c.ok(["stop"])
  }
}
