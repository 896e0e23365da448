import CortexCore
import Posix

/// The loop's side of the log's lifecycle (SPEC §13; the I/O is on `LogLifecycle`'s thread):
/// compact records of finished tasks, which snapshots cover what, seals and removals to log,
/// early snapshots when retention waits for one, task-file retention, and `cortex clean`.
final class DaemonLifecycle {
  let keeper: LogLifecycle
  let records: FinishedRecordFile
  let digest = SegmentDigest()
  /// Records of tasks that ended since the last batch went to the snapshot thread.
  var pendingRecords: [(task: Int, record: FinishedRecord)] = []
  var lastRecordFlushMs: Int64 = 0
  /// Seqs of the newest durable snapshot and of the one before it (`task-queue.prev.json`).
  var snapshotSeq: UInt64
  var previousSnapshotSeq: UInt64
  /// Why the snapshot being written was written (for its `snapshot.written` event).
  var snapshotReasons: [UInt64: String] = [:]
  /// `log.segment_removed` events not yet durable: their seq and segment.
  var unconfirmed: [(seq: UInt64, index: Int)] = []
  /// Retention asked for a snapshot (one is written early, at most once a second).
  var wantsSnapshot = false
  var lastEarlySnapshotMs: Int64 = 0
  /// The newest removed segment: the retained log begins after it.
  var removedThrough: Manifest.Segment?
  var nextTaskSweepMs: Int64
  var taskSweepRunning = false
  var scrubAtMs: Int64?
  var toScrub: [Int]

  init(keeper: LogLifecycle, records: FinishedRecordFile, recovered r: Recovered, now t: Int64) {
    self.keeper = keeper
    self.records = records
    snapshotSeq = r.snapshotSeq
    previousSnapshotSeq = r.previousSnapshotSeq
    removedThrough = r.manifest.removedThrough
    nextTaskSweepMs = t + Self.taskSweepIntervalMs(r.scheduler.config.retention)
    toScrub = r.plan.toScrub
    scrubAtMs = toScrub.isEmpty ? nil : t + Self.scrubDelayMs
    lastRecordFlushMs = t
  }

  /// A recovery that replayed more than this many events writes a snapshot at once, so a daemon
  /// in a crash loop never replays more at each start.
  static let snapshotAfterReplay = 5000
  /// The scrub of sealed segments' checksums starts this long after a start (off the loop).
  static let scrubDelayMs: Int64 = 30_000
  /// Records go to the snapshot thread in batches: at this many, or this often.
  static let recordBatch = 1024
  static let recordFlushMs: Int64 = 250

  static let terminalTypes: Set<String> = TaskState.terminalEventTypes

  /// Task files are swept every hour, or every tenth of `task_days` when that is shorter (at
  /// least a second apart).
  static func taskSweepIntervalMs(_ r: RetentionSettings) -> Int64 {
    max(1000, min(3_600_000, (r.taskAgeMs ?? 3_600_000) / 10))
  }
}

/// The CRC32C of the segment being written, up to where the last snapshot saw the log end, kept
/// up by the snapshot thread (which reads only what was appended since the snapshot before): the
/// snapshot records it, so a start can check the part of that segment no seal has checked yet.
final class SegmentDigest: @unchecked Sendable {
  // @unchecked: used only by jobs on the snapshot queue, one at a time on one thread.
  private var segment = 0
  private var offset = 0
  private var crc: UInt32 = 0

  /// The CRC32C of `p.segment` up to `p.offset`, or nil when it cannot be read.
  func advance(to p: RecoveryPlan.Position, events: String) -> UInt32? {
    if p.segment != segment || p.offset < offset {
      segment = p.segment
      offset = 0
      crc = 0
    }
    guard p.offset > offset else { return crc }
    do throws(PosixError) {
      let fd = try FileDescriptor.open(events + "/" + LogSegments.name(p.segment), .readOnly)
      defer { fd.close() }
      let bytes = try fd.read(count: p.offset - offset, at: offset)
      guard bytes.count == p.offset - offset else { throw PosixError("read", code: PosixError.EIO_) }
      crc = bytes.withUnsafeBytes { FastCRC32C.checksum($0, seed: crc) }
      offset = p.offset
      return crc
    } catch {
      segment = 0
      return nil
    }
  }
}

extension Daemon {
  /// After recovery: opens `finished-tasks.bin`, starts the lifecycle thread (which writes a new
  /// manifest, finishes interrupted removals and seals what is unsealed), and writes a snapshot
  /// at once when the recovery replayed many events.
  func startLifecycle(_ r: Recovered, now t: Int64) throws(StartupError) {
    let state: DaemonLifecycle
    do throws(PosixError) {
      let records = try FinishedRecordFile(path: paths.finishedRecords)
      let keeper = try LogLifecycle(paths: paths, records: records, manifest: r.manifest)
      try epoll.add(keeper.wakeFD, .input, token: Self.kindLifecycle)
      state = DaemonLifecycle(keeper: keeper, records: records, recovered: r, now: t)
    } catch {
      throw StartupError("cannot start the log's lifecycle: \(error)")
    }
    lifecycle = state
    state.pendingRecords = r.records
    state.keeper.start(writeManifest: r.manifestIsNew, toSeal: r.plan.toSeal)
    if r.replayed > DaemonLifecycle.snapshotAfterReplay {
      writeSnapshots(now: t, sync: true, reason: "recovery")
    } else {
      state.keeper.retain(coveredSeq: state.previousSnapshotSeq, settings: config.retention, nowMs: t)
    }
  }

  /// Called for every event appended to the log: a terminal task event becomes a compact record.
  func noteLogged(_ e: Event, now t: Int64) {
    guard let n = e.task, let lc = lifecycle, DaemonLifecycle.terminalTypes.contains(e.type),
      let state = TaskState(rawValue: String(e.type.dropFirst(5)))
    else { return }
    var exit: Int32? = nil
    var signal: Int32? = nil
    for (k, v) in e.fields {
      if k == "exit_code" { exit = v.int.map { Int32(truncatingIfNeeded: $0) } }
      if k == "signal" { signal = v.int.map { Int32(truncatingIfNeeded: $0) } }
    }
    let dir = scheduler.tasks[n].map { $0.spec.synthetic == nil } ?? true
    lc.pendingRecords.append((n, FinishedRecord(state: state, exitCode: exit, signal: signal, endedMs: t, hadDirectory: dir)))
  }

  /// Hands the pending records to the snapshot thread (which writes them before its next
  /// snapshot, and syncs them with it).
  func flushRecords(now t: Int64) {
    guard let lc = lifecycle else { return }
    lc.lastRecordFlushMs = t
    guard !lc.pendingRecords.isEmpty else { return }
    let batch = lc.pendingRecords
    lc.pendingRecords.removeAll(keepingCapacity: true)
    let file = lc.records
    snapshots.async {
      // Best effort here: the snapshot job's sync reports a failure, and the log has every record.
      try? file.write(batch)
    }
  }

  /// The loop's timed lifecycle work, from `periodic`.
  func lifecycleTick(now t: Int64) {
    guard let lc = lifecycle else { return }
    if lc.pendingRecords.count >= DaemonLifecycle.recordBatch || t - lc.lastRecordFlushMs >= DaemonLifecycle.recordFlushMs {
      flushRecords(now: t)
    }
    for i in log.rotatedAway { lc.keeper.sealSegment(i) }
    log.rotatedAway.removeAll()
    // A new durable snapshot: the one before it now bounds what retention may remove.
    let done = snapshotDone.seq.load(ordering: .acquiring)
    if done > lc.snapshotSeq {
      lc.previousSnapshotSeq = lc.snapshotSeq
      lc.snapshotSeq = done
      lc.keeper.retain(coveredSeq: lc.previousSnapshotSeq, settings: config.retention, nowMs: t)
    }
    if !lc.unconfirmed.isEmpty && lc.unconfirmed.contains(where: { $0.seq <= log.durableSeq }) {
      lc.keeper.confirm(lc.unconfirmed.filter { $0.seq <= log.durableSeq }.map(\.index))
      lc.unconfirmed.removeAll { $0.seq <= log.durableSeq }
    }
    if lc.wantsSnapshot && t - lc.lastEarlySnapshotMs >= 1000 && t - lastSnapshotMs >= 1000 && snapshots.backlog == 0
      && scheduler.phase == .running
    {
      lc.wantsSnapshot = false
      lc.lastEarlySnapshotMs = t
      writeSnapshots(now: t, sync: true, reason: "retention")
    }
    if let at = lc.scrubAtMs, t >= at {
      lc.scrubAtMs = nil
      lc.keeper.scrub(lc.toScrub)
    }
    if let age = config.retention.taskAgeMs, t >= lc.nextTaskSweepMs, !lc.taskSweepRunning {
      lc.nextTaskSweepMs = t + DaemonLifecycle.taskSweepIntervalMs(config.retention)
      lc.taskSweepRunning = true
      startClean(client: nil, rule: Retention.CleanRule(olderThanMs: age), reason: "task_days", now: t)
    }
    takeLifecycleReports(now: t)
  }

  func lifecycleWake(now t: Int64) { takeLifecycleReports(now: t) }

  func takeLifecycleReports(now t: Int64) {
    guard let lc = lifecycle else { return }
    for r in lc.keeper.takeReports() {
      switch r {
      case .sealed: break
      case .sealFailed(let i, let why):
        log.append(
          Event("daemon.warning", reason: "segment_unsealed", detail: why, fields: [("segment", .string(LogSegments.name(i)))]), nowMs: t)
        writeStderr("cortex daemon: warning: cannot seal \(LogSegments.name(i)): \(why)\n")
      case .removed(let removal, let resumed):
        let s = removal.segment
        var fields: [(String, JSON)] = [
          ("segment", .string(s.name)), ("bytes", .int(Int64(s.bytes))), ("first_seq", .int(Int64(s.firstSeq))),
          ("last_seq", .int(Int64(s.lastSeq))), ("first_ts", .string(Timestamp.rfc3339(ms: s.firstMs))),
          ("last_ts", .string(Timestamp.rfc3339(ms: s.lastMs))), ("lines", .int(Int64(s.lines))),
        ]
        if let a = removal.archivedAs { fields.append(("archived_as", .string("events/" + a))) }
        if resumed { fields.append(("resumed", .bool(true))) }
        let what = removal.archivedAs.map { "moved to events/\($0)" } ?? "removed"
        let why = removal.reason == "log_days" ? "older than retention.log_days" : "the log was over retention.log_bytes"
        let seq = log.append(
          Event(
            "log.segment_removed", reason: removal.reason,
            detail:
              "\(s.name) (seq \(s.firstSeq)–\(s.lastSeq), \(s.lines) events) \(what): \(why); a snapshot covers it"
              + (resumed ? " (finishing a removal a restart interrupted)" : ""),
            fields: fields), nowMs: t)
        lc.unconfirmed.append((seq, s.index))
        if lc.removedThrough.map({ $0.index < s.index }) ?? true { lc.removedThrough = s }
      case .corrupt(let i, let why):
        log.append(
          Event(
            "daemon.warning", reason: "segment_corrupt", detail: why + "; run cortex doctor",
            fields: [("segment", .string(LogSegments.name(i)))]), nowMs: t)
        writeStderr("cortex daemon: warning: \(why); run cortex doctor\n")
      case .cleaned(let client, let removed, let bytes, let keys, let reason, let rule):
        if client == nil { lc.taskSweepRunning = false }
        var fields: [(String, JSON)] = [("removed", .int(Int64(removed))), ("bytes", .int(Int64(bytes)))]
        if let o = rule.olderThanMs { fields.append(("older_than_ms", .int(o))) }
        if let s = rule.state { fields.append(("state", .string(s.rawValue))) }
        if removed > 0 || client != nil {
          log.append(
            Event(
              "tasks.cleaned", reason: reason,
              detail: "removed tasks/<id>/ of \(removed) finished tasks (\(bytes) bytes); show and wait still answer for them",
              fields: fields), nowMs: t)
        }
        if let client {
          deferred.append(
            .reply(
              client,
              .object([
                ("ok", .bool(true)), ("removed", .int(Int64(removed))), ("bytes", .int(Int64(bytes))),
                ("keys_forgotten", .int(Int64(keys))),
              ]), durable: true))
        }
      case .needsSnapshot: lc.wantsSnapshot = true
      case .warning(let reason, let detail):
        log.append(Event("daemon.warning", reason: reason, detail: detail), nowMs: t)
        writeStderr("cortex daemon: warning: \(detail)\n")
      }
    }
  }

  /// `cortex clean`: removes finished tasks' files on the lifecycle thread; answered when done.
  func handleClean(_ id: ClientID, rule: Retention.CleanRule, now t: Int64) {
    startClean(client: id, rule: rule, reason: "requested", now: t)
  }

  /// The idempotency keys of the tasks `rule` selects are forgotten now, on the loop (logged
  /// before any later submit can reuse them); the files go on the lifecycle thread.
  func startClean(client: ClientID?, rule: Retention.CleanRule, reason: String, now t: Int64) {
    guard let lc = lifecycle else { return }
    var out: [Action] = []
    let keys = scheduler.forgetKeys(rule, reason: reason, now: t, into: &out)
    route(out, now: t)
    var ended: [Int: Int64] = [:]
    for (n, rec) in scheduler.tasks where rec.state.isTerminal { ended[n] = rec.endedMs }
    for (n, r) in lc.pendingRecords { ended[n] = r.endedMs }
    lc.keeper.clean(
      client: client, rule: rule, reason: reason, keys: keys, states: scheduler.finishedStates, endedMs: ended, nowMs: t)
  }

  /// The compact record of a task the daemon no longer holds in full, and what retention took
  /// away from it (nil: nothing), for `show` and `wait`.
  func compactRecord(_ n: Int) -> (record: FinishedRecord?, removed: String?) {
    guard let lc = lifecycle else { return (nil, nil) }
    let record = lc.pendingRecords.last(where: { $0.task == n })?.record ?? lc.records.read(n)
    var gone: [String] = []
    if let r = record, let through = lc.removedThrough, r.endedMs <= through.lastMs {
      gone.append(
        "details removed by retention: its events are gone (the log now begins after seq \(through.lastSeq), \(Timestamp.rfc3339(ms: through.lastMs)))"
      )
    }
    if let r = record, r.hadDirectory, !FileSystem.isDirectory(paths.taskDir(n)) {
      gone.append(Self.filesRemoved(n))
    }
    return (record, gone.isEmpty ? nil : gone.joined(separator: "; "))
  }

  /// What `show` and `log` say of a finished task whose `tasks/<id>/` is gone.
  static func filesRemoved(_ n: Int) -> String {
    "its files were removed (tasks/\(TaskID.format(n))/, by retention.task_days or cortex clean)"
  }

  /// Before the final snapshot of a stop: waits for the lifecycle's queued work (a scrub is cut
  /// short) and logs what it reported.
  func finishLifecycle(now t: Int64) {
    guard let lc = lifecycle else { return }
    flushRecords(now: t)
    lc.keeper.finish()
    takeLifecycleReports(now: t)
    try? log.flush(sync: true, nowMs: t)
    if !lc.unconfirmed.isEmpty {
      lc.keeper.confirm(lc.unconfirmed.map(\.index))
      lc.unconfirmed.removeAll()
      lc.keeper.finish()
    }
  }

  /// `task-queue.json`: temp → fsync → the old one becomes `task-queue.prev.json` → rename →
  /// fsync(dir). A crash between the renames leaves only the previous one, which a start uses.
  static func writeTaskQueue(_ p: Paths, _ bytes: [UInt8]) throws(PosixError) {
    let tmp = p.taskQueue + ".tmp"
    let fd = try FileDescriptor.open(tmp, [.writeOnly, .create, .truncate])
    do throws(PosixError) {
      try fd.writeAll(bytes)
      try fd.fsync()
    } catch {
      fd.close()
      try? FileSystem.remove(tmp)
      throw error
    }
    fd.close()
    Fault.point("snapshot.temp")
    if FileSystem.exists(p.taskQueue) { try FileSystem.rename(p.taskQueue, p.taskQueuePrevious) }
    Fault.point("snapshot.rotated")
    try FileSystem.rename(tmp, p.taskQueue)
    Fault.point("snapshot.renamed")
    try FileSystem.syncDirectory(p.root)
  }
}
