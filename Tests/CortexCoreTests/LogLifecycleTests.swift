import CortexCore
import XCTest

/// The log's lifecycle as pure decisions (SPEC §13): the manifest's encoding and checksum, what
/// retention removes, what a start reads, the compact finished records, and the settings.
final class LogLifecycleTests: XCTestCase {
  /// A sealed segment of 100 bytes per seq, one second per seq.
  func segment(_ i: Int, seqs: ClosedRange<UInt64>, at ms: Int64 = 1_000_000) -> Manifest.Segment {
    Manifest.Segment(
      index: i, bytes: 100 * Int(seqs.count), crc32c: UInt32(i * 7919), firstSeq: seqs.lowerBound, lastSeq: seqs.upperBound,
      firstMs: ms + Int64(seqs.lowerBound) * 1000, lastMs: ms + Int64(seqs.upperBound) * 1000, lines: seqs.count)
  }

  func manifest(_ segments: [Manifest.Segment]) -> Manifest {
    var m = Manifest()
    m.segments = segments
    return m
  }

  // MARK: manifest

  func testManifestRoundTripsAndRefusesEditsAndDisorder() throws {
    var m = manifest([segment(3, seqs: 21...30), segment(4, seqs: 31...40)])
    m.removedThrough = segment(2, seqs: 11...20)
    m.removing = [Manifest.Removal(segment: segment(2, seqs: 11...20), reason: "log_bytes", archivedAs: "archive/00000002.jsonl.gz")]
    m.recordsFromSeq = 5
    let bytes = m.encoded()
    XCTAssertEqual(try Manifest.decode(bytes), m)
    XCTAssertNoThrow(try JSON.parse(bytes), "people read it with jq")
    XCTAssertTrue(String(decoding: bytes, as: UTF8.self).contains("\n    {\"segment\":\"00000003.jsonl\""), "one segment per line")

    // One digit changed: the content no longer matches its checksum.
    var edited = String(decoding: bytes, as: UTF8.self)
    edited = edited.replacing("\"bytes\":1000", with: "\"bytes\":1001")
    XCTAssertThrowsError(try Manifest.decode(Array(edited.utf8)))
    XCTAssertThrowsError(try Manifest.decode(Array("{\"version\":1}".utf8)))
    XCTAssertThrowsError(try Manifest.decode(Array(bytes.prefix(bytes.count / 2))), "a torn manifest does not parse")

    let disorder = manifest([segment(4, seqs: 31...40), segment(3, seqs: 21...30)])
    XCTAssertThrowsError(try Manifest.decode(disorder.encoded()), "segments must follow one another")
    XCTAssertEqual(m.segment(4)?.lastSeq, 40)
    XCTAssertNil(m.segment(2))
    XCTAssertEqual(m.retainedFromSeq, 21)
  }

  // MARK: retention

  func testRetentionByBytesRemovesTheOldestCoveredSegmentsOnly() {
    var settings = RetentionSettings()
    settings.logDays = 0
    settings.logBytes = 2400
    let m = manifest([segment(1, seqs: 1...10), segment(2, seqs: 11...20), segment(3, seqs: 21...30)])
    // 3,000 sealed + 500 being written, limit 2,400: two segments must go, both covered.
    var p = Retention.plan(m, coveredSeq: 30, unsealedBytes: 500, settings: settings, nowMs: 0)
    XCTAssertEqual(p.remove.map(\.segment.index), [1, 2])
    XCTAssertEqual(p.remove.map(\.reason), ["log_bytes", "log_bytes"])
    XCTAssertFalse(p.needsSnapshot)
    // The snapshot covers only the first: the second waits, and a snapshot is asked for.
    p = Retention.plan(m, coveredSeq: 15, unsealedBytes: 500, settings: settings, nowMs: 0)
    XCTAssertEqual(p.remove.map(\.segment.index), [1])
    XCTAssertTrue(p.needsSnapshot)
    // Nothing covered: nothing goes.
    p = Retention.plan(m, coveredSeq: 0, unsealedBytes: 500, settings: settings, nowMs: 0)
    XCTAssertEqual(p.remove.count, 0)
    XCTAssertTrue(p.needsSnapshot)
    // Under the limit: nothing to do, nothing asked.
    p = Retention.plan(
      m, coveredSeq: 30, unsealedBytes: 0,
      settings: {
        var s = settings; s.logBytes = 4000; return s
      }(), nowMs: 0)
    XCTAssertEqual(p, Retention.Plan())
  }

  func testRetentionByAgeStopsAtTheFirstYoungSegment() {
    var settings = RetentionSettings()
    settings.logBytes = 0
    settings.logDays = 1
    let day: Int64 = 86_400_000
    let old = segment(1, seqs: 1...10, at: 0)
    let young = segment(2, seqs: 11...20, at: 5 * day)
    let oldAgain = segment(3, seqs: 21...30, at: 0)  // out of order in time: never skipped to
    let m = manifest([old, young, oldAgain])
    let p = Retention.plan(m, coveredSeq: 30, unsealedBytes: 0, settings: settings, nowMs: 5 * day)
    XCTAssertEqual(p.remove.map(\.segment.index), [1], "the log never gets a hole")
    XCTAssertEqual(p.remove.first?.reason, "log_days")
    XCTAssertEqual(Retention.plan(m, coveredSeq: 30, unsealedBytes: 0, settings: .keepEverything, nowMs: 100 * day), Retention.Plan())
  }

  func testCleanRuleSelectsFinishedTasksByAgeAndState() {
    let any = Retention.CleanRule()
    XCTAssertTrue(any.matches(state: .succeeded, endedMs: nil, nowMs: 0))
    XCTAssertFalse(any.matches(state: .running, endedMs: 0, nowMs: 0), "never an unfinished task")
    XCTAssertFalse(any.matches(state: nil, endedMs: 0, nowMs: 0))
    let old = Retention.CleanRule(olderThanMs: 1000, state: .failed)
    XCTAssertTrue(old.matches(state: .failed, endedMs: 0, nowMs: 1000))
    XCTAssertFalse(old.matches(state: .failed, endedMs: 1, nowMs: 1000))
    XCTAssertFalse(old.matches(state: .succeeded, endedMs: 0, nowMs: 5000))
    XCTAssertFalse(old.matches(state: .failed, endedMs: nil, nowMs: 5000), "an unknown end time is not old")
  }

  // MARK: what a start reads

  func files(_ m: Manifest, unsealed: [(Int, Int, UInt64?)]) -> [RecoveryPlan.SegmentFile] {
    m.segments.map { RecoveryPlan.SegmentFile(index: $0.index, size: $0.bytes) }
      + unsealed.map { RecoveryPlan.SegmentFile(index: $0.0, size: $0.1, firstSeq: $0.2) }
  }

  func testAStartReadsOnlyWhatTheSnapshotDoesNotCover() throws {
    let m = manifest([segment(1, seqs: 1...10), segment(2, seqs: 11...20), segment(3, seqs: 21...30)])
    let f = files(m, unsealed: [(4, 500, 31)])
    // From the snapshot's position in the segment being written: one read, nothing before it.
    var p = try RecoveryPlan.make(manifest: m, files: f, snapshotSeq: 33, position: .init(segment: 4, offset: 300))
    XCTAssertEqual(p.reads, [RecoveryPlan.Read(index: 4, offset: 300, previousSeq: 33, sealed: nil)])
    XCTAssertEqual(p.replayAfter, 33)
    XCTAssertEqual(p.toScrub, [1, 2, 3])
    XCTAssertEqual(p.toSeal, [])
    // With the checksum the snapshot recorded for the bytes before its position, checked first.
    p = try RecoveryPlan.make(manifest: m, files: f, snapshotSeq: 33, position: .init(segment: 4, offset: 300, crc32c: 77))
    XCTAssertEqual(p.reads.first?.prefixCRC32C, 77)
    // Without a position (an older snapshot): by seq, from the first segment it does not cover,
    // a sealed one read whole for its checksum.
    p = try RecoveryPlan.make(manifest: m, files: f, snapshotSeq: 25, position: nil)
    XCTAssertEqual(p.reads.map(\.index), [3, 4])
    XCTAssertEqual(p.reads.first?.sealed, m.segments[2])
    XCTAssertEqual(p.reads.first?.previousSeq, 20)
    XCTAssertEqual(p.toScrub, [1, 2])
    // No snapshot and nothing removed: everything.
    p = try RecoveryPlan.make(manifest: m, files: f, snapshotSeq: nil, position: nil)
    XCTAssertEqual(p.reads.map(\.index), [1, 2, 3, 4])
    // A position that disagrees with the manifest (a sealed segment after it is not covered) is ignored.
    p = try RecoveryPlan.make(manifest: m, files: f, snapshotSeq: 15, position: .init(segment: 4, offset: 10))
    XCTAssertEqual(p.reads.map(\.index), [2, 3, 4])
  }

  func testUnsealedSegmentsAreSkippedByTheirFirstSeqAndSealedAfterTheStart() throws {
    // An older directory: no manifest, three segments.
    let f = [
      RecoveryPlan.SegmentFile(index: 1, size: 900, firstSeq: 1), RecoveryPlan.SegmentFile(index: 2, size: 900, firstSeq: 101),
      RecoveryPlan.SegmentFile(index: 3, size: 300, firstSeq: 201),
    ]
    let p = try RecoveryPlan.make(manifest: nil, files: f, snapshotSeq: 150, position: nil)
    XCTAssertEqual(p.reads.map(\.index), [2, 3])
    XCTAssertEqual(p.toSeal, [1, 2], "every segment but the one being written")
    XCTAssertEqual(p.toScrub, [])
  }

  func testAStartRefusesWhatItCannotTrust() {
    var m = manifest([segment(3, seqs: 21...30), segment(4, seqs: 31...40)])
    m.removedThrough = segment(2, seqs: 11...20)
    let good = files(m, unsealed: [(5, 100, 41)])
    XCTAssertNoThrow(try RecoveryPlan.make(manifest: m, files: good, snapshotSeq: 20, position: nil))
    // A sealed segment that changed size, or is missing.
    var changed = good
    changed[0].size += 1
    XCTAssertThrowsError(try RecoveryPlan.make(manifest: m, files: changed, snapshotSeq: 40, position: nil))
    XCTAssertThrowsError(try RecoveryPlan.make(manifest: m, files: Array(good.dropFirst()), snapshotSeq: 40, position: nil))
    // Retention removed events the snapshot does not cover, or there is no snapshot at all.
    XCTAssertThrowsError(try RecoveryPlan.make(manifest: m, files: good, snapshotSeq: 19, position: nil))
    XCTAssertThrowsError(try RecoveryPlan.make(manifest: m, files: good, snapshotSeq: nil, position: nil))
    // Without a manifest: the oldest segments are gone and the snapshot does not reach the rest.
    let gone = [RecoveryPlan.SegmentFile(index: 7, size: 10, firstSeq: 500)]
    XCTAssertThrowsError(try RecoveryPlan.make(manifest: nil, files: gone, snapshotSeq: 100, position: nil))
    XCTAssertNoThrow(try RecoveryPlan.make(manifest: nil, files: gone, snapshotSeq: 499, position: nil))
  }

  func testPendingRemovalsAndStraysAreNotReplayed() throws {
    var m = manifest([segment(3, seqs: 21...30)])
    m.removedThrough = segment(2, seqs: 11...20)
    m.removing = [Manifest.Removal(segment: segment(2, seqs: 11...20), reason: "log_days")]
    let f =
      [RecoveryPlan.SegmentFile(index: 1, size: 5), RecoveryPlan.SegmentFile(index: 2, size: 1000)] + files(m, unsealed: [(4, 10, 31)])
    let p = try RecoveryPlan.make(manifest: m, files: f, snapshotSeq: 20, position: nil)
    XCTAssertEqual(p.reads.map(\.index), [3, 4])
    XCTAssertEqual(p.strays, [1], "segment 2's removal is finished by the lifecycle, not reported as a stray")
  }

  // MARK: log bytes

  func testSkipAndLeadingSeqReadOnlyTheFraming() {
    let log = Array(
      (#"{"seq":7,"ts":"x","type":"a"}"# + "\n" + #"{"seq":8,"ts":"x","type":"a"}"# + "\n" + #"{"seq":9,"ts":"x","type":"a"}"# + "\n"
        + #"{"seq":10,"ts":"x","ty"#).utf8)
    XCTAssertEqual(LogSegments.leadingSeq(log[...]), 7)
    XCTAssertNil(LogSegments.leadingSeq(Array("{\"ts\":1}".utf8)[...]))
    let s = LogSegments.skip(log[...], through: 8)
    XCTAssertEqual(s.lastSeq, 8)
    XCTAssertEqual(LogSegments.leadingSeq(log[s.index...]), 9)
    // The torn last line is never skipped: the scan after it finds it torn.
    let all = LogSegments.skip(log[...], through: 100)
    XCTAssertEqual(LogSegments.leadingSeq(log[all.index...]), 10)
    let scan = LogSegments.scan(log[all.index...], after: 9)
    XCTAssertTrue(scan.tornTail)
    XCTAssertEqual(scan.validEnd, all.index, "offsets are offsets in the whole segment")
  }

  /// A segment's first seq counts only from a whole first line: one that holds only a torn line
  /// (a crash in the first write to it) gives none, whatever number it starts with.
  func testTheFirstSeqOfASegmentComesOnlyFromAWholeFirstLine() {
    let whole = Array((#"{"seq":12,"ts":"x","type":"a"}"# + "\n" + #"{"seq":13,"#).utf8)
    XCTAssertEqual(LogSegments.firstLineSeq(whole[...], fileSize: whole.count), 12)
    let torn = Array(#"{"seq":1,"ts":"x","ty"#.utf8)
    XCTAssertNil(LogSegments.firstLineSeq(torn[...], fileSize: torn.count))
    XCTAssertNil(LogSegments.firstLineSeq(Array((#"{"seq":5,"ts":"x","ty"# + "\n").utf8)[...], fileSize: 100), "a bad line")
    // A first line longer than the bytes read, in a file that goes on: its framing is trusted.
    XCTAssertEqual(LogSegments.firstLineSeq(torn[...], fileSize: 10_000), 1)
  }

  // MARK: compact records

  func testFinishedRecordsRoundTripInEightBytes() {
    let cases = [
      FinishedRecord(state: .succeeded, exitCode: 0, endedMs: 1_764_000_000_123, hadDirectory: true),
      FinishedRecord(state: .failed, exitCode: 3, endedMs: 1, hadDirectory: false),
      FinishedRecord(state: .failed, signal: 9, endedMs: 2, hadDirectory: true),
      FinishedRecord(state: .timedOut, endedMs: (1 << 48) - 1, hadDirectory: false),
      FinishedRecord(state: .cancelled, endedMs: 0, hadDirectory: false),
    ]
    for r in cases {
      let b = r.encoded()
      XCTAssertEqual(b.count, FinishedRecord.size)
      XCTAssertEqual(FinishedRecord.decode(b[...]), r)
    }
    XCTAssertNil(FinishedRecord.decode([UInt8](repeating: 0, count: 8)[...]), "zeros: no record")
    XCTAssertNil(FinishedRecord.decode([0, 0, 0, 0, 0, 0, 1, 0][...]), "queued is not a finished state")
    XCTAssertEqual(FinishedRecord.offset(3), 16 + 24)
    XCTAssertEqual(FinishedRecord.header.count, FinishedRecord.headerSize)
  }

  func testFinishedRecordsComeFromTerminalEvents() throws {
    let line = #"{"seq":5,"ts":"2026-11-29T10:00:00.000Z","type":"task.failed","task_id":"task-000042","attempt":1,"exit_code":2}"#
    let v = try JSON.parse(line)
    let r = FinishedRecord.from(event: v, hadDirectory: true)
    XCTAssertEqual(r?.task, 42)
    XCTAssertEqual(r?.record.state, .failed)
    XCTAssertEqual(r?.record.exitCode, 2)
    XCTAssertEqual(r?.record.endedMs, Timestamp.parse("2026-11-29T10:00:00.000Z"))
    XCTAssertTrue(FinishedRecord.isTerminalLine(Array(line.utf8)[...]))
    let started = #"{"seq":4,"ts":"2026-11-29T10:00:00.000Z","type":"task.started","task_id":"task-000042"}"#
    XCTAssertFalse(FinishedRecord.isTerminalLine(Array(started.utf8)[...]))
    XCTAssertNil(FinishedRecord.from(event: try JSON.parse(started), hadDirectory: true))
    let timedOut = #"{"seq":6,"ts":"2026-11-29T10:00:00.000Z","type":"task.timed_out","task_id":"task-000043","signal":9}"#
    XCTAssertTrue(FinishedRecord.isTerminalLine(Array(timedOut.utf8)[...]))
    XCTAssertEqual(FinishedRecord.from(event: try JSON.parse(timedOut), hadDirectory: false)?.record.signal, 9)
  }

  // MARK: settings and requests

  func testRetentionSettingsDecodeAndFitTheSegmentSize() throws {
    var c = try Config.decode(
      try JSON.parse(
        #"{"log_segment_bytes": 65536, "retention": {"log_days": 7, "log_bytes": 1048576, "task_days": 0.5, "max_output_bytes": 0, "archive": true, "gzip": true}}"#
      ))
    XCTAssertEqual(c.retention.logDays, 7)
    XCTAssertEqual(c.retention.logBytes, 1 << 20)
    XCTAssertEqual(c.retention.taskAgeMs, 43_200_000)
    XCTAssertTrue(c.retention.archive && c.retention.gzip)
    XCTAssertEqual(try Config.decode(c.json()), c, "config.json round-trips")
    // A limit that cannot hold two segments is refused when given, raised when defaulted.
    XCTAssertThrowsError(try Config.decode(try JSON.parse(#"{"log_segment_bytes": 1048576, "retention": {"log_bytes": 1048576}}"#)))
    c = try Config.decode(try JSON.parse(#"{"log_segment_bytes": 1073741824}"#))
    XCTAssertEqual(c.retention.logBytes, 2 << 30)
    for bad in [
      #"{"retention": {"log_days": -1}}"#, #"{"retention": {"gzip": true}}"#, #"{"retention": {"keep": 1}}"#,
      #"{"retention": {"archive": "yes"}}"#, #"{"retention": 5}"#,
    ] {
      XCTAssertThrowsError(try Config.decode(try JSON.parse(bad)), bad)
    }
    XCTAssertEqual(RetentionSettings.keepEverything.logAgeMs, nil)
  }

  func testCleanRequestsAreRangeChecked() throws {
    XCTAssertEqual(try Request.decode(try JSON.parse(#"{"op":"clean"}"#)), .clean(Retention.CleanRule()))
    XCTAssertEqual(
      try Request.decode(try JSON.parse(#"{"op":"clean","older_than_s":3600,"state":"failed"}"#)),
      .clean(Retention.CleanRule(olderThanMs: 3_600_000, state: .failed)))
    for bad in [#"{"op":"clean","state":"running"}"#, #"{"op":"clean","older_than_s":-1}"#, #"{"op":"clean","older_than_s":"1d"}"#] {
      XCTAssertThrowsError(try Request.decode(try JSON.parse(bad)), bad)
    }
  }
}
