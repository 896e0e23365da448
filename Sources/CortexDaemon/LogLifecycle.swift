import CortexCore
import Posix
import Synchronization

/// What the lifecycle thread tells the loop (which logs it).
enum LifecycleReport: Sendable {
  case sealed(Manifest.Segment)
  case sealFailed(index: Int, why: String)
  /// A segment is out of the log; `resumed`: a removal a crash interrupted, finished at start.
  case removed(Manifest.Removal, resumed: Bool)
  /// A sealed segment's bytes no longer match its checksum (found by the scrub).
  case corrupt(index: Int, why: String)
  /// `keys`: the idempotency keys the loop forgot with these files.
  case cleaned(client: ClientID?, removed: Int, bytes: Int, keys: Int, reason: String, rule: Retention.CleanRule)
  /// Retention would remove a segment that no durable snapshot covers yet.
  case needsSnapshot
  case warning(reason: String, detail: String)
}

/// The decision log's lifecycle, off the loop (SPEC §13): seals rotated segments (checks every
/// line once, records size and CRC32C in `events/manifest.json`), removes or archives the sealed
/// segments retention lets go, scrubs sealed segments' checksums after a start, and removes
/// finished tasks' files. The decisions are pure (`Retention`, `Manifest`); this class does the
/// I/O, on one background thread that owns the manifest. The loop sends it facts and reads its
/// reports; nothing here waits for the loop or blocks it.
///
/// Every step is safe to interrupt (`Fault` crashes at each one in the tests): a segment is
/// listed as `removing` in a durable manifest before its file goes, and stays listed until the
/// loop has made its `log.segment_removed` event durable; a start finishes what it finds listed.
final class LogLifecycle: @unchecked Sendable {
  // @unchecked: the `var`s below are touched only by jobs on `queue`, which runs one job at a
  // time on one thread (and by `init`, before any job). The rest is immutable or synchronized.
  private let queue: BackgroundQueue
  private let paths: Paths
  private let records: FinishedRecordFile
  private let wakePipe: (read: FileDescriptor, write: FileDescriptor)
  private let outbox = Mutex<[LifecycleReport]>([])
  private let stopping = Atomic<Bool>(false)
  /// Segments rotated away and not yet taken by a seal job: one job seals all that came since
  /// the last one took them, with one write of the manifest.
  private let rotated = Mutex<[Int]>([])

  private var manifest: Manifest
  /// A segment that failed its seal: it and later ones stay unsealed (`cortex doctor` says why).
  private var sealBlockedAt: Int?
  private var coveredSeq: UInt64 = 0
  private var settings: RetentionSettings?

  init(paths: Paths, records: FinishedRecordFile, manifest: Manifest) throws(PosixError) {
    self.paths = paths
    self.records = records
    self.manifest = manifest
    queue = try BackgroundQueue()
    wakePipe = try makePipe(nonBlocking: true)
  }

  /// Readable when reports are waiting (the loop watches it).
  var wakeFD: FileDescriptor { wakePipe.read }

  // MARK: from the loop

  /// At start: writes the manifest when it is new, finishes removals a crash interrupted, and
  /// seals the segments rotated but not sealed.
  func start(writeManifest: Bool, toSeal: [Int]) {
    queue.async { [self] in
      if writeManifest { _ = self.writeManifest() }
      for r in manifest.removing { report(.removed(carryOut(r), resumed: true)) }
      seal(toSeal, nowMs: Clock.wallMs())
    }
  }

  /// A segment the writer rotated away from. Sealed with the others rotated before the job runs:
  /// the manifest lists every sealed segment, so writing it once per segment made sealing
  /// quadratic in their number (with 4 KiB segments the thread fell minutes behind the writer,
  /// and `cortex stop` waited for it).
  func sealSegment(_ index: Int) {
    let first = rotated.withLock { r -> Bool in
      r.append(index)
      return r.count == 1
    }
    guard first else { return }
    queue.async { [self] in
      let batch = rotated.withLock { r -> [Int] in
        defer { r.removeAll() }
        return r
      }
      seal(batch, nowMs: Clock.wallMs())
    }
  }

  /// What durable snapshots cover now (the older of the two kept), and the settings: removes what
  /// retention allows.
  func retain(coveredSeq: UInt64, settings: RetentionSettings, nowMs: Int64) {
    queue.async { [self] in
      self.coveredSeq = max(self.coveredSeq, coveredSeq)
      self.settings = settings
      retainPass(nowMs: nowMs)
    }
  }

  /// The `log.segment_removed` events of these segments are durable: they leave the manifest.
  func confirm(_ indexes: [Int]) {
    queue.async { [self] in
      let done = Set(indexes)
      let before = manifest
      manifest.removing.removeAll { done.contains($0.segment.index) }
      guard manifest != before else { return }
      if !writeManifest() { manifest = before }
      Fault.point("removal.confirmed")
    }
  }

  /// Compares sealed segments with their checksums, one per job, at a quarter of a core at most.
  func scrub(_ indexes: [Int]) {
    queue.async { [self] in
      guard let i = indexes.first, !stopping.load(ordering: .relaxed) else { return }
      let t0 = Clock.monotonicMs()
      if let s = manifest.segment(i) {
        let path = paths.events + "/" + s.name
        if let bytes = (try? FileSystem.read(path)) ?? nil {
          if bytes.count != s.bytes {
            report(.corrupt(index: i, why: "\(s.name) is \(bytes.count) bytes; it was sealed at \(s.bytes)"))
          } else if FastCRC32C.checksum(bytes) != s.crc32c {
            report(.corrupt(index: i, why: "\(s.name) no longer matches its CRC32C \(Manifest.hex(s.crc32c)) (manifest.json)"))
          }
        } else if manifest.segment(i) != nil {
          report(.corrupt(index: i, why: "\(s.name) is listed in manifest.json but cannot be read"))
        }
      }
      sleepMs(Int(min(2000, 3 * (Clock.monotonicMs() - t0))))
      if indexes.count > 1 { scrub(Array(indexes.dropFirst())) }
    }
  }

  /// Removes `tasks/<id>/` of finished tasks that `rule` selects. `states` is the scheduler's
  /// map of finished tasks; `endedMs` the end times it holds in memory (the rest come from
  /// `finished-tasks.bin`).
  func clean(
    client: ClientID?, rule: Retention.CleanRule, reason: String, keys: Int, states: FinishedStates, endedMs: [Int: Int64],
    nowMs: Int64
  ) {
    queue.async { [self] in
      var removed = 0
      var bytes = 0
      for name in (try? FileSystem.list(paths.tasks)) ?? [] {
        guard let n = TaskID.parse(name) else { continue }
        let ended = endedMs[n] ?? records.read(n)?.endedMs
        guard rule.matches(state: states[n], endedMs: ended, nowMs: nowMs) else { continue }
        let dir = paths.taskDir(n)
        for f in (try? FileSystem.list(dir)) ?? [] { bytes += FileSystem.size(dir + "/" + f) ?? 0 }
        FileSystem.removeTree(dir)
        removed += 1
        if removed == 1 { Fault.point("clean.partial") }
      }
      if removed > 0 { try? FileSystem.syncDirectory(paths.tasks) }
      report(.cleaned(client: client, removed: removed, bytes: bytes, keys: keys, reason: reason, rule: rule))
    }
  }

  func takeReports() -> [LifecycleReport] {
    var b: [UInt8] = []
    _ = try? wakePipe.read.read(appendingTo: &b, max: 256)
    return outbox.withLock { r in
      defer { r.removeAll() }
      return r
    }
  }

  /// Stops scrubbing and waits for the jobs queued so far (a stop).
  func finish() {
    stopping.store(true, ordering: .relaxed)
    queue.drain()
  }

  // MARK: on the thread

  private func report(_ r: LifecycleReport) {
    let first = outbox.withLock { o -> Bool in
      o.append(r)
      return o.count == 1
    }
    if first { _ = try? wakePipe.write.writeAll([1]) }
  }

  /// temp → fsync → rename → fsync(events/). False (and a warning) when it could not.
  @discardableResult
  private func writeManifest() -> Bool {
    let tmp = paths.manifest + ".tmp"
    do throws(PosixError) {
      let fd = try FileDescriptor.open(tmp, [.writeOnly, .create, .truncate])
      do throws(PosixError) {
        try fd.writeAll(manifest.encoded())
        try fd.fsync()
      } catch {
        fd.close()
        throw error
      }
      fd.close()
      Fault.point("manifest.temp")
      try FileSystem.rename(tmp, paths.manifest)
      Fault.point("manifest.renamed")
      try FileSystem.syncDirectory(paths.events)
      return true
    } catch {
      try? FileSystem.remove(tmp)
      report(.warning(reason: "manifest_unwritable", detail: "events/manifest.json: \(error); retention waits until it can be written"))
      return false
    }
  }

  /// Seals rotated segments in order (see `checked`), then writes the manifest once and reports
  /// each; retention then removes what it allows.
  private func seal(_ indexes: [Int], nowMs: Int64) {
    var sealed: [Manifest.Segment] = []
    for i in indexes.sorted() {
      guard let segment = checked(i, nowMs: nowMs) else { continue }
      manifest.segments.append(segment)
      sealed.append(segment)
    }
    guard !sealed.isEmpty else { return }
    guard writeManifest() else {
      manifest.segments.removeLast(sealed.count)
      return
    }
    for segment in sealed { report(.sealed(segment)) }
    retainPass(nowMs: nowMs)
  }

  /// Checks every line of a rotated segment once: its entry for the manifest, or nil when it is
  /// sealed already, empty (removed), or fails (it and later ones stay unsealed).
  private func checked(_ index: Int, nowMs: Int64) -> Manifest.Segment? {
    let last = manifest.segments.last?.index ?? manifest.removedThrough?.index ?? 0
    guard index > last, sealBlockedAt.map({ index < $0 }) ?? true else { return nil }
    let name = LogSegments.name(index)
    let path = paths.events + "/" + name
    guard let bytes = (try? FileSystem.read(path)) ?? nil else {
      report(.sealFailed(index: index, why: "\(name) cannot be read"))
      sealBlockedAt = index
      return nil
    }
    if bytes.isEmpty {
      // Created, then the daemon stopped before writing to it: nothing to keep.
      try? FileSystem.remove(path)
      return nil
    }
    let previous = manifest.segments.last?.lastSeq ?? manifest.removedThrough?.lastSeq ?? 0
    let scan = LogSegments.scan(bytes, after: previous, parseAfter: .max)
    if scan.corruptAt != nil || scan.tornTail || scan.lines == 0 {
      let at = scan.corruptAt ?? scan.validEnd
      report(
        .sealFailed(
          index: index, why: "\(name) at byte \(at): \(scan.corruptReason ?? "a torn line"); it stays unsealed (cortex doctor --repair)"))
      sealBlockedAt = index
      return nil
    }
    let firstEnd = bytes.firstIndex(of: 10) ?? bytes.count
    let lastStart = (bytes[..<(bytes.count - 1)].lastIndex(of: 10) ?? -1) + 1
    func ms(_ line: ArraySlice<UInt8>) -> Int64 {
      ((try? JSON.parse(line))?["ts"]?.string).flatMap(Timestamp.parse) ?? nowMs
    }
    let segment = Manifest.Segment(
      index: index, bytes: bytes.count, crc32c: FastCRC32C.checksum(bytes),
      firstSeq: LogSegments.leadingSeq(bytes[...]) ?? previous + 1, lastSeq: scan.lastSeq,
      firstMs: ms(bytes[..<firstEnd]), lastMs: ms(bytes[lastStart..<(bytes.count - 1)]), lines: scan.lines)
    if segment.firstSeq < manifest.recordsFromSeq && !backfillRecords(bytes, name: name) { return nil }
    Fault.point("seal.checked")
    return segment
  }

  /// Writes the compact records of a segment older than `finished-tasks.bin` (a directory from
  /// before it), durably, before the segment may ever be removed.
  private func backfillRecords(_ bytes: [UInt8], name: String) -> Bool {
    var batch: [(task: Int, record: FinishedRecord)] = []
    for line in bytes.split(separator: 10) where FinishedRecord.isTerminalLine(line) {
      guard let v = try? JSON.parse(line), let n = v["task_id"]?.string.flatMap(TaskID.parse) else { continue }
      if let r = FinishedRecord.from(event: v, hadDirectory: FileSystem.isDirectory(paths.taskDir(n))) { batch.append(r) }
    }
    do throws(PosixError) {
      try records.write(batch)
      try records.sync()
      return true
    } catch {
      report(.warning(reason: "records_unwritable", detail: "finished-tasks.bin: \(error); \(name) stays unsealed for now"))
      return false
    }
  }

  /// Removes what retention allows now (see `Retention.plan`).
  private func retainPass(nowMs: Int64) {
    guard let settings else { return }
    let floor = manifest.removedThrough?.index ?? 0
    let sealedLast = manifest.segments.last?.index ?? floor
    var unsealedBytes = 0
    for i in LogSegments.indexes((try? FileSystem.list(paths.events)) ?? []) where i > sealedLast {
      unsealedBytes += FileSystem.size(paths.events + "/" + LogSegments.name(i)) ?? 0
    }
    let plan = Retention.plan(manifest, coveredSeq: coveredSeq, unsealedBytes: unsealedBytes, settings: settings, nowMs: nowMs)
    if plan.needsSnapshot { report(.needsSnapshot) }
    guard !plan.remove.isEmpty else { return }
    let removals = plan.remove.map { r in
      Manifest.Removal(
        segment: r.segment, reason: r.reason,
        archivedAs: settings.archive ? "archive/" + r.segment.name + (settings.gzip ? ".gz" : "") : nil)
    }
    let before = manifest
    manifest.segments.removeFirst(removals.count)
    manifest.removing += removals
    manifest.removedThrough = removals.last!.segment
    guard writeManifest() else {
      manifest = before
      return
    }
    Fault.point("removal.listed")
    for r in removals { report(.removed(carryOut(r), resumed: false)) }
    Fault.point("removal.reported")
  }

  /// Deletes a removed segment's file, or moves it to `events/archive/` (and gzips it); each
  /// step is skipped when already done, so a start can finish an interrupted removal. Returns
  /// the removal with where the segment really went.
  private func carryOut(_ r: Manifest.Removal) -> Manifest.Removal {
    let name = r.segment.name
    let source = paths.events + "/" + name
    guard let archived = r.archivedAs else {
      do throws(PosixError) {
        if FileSystem.exists(source) {
          try FileSystem.remove(source)
          try FileSystem.syncDirectory(paths.events)
        }
      } catch {
        report(.warning(reason: "segment_not_removed", detail: "\(name): \(error)"))
      }
      Fault.point("removal.unlinked")
      return r
    }
    var done = r
    let plain = paths.archive + "/" + name
    do throws(PosixError) {
      try FileSystem.makeDirectory(paths.archive)
      if FileSystem.exists(source) {
        try FileSystem.rename(source, plain)
        try FileSystem.syncDirectory(paths.archive)
        try FileSystem.syncDirectory(paths.events)
      }
    } catch {
      report(.warning(reason: "segment_not_archived", detail: "\(name): \(error)"))
    }
    Fault.point("removal.unlinked")
    if archived.hasSuffix(".gz") && FileSystem.exists(plain) {
      if let why = Self.gzip(plain) {
        report(.warning(reason: "gzip_failed", detail: "archive/\(name) stays uncompressed: \(why)"))
        done.archivedAs = "archive/" + name
      }
      Fault.point("removal.compressed")
    }
    return done
  }

  /// Runs the system's `gzip` on `path` (it writes `path.gz` and removes `path` once that is
  /// complete), then makes the result durable. Nil on success, else why not.
  static func gzip(_ path: String) -> String? {
    let pid: Int32
    do throws(PosixError) {
      let null = try FileDescriptor.open("/dev/null", .readWrite)
      defer { null.close() }
      pid = try HelperChildren.shared.spawn { () throws(PosixError) -> Int32 in
        try Processes.spawn(
          ["gzip", "-f", "-n", path], environment: Environment.all(), stdin: null, stdout: null, stderr: null, newProcessGroup: true)
      }
    } catch {
      return "cannot run gzip: \(error)"
    }
    defer { HelperChildren.shared.done(pid) }
    // The loop reaps every child it sees end (waitpid(-1)); whoever reaps this one, it is done
    // when it is gone, and the files say whether it worked.
    while Processes.reap(pid) == nil && Processes.isAlive(pid) { sleepMs(5) }
    guard !FileSystem.exists(path), FileSystem.exists(path + ".gz") else { return "gzip did not finish" }
    do throws(PosixError) {
      let fd = try FileDescriptor.open(path + ".gz", .readOnly)
      defer { fd.close() }
      try fd.fsync()
      try FileSystem.syncDirectory(FileSystem.dirname(path))
    } catch {
      return "\(error)"
    }
    return nil
  }
}
