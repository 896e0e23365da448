public import CortexCore
import Posix

/// Why the daemon could not start; the message names what to do.
public struct StartupError: Error, CustomStringConvertible {
  public let description: String
  public let exitCode: Int32
  init(_ d: String, exitCode: Int32 = 1) {
    description = d
    self.exitCode = exitCode
  }
}

extension Daemon {
  /// Writes `config.json` (unless present and not `force`) and creates the directory layout,
  /// every directory mode 0700. Refuses (exit 1) a directory that another user could change
  /// (`DirectoryGuard`), before writing anything and again once the layout exists. `init`,
  /// `start` and `daemon` all come through here.
  public static func initialize(paths: Paths, workers: Int?, force: Bool) throws(StartupError) -> Bool {
    if let refusal = DirectoryGuard.check(paths) { throw StartupError("cannot use \(paths.root): \(refusal)") }
    do throws(PosixError) {
      for d in paths.directories { try FileSystem.makeDirectories(d, mode: 0o700) }
    } catch {
      throw StartupError("cannot initialize \(paths.root): \(error)")
    }
    if let refusal = DirectoryGuard.check(paths) { throw StartupError("cannot use \(paths.root): \(refusal)") }
    do throws(PosixError) {
      // Owner-only whatever the umask or whoever made them (they passed the check: ours, and
      // at most readable by others).
      for d in paths.directories where FileSystem.permissions(d) != 0o700 { try FileSystem.setMode(d, 0o700) }
      if FileSystem.exists(paths.config) && !force { return false }
      var c = Config()
      if let workers { c.workers = workers }
      try FileSystem.writeAtomically(paths.config, Array((c.json().pretty() + "\n").utf8))
      return true
    } catch {
      throw StartupError("cannot initialize \(paths.root): \(error)")
    }
  }

  /// A start in a directory that holds a daemon's state (a snapshot or log segments) but no
  /// config.json: the file was lost or moved, not never written. Writing the defaults in its
  /// place dropped its groups, hooks, budgets, worker types and cluster settings without a word.
  /// `cortex init` still writes them on request.
  public static func missingConfigRefusal(_ paths: Paths) -> StartupError? {
    guard !FileSystem.exists(paths.config) else { return nil }
    let segments = LogSegments.indexes((try? FileSystem.list(paths.events)) ?? [])
    guard FileSystem.exists(paths.taskQueue) || !segments.isEmpty else { return nil }
    return StartupError(
      "\(paths.config) is missing, but \(paths.root) holds a daemon's state (its tasks and decision log): put config.json back, "
        + "or write the defaults with: cortex init --force --no-start --dir \(paths.root)", exitCode: 65)
  }

  public static func loadConfig(paths: Paths) throws(StartupError) -> Config {
    let bytes: [UInt8]?
    do { bytes = try FileSystem.read(paths.config) } catch { throw StartupError("cannot read \(paths.config): \(error)") }
    guard let bytes else { return Config() }
    do {
      return try Config.decode(try JSON.parse(bytes))
    } catch let e as JSONParseError {
      throw StartupError("\(paths.config): \(e)", exitCode: 65)
    } catch {
      throw StartupError("\(paths.config): \(error)", exitCode: 65)
    }
  }

  /// Sets up everything and recovers the state; `run()` then serves.
  public convenience init(paths: Paths, options: DaemonOptions) throws(StartupError) {
    if options.detach { Processes.newSession() }
    if let problem = paths.socketPathProblem { throw StartupError(problem, exitCode: 64) }
    if let refusal = Self.missingConfigRefusal(paths) { throw refusal }
    _ = try Self.initialize(paths: paths, workers: nil, force: false)
    var config = try Self.loadConfig(paths: paths)
    if let w = options.workers { config.workers = w }

    // One daemon per directory.
    let lockFD: FileDescriptor
    let locked: Bool
    do throws(PosixError) {
      lockFD = try FileDescriptor.open(paths.lock, [.readWrite, .create])
      locked = try lockFD.tryLockExclusive()
    } catch {
      throw StartupError("cannot lock \(paths.lock): \(error)")
    }
    guard locked else {
      lockFD.close()
      let pid = (try? FileSystem.read(paths.pid)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self) }
      let who = pid.map { "pid \($0.filter { $0.isNumber })" } ?? "another process"
      throw StartupError("a daemon already runs for \(paths.root) (\(who)); stop it with: cortex stop --dir \(paths.root)")
    }
    do throws(StartupError) {
      try self.init(paths: paths, config: config, lockFD: lockFD, workersGiven: options.workers != nil)
    } catch {
      // A start that fails after it listened (a cluster it cannot join, a log it cannot write)
      // leaves no socket and no daemon.pid of its own behind: it holds the lock, so no other
      // daemon's are there, and a client finds "not running" rather than a dead socket.
      try? FileSystem.remove(paths.socket)
      if ((try? FileSystem.read(paths.pid)) ?? nil).map({ String(decoding: $0, as: UTF8.self).filter(\.isNumber) })
        == String(Processes.currentID)
      {
        try? FileSystem.remove(paths.pid)
      }
      throw error
    }
  }

  convenience init(paths: Paths, config: Config, lockFD: FileDescriptor, workersGiven: Bool) throws(StartupError) {
    var config = config
    // The previous daemon of this directory (a kill -9 or a crash leaves its daemon.pid, and
    // its pid in the hot state, which `cortex doctor --repair` keeps), read before this one
    // writes its own: in cluster mode only it may leave a name to take back.
    let previousPid =
      ((try? FileSystem.read(paths.pid)) ?? nil).flatMap { Int32(String(decoding: $0, as: UTF8.self).filter(\.isNumber)) }
      ?? ((try? FileSystem.read(paths.hotState)) ?? nil).flatMap { b in try? b.withUnsafeBytes({ HotState.read($0) }).get().pid }
    let got = Processes.raiseOpenFileLimit(max(2 * 1024 + 256 + config.maxClients + Self.reserveSize, 4096))
    Signal.ignore(Signal.pipe)
    Processes.becomeSubreaper()

    // Recovery: the snapshot, then the log it does not cover (Daemon+Recovery).
    let recovery = try Self.recoverState(paths: paths, config: config)
    var scheduler = recovery.scheduler
    // The pool size `cortex scale` or a start's --workers set survives a restart, a kill -9
    // included; this start's --workers sets it anew. The descriptors are checked for that size.
    config.workers = scheduler.adoptLivePoolSize(workersGiven: workersGiven)
    let want = config.workers * 2 + 256
    if got < want {
      throw StartupError("RLIMIT_NOFILE is \(got); \(config.workers) workers need \(want). Raise the hard limit (ulimit -Hn).")
    }
    let snapshotSeq = recovery.snapshotSeq
    let replay = (lastSeq: recovery.lastSeq, replayed: recovery.replayed)
    let notes = recovery.notes

    let log: EventLogWriter
    do throws(PosixError) {
      let manifest = recovery.manifest
      log = try EventLogWriter(
        directory: paths.events, segmentBytes: config.logSegmentBytes, lastSeq: replay.lastSeq,
        isSealed: { manifest.segment($0) != nil })
    } catch {
      throw StartupError("cannot open the event log in \(paths.events): \(error)")
    }
    try Self.recordNotes(notes, in: log, cluster: config.cluster)
    do throws(PosixError) {
      try self.init(paths: paths, config: config, scheduler: scheduler, log: log, lockFD: lockFD)
    } catch {
      throw StartupError("cannot start: \(error)")
    }
    clientDescriptors = max(16, got - 2 * 1024 - 256 - Self.reserveSize)
    maxClients = min(config.maxClients, clientDescriptors)
    let t = now()
    var out: [Action] = []
    if let settings = config.cluster {
      // The database holds the cluster's budget; this node's own check must never refuse first.
      scheduler.config.tokenBudgetTotal = 1 << 60
      let returned = scheduler.returnToSharedQueue(now: t, into: &out)
      let adapter = try ClusterAdapter(
        settings: settings, workers: config.workers, budgetTotal: config.tokenBudgetTotal, outboxPath: paths.clusterOutbox,
        groupLimits: Dictionary(config.groups.map { ($0.0, $0.1.parallel) }, uniquingKeysWith: { $1 }), previousPid: previousPid,
        directory: paths.root)
      do throws(PosixError) {
        try epoll.add(adapter.link.wakeFD, .input, token: Self.kindCluster)
      } catch {
        throw StartupError("cannot watch the cluster link: \(error)")
      }
      cluster = adapter
      if returned > 0 {
        log.append(
          Event("node.restarted", reason: "cluster", detail: "\(returned) tasks claimed before the restart are the cluster's again"),
          nowMs: t)
      }
    }
    let stored = SecretStore.load(paths.secrets)
    scheduler.restoreSecrets(stored, now: t, into: &out)
    readoptWorkers(&scheduler, now: t, into: &out)  // Daemon+Readopt: before settling, which retries the rest
    let settled = scheduler.settleAfterRecovery(now: t, into: &out)
    if !scheduler.retriedComplete { scheduler.restoreRetried(Self.findRetried(paths, scheduler)) }
    do throws(PosixError) {
      try secrets.rewrite(keeping: stored.filter { scheduler.tasks[$0.key].map { !$0.state.isTerminal } ?? false })
    } catch {
      throw StartupError("cannot rewrite \(paths.secrets): \(error)")
    }
    self.scheduler = scheduler
    let recovered = replay.lastSeq > 0
    log.append(
      Event(
        recovered ? "daemon.recovered" : "daemon.started", reason: recovered ? "restart" : "fresh",
        detail: recovered
          ? "state from \(snapshotSeq > 0 ? "snapshot seq \(snapshotSeq)" : "no snapshot") + \(replay.replayed) events; \(settled.requeued) in-flight tasks requeued, \(settled.queued) queued"
          : "new coordination directory",
        fields: [
          ("pid", .int(Int64(Processes.currentID))), ("workers", .int(Int64(config.workers))),
          ("workers_given", .bool(workersGiven)),
          ("snapshot_seq", .int(Int64(snapshotSeq))), ("replayed", .int(Int64(replay.replayed))),
          ("requeued", .int(Int64(settled.requeued))), ("recovery_ms", .int(recovery.tookMs)),
          ("recovery_cpu_ms", .int(recovery.cpuMs)), ("log_bytes_read", .int(Int64(recovery.logBytesRead))),
          ("segments_read", .int(Int64(recovery.segmentsRead))),
        ]), nowMs: t)
    settleRecoveredInbox(recovery.inbox, now: t)
    if let cluster { settleClusterInbox(cluster, now: t) }
    route(out, now: t)
    do throws(PosixError) {
      try log.flush(sync: true, nowMs: t)
    } catch {
      throw StartupError("cannot write the event log: \(error)")
    }
    try startLifecycle(recovery, now: t)
    try startWeb()
  }

  /// Writes what recovery did to the files (a torn last line cut, a snapshot, manifest or hot
  /// state set aside) to the log, durably, before anything else of the start can fail: a start
  /// that fails after it (a cluster it cannot join, a socket it cannot bind) must not leave a
  /// log cut with no `log.truncated` to say what was cut (SPEC §9). Also in daemon.log, where
  /// `cortex start` finds them and shows them.
  static func recordNotes(_ notes: [Event], in log: EventLogWriter, cluster: ClusterSettings?) throws(StartupError) {
    if let c = cluster { log.node = c.node ?? Host.name }
    guard !notes.isEmpty else { return }
    let t = Clock.wallMs()
    for n in notes {
      log.append(n, nowMs: t)
      if n.type == "daemon.warning" || n.type == "log.truncated" {
        try? FileDescriptor.standardError.writeAll("cortex daemon: warning: \(n.detail ?? n.type)\n")
      }
    }
    do throws(PosixError) {
      try log.flush(sync: true, nowMs: t)
    } catch {
      throw StartupError("cannot write the event log: \(error)")
    }
  }

  /// A hot-state file that fails validation is renamed aside (never deleted) with a warning; a
  /// valid one is returned (recovery takes the last seq and task number it saw as a floor). One
  /// that is all zeros was made by a start that failed before its first write (in cluster mode,
  /// a join refused: a wrong DSN, the server unreachable) and holds nothing: it is removed
  /// without a word, not called invalid and set aside at every next start.
  static func checkHotState(paths: Paths) -> (note: Event?, view: HotState.View?) {
    guard FileSystem.exists(paths.hotState) else { return (nil, nil) }
    let problem: String?
    if let bytes = (try? FileSystem.read(paths.hotState)) ?? nil {
      switch bytes.withUnsafeBytes({ HotState.read($0) }) {
      case .success(let v): return (nil, v)
      case .failure where bytes.allSatisfy({ $0 == 0 }):
        try? FileSystem.remove(paths.hotState)
        return (nil, nil)
      case .failure(let e): problem = e.description
      }
    } else {
      problem = "unreadable"
    }
    guard let problem else { return (nil, nil) }
    let aside = paths.hotState + ".bad-\(Clock.wallMs())"
    try? FileSystem.rename(paths.hotState, aside)
    return (
      Event(
        "daemon.warning", reason: "hot_state_invalid",
        detail:
          "hot-state.mmap is invalid (\(problem)); set aside as \(FileSystem.basename(aside)), recovering from the snapshot and the log"),
      nil
    )
  }

  /// Called once the pool is stopped: final snapshot, hot state, socket and pid file removed.
  func shutdownComplete() {
    let t = now()
    cluster?.outbox.flush()
    cluster?.link.stop()
    finishLifecycle(now: t)
    log.append(
      Event(
        "daemon.stopped", reason: "requested",
        detail: cluster == nil
          ? "\(scheduler.activeCount) unfinished tasks kept for the next start"
          : "\(scheduler.activeCount) unfinished tasks left to the cluster (the next rescue requeues them for any node)",
        fields: [("queued", .int(Int64(scheduler.queuedCount)))]), nowMs: t)
    try? log.flush(sync: true, nowMs: t)
    writeSnapshots(now: t, sync: true)
    writeGroupsFile(now: t)
    snapshots.drain()
    files.drain()
    updateHotState(now: t)
    hot?.flushAsync()
    for c in stopClients { reply(c, .object([("ok", .bool(true)), ("stopped", .bool(true))]), now: t) }
    answerOwedAtStop(now: t)
    for (_, c) in clients { c.flush() }
    if let l = listener { l.close() }
    try? FileSystem.remove(paths.socket)
    try? FileSystem.remove(paths.pid)
    for (_, ch) in channels { ch.close() }
    hooks.killAll(log: workerLog)
    log.close()
    // Reap anything left (grandchildren handed to us as subreaper).
    while Processes.reap() != nil {}
    lockFD.close()
  }
}
