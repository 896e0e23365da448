import CortexCore
import Posix

/// What a start recovered from the snapshot and the log.
struct Recovered {
  var scheduler: Scheduler
  /// Seq of the snapshot used (0: none).
  var snapshotSeq: UInt64
  /// Seq of the snapshot kept before it (`task-queue.prev.json`; 0: none): retention removes
  /// only what both cover.
  var previousSnapshotSeq: UInt64
  var lastSeq: UInt64
  var replayed: Int
  /// Bytes recovery read from the log's segments, and how many segments it read: what start-up
  /// costs in the log, counted rather than timed (`daemon.recovered`'s `log_bytes_read` and
  /// `segments_read`; `RetentionTests` checks that they do not grow with the history).
  var logBytesRead: Int
  var segmentsRead: Int
  var notes: [Event]
  var manifest: Manifest
  /// No valid manifest was found: this one is new and must be written.
  var manifestIsNew: Bool
  var plan: RecoveryPlan
  /// Compact records of the tasks that ended in the replayed events.
  var records: [(task: Int, record: FinishedRecord)]
  /// Inbox files submitted in the replayed events and not moved to `accepted/` after.
  var inbox: InboxLedger
  var tookMs: Int64
  /// CPU time recovery used (what it costs on an idle machine).
  var cpuMs: Int64
}

/// Recovery at start (SPEC §5, §9, §13), kept apart from the rest of start-up: the newest
/// readable snapshot, then only the part of the log it does not cover. Sealed segments before
/// that are trusted by size (their checksums are compared by the lifecycle's scrub after the
/// start); every segment read is checked line by line, sealed ones against their CRC32C too.
extension Daemon {
  static func recoverState(paths: Paths, config: Config) throws(StartupError) -> Recovered {
    let t0 = Clock.monotonicMs()
    let cpu0 = Clock.threadCPUNs()
    var notes: [Event] = []
    func fresh() -> Scheduler { Scheduler(config: config, seed: UInt64(truncatingIfNeeded: Clock.monotonicNs())) }

    // The newest snapshot that restores; a bad one is set aside (never deleted) with a warning.
    var scheduler = fresh()
    var snapshotSeq: UInt64? = nil
    var position: RecoveryPlan.Position? = nil
    var previousSeq: UInt64 = 0
    for (i, path) in [paths.taskQueue, paths.taskQueuePrevious].enumerated() {
      guard let bytes = (try? FileSystem.read(path)) ?? nil else { continue }
      do {
        let v = try JSON.parse(bytes)
        var s = fresh()
        let seq = try s.restore(snapshot: v)
        scheduler = s
        snapshotSeq = seq
        position = Self.logPosition(v)
        if i == 0 { previousSeq = Self.leadingSnapshotSeq(paths.taskQueuePrevious) ?? 0 }
        break
      } catch {
        let aside = path + ".bad-\(Clock.wallMs())"
        try? FileSystem.rename(path, aside)
        notes.append(
          Event(
            "daemon.warning", reason: "snapshot_invalid",
            detail: "\(FileSystem.basename(path)) set aside as \(FileSystem.basename(aside)): \(error)"))
      }
    }
    let (hotNote, hot) = checkHotState(paths: paths)
    if let hotNote { notes.append(hotNote) }

    var manifest: Manifest? = nil
    if let bytes = (try? FileSystem.read(paths.manifest)) ?? nil {
      do throws(Manifest.DecodeError) {
        manifest = try Manifest.decode(bytes)
      } catch {
        let aside = paths.manifest + ".bad-\(Clock.wallMs())"
        try? FileSystem.rename(paths.manifest, aside)
        notes.append(
          Event(
            "daemon.warning", reason: "manifest_invalid",
            detail: "events/manifest.json \(error); set aside as \(FileSystem.basename(aside)); every segment is sealed again"))
      }
    }

    let files = try Self.segmentFiles(paths, manifest: manifest)
    var plan: RecoveryPlan
    do throws(RecoveryPlan.Refusal) {
      plan = try RecoveryPlan.make(manifest: manifest, files: files, snapshotSeq: snapshotSeq, position: position)
      if let first = plan.reads.first, first.offset > 0, !Self.startsLine(paths, first, after: plan.replayAfter) {
        // The snapshot's position does not fall on a line after its seq: find the place by seq.
        plan = try RecoveryPlan.make(manifest: manifest, files: files, snapshotSeq: snapshotSeq, position: nil)
      }
    } catch {
      throw StartupError("cannot recover \(paths.root): \(error); nothing was changed. Run: cortex doctor --dir \(paths.root)")
    }
    for i in plan.strays {
      notes.append(
        Event(
          "daemon.warning", reason: "segment_stray",
          detail: "events/\(LogSegments.name(i)) lies before the retained log (manifest.json) and is ignored"))
    }

    // Replay what the snapshot does not cover.
    let after = plan.replayAfter
    var lastSeq: UInt64 = 0
    var replayed = 0
    var logBytesRead = 0
    var records: [(task: Int, record: FinishedRecord)] = []
    var inbox = InboxLedger()
    var truncated = false
    let lastIndex = files.last?.index
    for (k, r) in plan.reads.enumerated() {
      let name = LogSegments.name(r.index)
      let path = paths.events + "/" + name
      let bytes: [UInt8]
      let base: Int
      do throws(PosixError) {
        let fd = try FileDescriptor.open(path, .readOnly)
        defer { fd.close() }
        // Whole when a checksum covers what lies before the offset; else from the offset.
        base = r.sealed == nil && r.prefixCRC32C == nil ? r.offset : 0
        bytes = try fd.readToEnd(from: base)
        logBytesRead += bytes.count
      } catch {
        throw StartupError("cannot read \(path): \(error)")
      }
      if let s = r.sealed, bytes.count != s.bytes || FastCRC32C.checksum(bytes) != s.crc32c {
        throw StartupError(
          "\(path) does not match the size and CRC32C it was sealed with (events/manifest.json): it changed after it was sealed; nothing was changed. Run: cortex doctor --repair --dir \(paths.root)"
        )
      }
      if let crc = r.prefixCRC32C, r.sealed == nil,
        bytes.count < r.offset || bytes[..<r.offset].withUnsafeBytes({ FastCRC32C.checksum($0) }) != crc
      {
        throw StartupError(
          "\(path) is corrupt before byte \(r.offset): it does not match the CRC32C the snapshot recorded for it; nothing was changed. Run: cortex doctor --repair --dir \(paths.root)"
        )
      }
      let begin = r.offset - base
      let skipped = LogSegments.skip(bytes[begin...], through: after)
      let previous = max(k == 0 ? r.previousSeq : lastSeq, skipped.lastSeq ?? 0)
      let scan = LogSegments.scan(bytes[skipped.index...], after: previous, parseAfter: after) { v in
        guard let q = v["seq"]?.int, UInt64(q) > after else { return }
        scheduler.replay(v)
        inbox.replay(v)
        replayed += 1
        if let n = v["task_id"]?.string.flatMap(TaskID.parse), let t = scheduler.tasks[n], t.state.isTerminal,
          let r = FinishedRecord.from(event: v, hadDirectory: t.spec.synthetic == nil)
        {
          records.append(r)
        }
      }
      // Only a complete, valid first line says where the segment goes on: a torn one (the scan
      // found no valid line before it) may hold any number, and is cut below, not a gap.
      if scan.lines > 0, let first = LogSegments.leadingSeq(bytes[skipped.index...]),
        first > max(previous, after) + 1, previous > 0 || after > 0
      {
        // Events that no snapshot covers are missing before this segment (one removed by hand,
        // and `cortex doctor --repair` dropped it from the manifest): what they held is lost.
        let from = max(previous, after) + 1
        notes.append(
          Event(
            "daemon.warning", reason: "log_gap",
            detail:
              "events/\(name) continues at seq \(first) but the log before it ends at seq \(previous), and \(after > 0 ? "the snapshot covers only through seq \(after)" : "there is no snapshot"): events \(from)–\(first - 1) are missing (a segment removed?); tasks submitted in them are unknown to this daemon",
            fields: [("segment", .string(name)), ("first_missing", .int(Int64(from))), ("last_missing", .int(Int64(first - 1)))]))
      }
      if let at = scan.corruptAt {
        throw StartupError(
          "\(path) is corrupt at byte \(base + at) (\(scan.corruptReason ?? "bad line")); nothing was changed. Run: cortex doctor --repair --dir \(paths.root)"
        )
      }
      if scan.tornTail {
        guard r.index == lastIndex, r.sealed == nil else {
          throw StartupError(
            "\(path) ends with a torn line but is not the last segment; run: cortex doctor --repair --dir \(paths.root)")
        }
        let end = base + scan.validEnd
        let cut = base + bytes.count - end
        do throws(PosixError) {
          let fd = try FileDescriptor.open(path, .writeOnly)
          try fd.truncate(to: end)
          try fd.fsync()
          fd.close()
        } catch {
          throw StartupError("cannot truncate the torn tail of \(path): \(error)")
        }
        truncated = true
        notes.append(
          Event(
            "log.truncated", reason: "torn_tail", detail: "cut \(cut) bytes of an incomplete last line from \(name)",
            fields: [("segment", .string(name)), ("bytes", .int(Int64(cut))), ("offset", .int(Int64(end)))]))
      }
      lastSeq = max(scan.lastSeq, previous)
    }
    if let m = manifest, let s = m.segments.last, plan.reads.isEmpty { lastSeq = max(lastSeq, s.lastSeq) }
    // The snapshot may be ahead of the log (the log lost its tail): its seq is never reused.
    lastSeq = max(lastSeq, snapshotSeq ?? 0, manifest?.removedThrough?.lastSeq ?? 0)
    // So may the hot state, which is written after the log: then the log lost its end (its
    // newest segment removed or cut by hand, or set aside by `cortex doctor --repair`). Say so,
    // unless a torn last line explains it, and never give out those seqs and task numbers again.
    if let hot, hot.lastSeq > lastSeq {
      let numbered = hot.nextTask > scheduler.nextTaskNumber ? (scheduler.nextTaskNumber, hot.nextTask - 1) : nil
      if !truncated {
        let tasks = numbered.map {
          "; \(TaskID.format($0.0))\($0.1 > $0.0 ? "…" + TaskID.format($0.1) : "") were numbered in them and are unknown to this daemon"
        }
        notes.append(
          Event(
            "daemon.warning", reason: "log_behind",
            detail:
              "hot-state.mmap saw seq \(hot.lastSeq) but the log ends at seq \(lastSeq): events \(lastSeq + 1)–\(hot.lastSeq) are missing (the newest segment removed or cut?)\(tasks ?? ""); their seqs and task numbers are not used again",
            fields: [("first_missing", .int(Int64(lastSeq + 1))), ("last_missing", .int(Int64(hot.lastSeq)))]))
      }
      lastSeq = hot.lastSeq
    }
    if let hot { scheduler.neverReuse(taskNumbersBelow: hot.nextTask) }

    var m = manifest ?? Manifest()
    if manifest == nil {
      // Records of finished tasks exist from here on; older segments get theirs when sealed.
      m.recordsFromSeq = (snapshotSeq ?? 0) + 1
    }
    return Recovered(
      scheduler: scheduler, snapshotSeq: snapshotSeq ?? 0, previousSnapshotSeq: snapshotSeq == nil ? 0 : previousSeq,
      lastSeq: lastSeq, replayed: replayed, logBytesRead: logBytesRead, segmentsRead: plan.reads.count, notes: notes, manifest: m,
      manifestIsNew: manifest == nil, plan: plan,
      records: records, inbox: inbox, tookMs: Clock.monotonicMs() - t0, cpuMs: (Clock.threadCPUNs() - cpu0) / 1_000_000)
  }

  /// The segment files with their sizes, and for those the manifest does not list, the seq of
  /// their first line (its first 4 KiB at most; none for a segment holding only a torn line).
  static func segmentFiles(_ paths: Paths, manifest: Manifest?) throws(StartupError) -> [RecoveryPlan.SegmentFile] {
    let indexes: [Int]
    do { indexes = LogSegments.indexes(try FileSystem.list(paths.events)) } catch {
      throw StartupError("cannot list \(paths.events): \(error)")
    }
    return indexes.map { i in
      let path = paths.events + "/" + LogSegments.name(i)
      var f = RecoveryPlan.SegmentFile(index: i, size: FileSystem.size(path) ?? 0)
      if manifest?.segment(i) == nil {
        f.firstSeq = Self.firstBytes(path, 4096).flatMap { LogSegments.firstLineSeq($0[...], fileSize: f.size) }
      }
      return f
    }
  }

  /// Whether the snapshot's position is the start of a line newer than its seq (or the end).
  static func startsLine(_ paths: Paths, _ r: RecoveryPlan.Read, after seq: UInt64) -> Bool {
    guard let fd = try? FileDescriptor.open(paths.events + "/" + LogSegments.name(r.index), .readOnly) else { return false }
    defer { fd.close() }
    var b = [UInt8](repeating: 0, count: 64)
    let got = (try? b.withUnsafeMutableBytes { p in Result { () throws(PosixError) in try fd.read(at: r.offset - 1, into: p) } }.get()) ?? 0
    guard got >= 1, b[0] == 10 else { return false }
    if got == 1 { return true }  // the end of the segment
    return (LogSegments.leadingSeq(b[1..<got]) ?? 0) > seq
  }

  static func firstBytes(_ path: String, _ n: Int) -> [UInt8]? {
    guard let fd = try? FileDescriptor.open(path, .readOnly) else { return nil }
    defer { fd.close() }
    var b = [UInt8](repeating: 0, count: n)
    let got = (try? b.withUnsafeMutableBytes { p in Result { () throws(PosixError) in try fd.read(at: 0, into: p) } }.get()) ?? 0
    return Array(b[..<got])
  }

  /// `"log": {"segment": "00000003.jsonl", "offset": 123, "crc32c": "…"}` of a snapshot.
  static func logPosition(_ v: JSON) -> RecoveryPlan.Position? {
    guard let name = v["log"]?["segment"]?.string, let i = LogSegments.indexes([name]).first, let o = v["log"]?["offset"]?.int, o >= 0
    else { return nil }
    return RecoveryPlan.Position(segment: i, offset: Int(o), crc32c: v["log"]?["crc32c"]?.string.flatMap { UInt32($0, radix: 16) })
  }

  /// The `seq` a snapshot file starts with (`{ "seq": N,`), read from its first bytes only.
  static func leadingSnapshotSeq(_ path: String) -> UInt64? {
    guard let b = firstBytes(path, 64), let r = b.firstRange(of: Array(#""seq":"#.utf8)) else { return nil }
    let digits = b[r.upperBound...].drop { $0 == 32 }.prefix { $0 >= 48 && $0 <= 57 }
    return UInt64(String(decoding: digits, as: UTF8.self))
  }
}
