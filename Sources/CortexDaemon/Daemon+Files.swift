import CortexCore
import Posix

/// Files the daemon keeps up to date beside the log: per-task files, snapshots, the hot state,
/// metrics, and the inbox. Slow writes happen on background threads from immutable copies.
extension Daemon {
  // MARK: task files (atomic for readers; the log is the durable record)
  // Synthetic tasks spawn nothing and write no output, so they get no task directory: their spec
  // and result live in the log and `cortex show` (docs/deviations.md).

  /// Notes a task whose `spec.json` is due; `writeSpecFiles` hands them to the files thread
  /// after the answers of the same loop iteration went out.
  func writeSpecFile(_ n: Int) { specFilesDue.append(n) }

  /// Hands the due `spec.json` files to the files thread in one job. Called after the deferred
  /// actions of a commit were carried out, so the submitter's acknowledgement is written before
  /// the thread is woken (on two cores, waking it first could delay the answer), and a burst of
  /// submits costs one wake-up.
  func writeSpecFiles() {
    guard !specFilesDue.isEmpty else { return }
    var jobs: [(dir: String, bytes: [UInt8])] = []
    for n in specFilesDue {
      guard let t = scheduler.tasks[n], t.spec.synthetic == nil else { continue }
      var spec = t.specJSON
      spec.append(10)
      jobs.append((paths.taskDir(n), spec))
    }
    specFilesDue.removeAll(keepingCapacity: true)
    guard !jobs.isEmpty else { return }
    let batch = jobs
    files.async {
      for (dir, bytes) in batch {
        try? FileSystem.makeDirectory(dir)
        try? FileSystem.writeAtomically(dir + "/spec.json", bytes, durable: false)
      }
    }
  }

  func writeResultFile(_ n: Int) {
    guard let t = scheduler.tasks[n], t.spec.synthetic == nil else { return }
    var w = JSONWriter()
    w.beginObject()
    w.field("id", t.id)
    w.field("state", t.state.rawValue)
    w.field("type", t.type)
    w.field("attempt", t.attempt)
    w.field("max_attempts", t.maxAttempts)
    w.key("exit_code")
    if let c = t.exitCode { w.int(c) } else { w.null() }
    w.key("signal")
    if let s = t.signal { w.int(s) } else { w.null() }
    w.field("reason", t.reason)
    // The sentence beside the reason: `wait` of a task held only as a compact record says it.
    if let d = t.detail { w.field("detail", d) }
    w.field("tokens_used", t.tokensUsed)
    w.field("token_budget", t.budget)
    if let wk = t.worker { w.field("worker_id", WorkerID.format(wk)) }
    w.field("submitted", Timestamp.rfc3339(ms: t.submittedMs))
    if let s = t.startedMs { w.field("started", Timestamp.rfc3339(ms: s)) }
    if let e = t.endedMs { w.field("ended", Timestamp.rfc3339(ms: e)) }
    if let s = t.startedMs, let e = t.endedMs { w.field("duration_ms", e - s) }
    // What `cortex list` shows of the spec, as spec.json has it (redacted), so that a list of
    // old tasks reads this file alone (FinishedTaskFiles.specCopied).
    for (k, v) in FinishedTaskFiles.copiedFields(spec: t.spec, specJSON: t.specJSON) { w.field(k, json: v) }
    w.endObject()
    w.bytes.append(10)
    // Written before anyone hears the task ended (so `cortex wait && cat result.json` works),
    // atomically for readers; the log is the durable record.
    let dir = paths.taskDir(n)
    if !FileSystem.isDirectory(dir) { try? FileSystem.makeDirectory(dir) }
    try? FileSystem.writeAtomically(dir + "/result.json", w.bytes, durable: false)
  }

  // MARK: snapshots

  /// Hands an immutable copy of the state to the snapshot thread. The copy is taken right after
  /// the log was synced, so its `seq` names events that are all durable; with it go the log's
  /// position (where a start reads on) and, first, the compact records of tasks that ended since
  /// the last batch, which the job syncs before the snapshot so a durable snapshot implies them.
  func writeSnapshots(now t: Int64, sync: Bool, reason: String = "interval") {
    if sync {
      // While the log fails, its retries keep their backoff; the snapshot waits one interval.
      guard logFailure == nil else {
        lastSnapshotMs = t
        return
      }
      do throws(PosixError) { try log.flush(sync: true, nowMs: t) } catch {
        logFailed(error, now: t)
        lastSnapshotMs = t
        return
      }
    }
    guard !log.hasUnsynced, !log.hasPending else { return }
    flushRecords(now: t)
    let copy = scheduler.snapshotView()
    let seq = log.lastSeq
    let position = log.position
    let p = paths
    let progress = snapshotDone
    let records = lifecycle?.records
    let digest = lifecycle?.digest
    lifecycle?.snapshotReasons[seq] = reason
    lastSnapshotMs = t
    lastSnapshotSeq = seq
    let tasks = scheduler.tasks
    secrets.compact { n in tasks[n].map { !$0.state.isTerminal } ?? false }
    snapshots.async {
      do throws(PosixError) {
        try records?.sync()
        Fault.point("snapshot.records")
        var queue = copy.queueSnapshot(seq: seq, nowMs: t).object ?? []
        var at: [(String, JSON)] = [("segment", .string(LogSegments.name(position.segment))), ("offset", .int(Int64(position.offset)))]
        if let crc = digest?.advance(to: position, events: p.events) { at.append(("crc32c", .string(Manifest.hex(crc)))) }
        queue.insert(("log", .object(at)), at: min(2, queue.count))
        try Self.writeTaskQueue(p, Array((JSON.object(queue).pretty() + "\n").utf8))
        try FileSystem.writeAtomically(p.tokenBudget, Array((copy.budgetSnapshot(seq: seq, nowMs: t).pretty() + "\n").utf8))
        try FileSystem.writeAtomically(p.workerPool, Array((copy.workersSnapshot(seq: seq, nowMs: t).pretty() + "\n").utf8))
        progress.seq.store(seq, ordering: .releasing)
      } catch {
        progress.failures.add(1, ordering: .relaxed)
      }
    }
  }

  // MARK: hot state

  /// The hot state names only events the log has written: a start that finds it ahead of the log
  /// takes the difference as lost events (`log_behind`) and skips their task numbers. It was
  /// written with the seq of events still buffered for the loop's commit, so a kill -9 between
  /// the two made the next start warn that events were missing and name tasks, never
  /// acknowledged, as unknown. Buffered events are written (not synced) first.
  func updateHotState(now t: Int64) {
    guard let hot else { return }
    let buffered = log.hasPending
    // An error stays with the log: the commit that follows meets it again and handles it.
    if buffered && logFailure == nil { try? log.flush(sync: false, nowMs: t) }
    hotWriter.write(
      scheduler, to: hot.base, lastSeq: log.writtenSeq, pid: Processes.currentID, startedMs: startedMs, nowMs: t,
      clusterNode: cluster != nil, clusterUnreachableSinceMs: cluster?.unreachableSinceMs ?? 0)
    if buffered { Fault.point("hot.buffered") }
    lastHotMs = t
    hotSeq = log.writtenSeq
    hotDirty = false
  }

  /// Timed work of the loop: hot state, snapshots, metrics, inbox.
  func periodic(now t: Int64) {
    // Also every second when nothing changed: its write time tells `cortex status` the daemon is alive.
    if (hotStale && t - lastHotMs >= Self.hotIntervalMs) || t - lastHotMs >= 1000 { updateHotState(now: t) }
    let done = snapshotDone.seq.load(ordering: .acquiring)
    let snapshotFinished = done > loggedSnapshotSeq
    if snapshotFinished {
      loggedSnapshotSeq = done
      let reason = lifecycle?.snapshotReasons.removeValue(forKey: done) ?? "interval"
      lifecycle?.snapshotReasons = lifecycle?.snapshotReasons.filter { $0.key > done } ?? [:]
      log.append(Event("snapshot.written", reason: reason, fields: [("snapshot_seq", .int(Int64(done)))]), nowMs: t)
    }
    // Give free heap pages back when a burst ends, when a snapshot's copy of the state has been
    // dropped, and at least every `trimIntervalMs` while busy: a daemon that never goes idle
    // otherwise keeps the high-water mark of a fragmented heap (in a 20-minute soak the heap held
    // ~6 MiB in use and ~7 MiB free, and RSS crept up in steps). "A burst ends" waits for
    // `idleTrimAfterMs` since the last trim: tasks submitted one at a time (a shell loop) leave
    // nothing active after each, and trimming after every one gave the pages back only to fault
    // them in again for the next (brk, madvise and page faults on every task).
    if scheduler.activeCount > 0 {
      busySinceTrim = true
    }
    let trimAfterMs = scheduler.activeCount == 0 ? Self.idleTrimAfterMs : Self.trimIntervalMs
    if busySinceTrim && (snapshotFinished || t - lastTrimMs >= trimAfterMs) {
      busySinceTrim = scheduler.activeCount > 0
      lastTrimMs = t
      Memory.releaseFreePages()
    }
    if t - lastSnapshotMs >= Numbers.ms(fromSeconds: config.snapshotIntervalS) && snapshots.backlog == 0
      && scheduler.phase == .running
    {
      writeSnapshots(now: t, sync: true)
    }
    lifecycleTick(now: t)
    if t - lastSpaceCheckMs >= Self.spaceCheckIntervalMs { checkFreeSpace(now: t) }
    if t - lastDaemonLogCheckMs >= DaemonLog.checkIntervalMs { checkDaemonLog(now: t) }
    if hooks.hasWork { hooks.enforceTimeouts(now: t) }
    if groupsFileDue || t - lastGroupsFileMs >= 1000 { writeGroupsFile(now: t) }
    if t - lastMetricsMs >= Self.metricsIntervalMs {
      lastMetricsMs = t
      writeMetrics(now: t)
    }
    if t - lastSampleMs >= 1000 {
      lastSampleMs = t
      if let r = sampler.sample() { feed(.resources(idleCores: r.idleCores, availableMB: r.availableMB), now: t) }
    }
    if t - lastInboxScanMs >= Self.inboxIntervalMs {
      lastInboxScanMs = t
      scanInbox(now: t)
    }
  }

  func writeMetrics(now t: Int64) {
    let s = scheduler
    var text = ""
    func metric(_ name: String, _ help: String, _ type: String, _ rows: [(String, Int)]) {
      text += "# HELP cortex_\(name) \(help)\n# TYPE cortex_\(name) \(type)\n"
      for (labels, v) in rows { text += "cortex_\(name)\(labels) \(v)\n" }
    }
    metric("tasks", "Tasks by state.", "gauge", TaskState.allCases.map { ("{state=\"\($0.rawValue)\"}", s.counts[$0, default: 0]) })
    metric("queue_depth", "Queued tasks by priority.", "gauge", Priority.allCases.map { ("{priority=\"\($0.name)\"}", s.queued($0)) })
    metric(
      "workers", "Workers by state.", "gauge",
      HotState.workerStates.map { st in ("{state=\"\(st.rawValue)\"}", s.workers.filter { $0.state == st }.count) })
    // Not in cluster mode, where this node's budget is a placeholder (2^60; the cluster's is
    // the database's), as on /metrics.
    if cluster == nil {
      metric(
        "tokens", "Token budget.", "gauge",
        [
          ("{kind=\"total\"}", s.config.tokenBudgetTotal), ("{kind=\"reserved\"}", s.tokensReserved),
          ("{kind=\"used\"}", s.tokensUsed), ("{kind=\"available\"}", s.budgetAvailable),
        ])
    }
    metric("rejected_total", "Submissions refused by admission.", "counter", [("", s.rejectedSubmits)])
    metric("events_total", "Events written to the decision log.", "counter", [("", Int(log.lastSeq))])
    text += fleetMetrics(now: t)
    // In cluster mode every series is this node's, and says so (`Exposition`).
    if let cluster { text = Exposition.labelled(text, node: cluster.node) }
    let path = paths.metrics
    let bytes = Array(text.utf8)
    files.async { try? FileSystem.writeAtomically(path, bytes, durable: false, mode: 0o644) }
  }

  // MARK: inbox

  /// Submits `inbox/*.json` files (one spec, or an array of specs). Accepted files move to
  /// `accepted/`, refused or invalid ones to `rejected/` with a `.error` file beside them.
  func scanInbox(now t: Int64) {
    guard scheduler.phase == .running else { return }
    checkFreeSpace(now: t)
    // Files wait in inbox/ while nothing could be admitted: the disk is full, or (cluster mode)
    // PostgreSQL is unreachable.
    guard scheduler.admitting, cluster?.available ?? true else { return }
    guard let names = try? FileSystem.list(paths.inbox) else { return }
    for name in names where name.hasSuffix(".json") {
      let path = paths.inbox + "/" + name
      if inboxPending.values.contains(path) { continue }
      guard let file = readInboxFile(path) else { continue }
      let id: ClientID = (1 << 39) + nextClientID
      nextClientID += 1
      inboxPending[id] = path
      let bytes: [UInt8]
      switch file {
      case .success(let b): bytes = b
      case .failure(let why):
        reply(id, .object([("ok", .bool(false)), ("code", .int(65)), ("field", .string("file")), ("error", .string(why.message))]), now: t)
        continue
      }
      do {
        let v = try JSON.parse(bytes)
        let list = v.array ?? [v]
        if list.isEmpty {
          // An empty batch: rejected with the reason, not left in the inbox with no word.
          reply(id, Scheduler.invalid(SpecError("tasks", "no task given"), index: nil, of: 0), now: t)
          continue
        }
        var specs: [TaskSpec] = []
        for (i, s) in list.enumerated() {
          do throws(SpecError) { specs.append(try Request.submitted(s)) } catch {
            reply(id, Scheduler.invalid(error, index: i, of: v.array?.count ?? 1), now: t)
            specs = []
            break
          }
        }
        if !specs.isEmpty { submit(id, specs, inbox: (name, FastCRC32C.checksum(bytes)), now: t) }
      } catch {
        reply(id, .object([("ok", .bool(false)), ("code", .int(65)), ("error", .string("\(error)"))]), now: t)
      }
    }
  }

  struct InboxRefusal: Error { var message: String }

  /// At a start, before the first scan: moves to `accepted/` each inbox file that the log says
  /// was submitted (with these very bytes) but not moved, instead of submitting it again.
  func settleRecoveredInbox(_ ledger: InboxLedger, now t: Int64) {
    for (name, entry) in ledger.pending.sorted(by: { $0.key < $1.key }) {
      let path = paths.inbox + "/" + name
      guard case .success(let bytes)? = readInboxFile(path), FastCRC32C.checksum(bytes) == entry.crc32c else { continue }
      guard (try? FileSystem.rename(path, paths.inboxAccepted + "/" + name)) != nil else { continue }
      try? FileSystem.syncDirectory(paths.inboxAccepted)
      log.append(InboxLedger.accepted(file: name, tasks: entry.tasks, recovered: true), nowMs: t)
    }
  }

  /// An inbox file's bytes; a refusal naming why it cannot be a task spec; nil when it is gone.
  /// Opened without blocking and only read when it is a regular file no larger than a request
  /// may be (`max_request_bytes`): a FIFO or a device named `*.json` blocked the loop forever in
  /// open(2) or read(2), and a huge file was read whole into memory.
  func readInboxFile(_ path: String) -> Result<[UInt8], InboxRefusal>? {
    guard let fd = try? FileDescriptor.open(path, [.readOnly, .nonBlocking]) else { return nil }
    defer { fd.close() }
    guard let st = try? fd.status() else { return nil }
    guard st.isRegularFile else {
      return .failure(InboxRefusal(message: "file: not a regular file (an inbox entry must be a plain JSON file)"))
    }
    let limit = config.requestLineLimit
    func tooLarge(_ size: Int) -> Result<[UInt8], InboxRefusal> {
      .failure(
        InboxRefusal(
          message: "file: is \(size) bytes; the limit is \(limit) (max_request_bytes in config.json); split it into smaller files"))
    }
    if st.size > limit { return tooLarge(st.size) }
    var bytes: [UInt8] = []
    // The file may grow while it is read: never hold more than the limit.
    while bytes.count <= limit {
      guard let n = try? fd.read(appendingTo: &bytes, max: 1 << 16) else { return nil }
      if n == 0 { return .success(bytes) }
    }
    return tooLarge(bytes.count)
  }

  func settleInboxFile(_ path: String, reply v: JSON) {
    let name = FileSystem.basename(path)
    if v["ok"]?.bool == true {
      Fault.point("inbox.settle")
      try? FileSystem.rename(path, paths.inboxAccepted + "/" + name)
      try? FileSystem.syncDirectory(paths.inboxAccepted)
      // After the move: replayed, it tells a start that this file's tasks need no settling.
      let ids = (v["ids"]?.array ?? []).compactMap { $0.string.flatMap(TaskID.parse) }
      log.append(InboxLedger.accepted(file: name, tasks: ids, recovered: false), nowMs: now())
      // In cluster mode the database's record of the submit goes too (ClusterStore+Inbox).
      cluster?.inboxSettled(name, ids: ids)
    } else {
      let target = paths.inboxRejected + "/" + name
      try? FileSystem.rename(path, target)
      let msg = (v["error"]?.string ?? v.encoded()) + "\n"
      try? FileSystem.writeAtomically(target + ".error", Array(msg.utf8), durable: false)
    }
  }

  // MARK: configuration

  /// SIGHUP: re-reads `config.json`. Limits and budgets apply at once; the pool size through `scale`.
  func reloadConfig(now t: Int64) {
    configReloads += 1
    configReloadError = nil
    if let refusal = DirectoryGuard.check(paths) {
      configReloadError = "not reading config.json: \(refusal)"
      log.append(
        Event("daemon.warning", reason: "directory_unsafe", detail: "SIGHUP: \(refusal); keeping the old config"), nowMs: t)
      writeStderr("cortex daemon: SIGHUP: not reading config.json: \(refusal)\n")
      return
    }
    do throws(StartupError) {
      // A missing file is not the defaults: it was moved away or not yet written back (an editor,
      // a deploy). Taking `Config()` for it dropped groups, hooks and budgets without a word.
      guard FileSystem.exists(paths.config) else {
        throw StartupError("\(paths.config) does not exist (put it back, or write the defaults with cortex init --force)")
      }
      var c = try Self.loadConfig(paths: paths)
      c.workers = scheduler.desiredWorkers
      // Cluster settings are read at start only (a node does not leave or change its name on SIGHUP).
      clusterSettingsChanged = c.cluster != config.cluster
      if clusterSettingsChanged {
        log.append(
          Event(
            "daemon.warning", reason: "cluster_changed",
            detail: "SIGHUP: config.json has other \"cluster\" settings; they are read at start only (cortex stop, then cortex start)"),
          nowMs: t)
      }
      c.cluster = config.cluster
      config = c
      scheduler.config = c
      // A limit set live that the file's replaces is a logged decision (recovery replays it); in
      // cluster mode the cluster's limits are followed again just below instead.
      let replaced = scheduler.reloadFleetConfig(now: t)
      if cluster == nil { for e in replaced { log.append(e, nowMs: t) } }
      // In cluster mode the database holds the budget (see Daemon+Startup).
      if cluster != nil { scheduler.config.tokenBudgetTotal = 1 << 60 }
      // And its groups' pauses and limits win over the file's (docs/fleet.md); a limit for a
      // group the cluster does not list yet seeds it, as when the node joins.
      if let listed = cluster?.listedGroups { followGroups(listed, now: t) }
      cluster?.link.seedGroups(Dictionary(c.groups.map { ($0.0, $0.1.parallel) }, uniquingKeysWith: { $1 }))
      maxClients = min(c.maxClients, clientDescriptors)
      log.append(Event("daemon.reloaded", reason: "sighup", detail: "config.json re-read"), nowMs: t)
    } catch {
      configReloadError = "\(error)"
      log.append(Event("daemon.warning", reason: "config_invalid", detail: "SIGHUP: \(error); keeping the old config"), nowMs: t)
      // On stderr too: under systemd that is the journal, where `systemctl reload` (a SIGHUP that
      // cannot fail) leaves its reader to look.
      writeStderr("cortex daemon: SIGHUP: not using config.json: \(error); keeping the old config\n")
    }
  }
}
