import CortexCore
import Posix
import Synchronization

/// Options from the command line that override `config.json`.
public struct DaemonOptions: Sendable {
  public var workers: Int?
  public var detach = false
  public init() {}
}

/// The one loop that owns Cortex's state. It blocks in epoll with a timeout computed from the
/// scheduler's timers (no fixed tick), turns every wake-up into scheduler inputs, writes the
/// resulting events to the log, and only then carries out the other actions (write-ahead).
public final class Daemon {
  let paths: Paths
  var config: Config
  var scheduler: Scheduler
  let epoll: Epoll
  let signals: (read: FileDescriptor, write: FileDescriptor)
  var listener: FileDescriptor?
  var log: EventLogWriter
  let secrets: SecretStore
  /// Cluster mode's adapter (SPEC §11); nil on a single host.
  var cluster: ClusterAdapter?
  /// The log's lifecycle: compact records, seals, retention (Daemon+Lifecycle); set at start.
  var lifecycle: DaemonLifecycle?
  var channels: [Int: WorkerChannel] = [:]
  var pidToSlot: [Int32: Int] = [:]
  var clients: [ClientID: ClientConnection] = [:]
  var nextClientID: ClientID = 1
  /// Actions waiting for the log to be written (and, for durable replies, synced).
  var deferred: [Action] = []
  let files: BackgroundQueue
  /// Answers of reads done on `files` for requests (Daemon+Retry, Daemon+WaitAnswer).
  let fileReads: FileReads
  let snapshots: BackgroundQueue
  let snapshotDone = SnapshotProgress()
  var hot: MappedFile?
  let hotWriter = HotState.Writer()
  let lockFD: FileDescriptor
  let executable: String
  var workerLog: FileDescriptor?
  var stopClients: [ClientID] = []
  var inboxPending: [ClientID: String] = [:]
  /// Tasks whose `spec.json` is written after this commit's answers (Daemon+Files).
  var specFilesDue: [Int] = []
  /// `on_finish` hooks running or waiting (Daemon+Fleet).
  let hooks = HookRunner()
  /// What `groups.json` last said (rewritten only when it changes), when, and whether a control
  /// request (pause, resume, group set) wants it rewritten at once.
  var groupsFileText = ""
  var lastGroupsFileMs: Int64 = 0
  var groupsFileDue = true
  /// SIGHUPs handled, and why the last one kept the old config (nil when it was read): in the
  /// ping answer, so `cortex init --force` can tell when a running daemon has its new config.
  var configReloads = 0
  var configReloadError: String?
  /// SIGUSR2s that did not replace the program (the exec failed, or the restart was refused),
  /// and why the last did not: in the ping answer, so `cortex restart` says so at once instead
  /// of waiting out its timeout for a new program that never comes.
  var restartFailures = 0
  var restartFailure: String?
  /// The last config.json read has other `cluster` settings than this daemon started with
  /// (read at start only): said in the ping answer, so `cortex init --force` says so.
  var clusterSettingsChanged = false

  let wallStartMs: Int64
  let monoStartNs: Int64
  let startedMs: Int64
  var lastSnapshotMs: Int64 = 0
  var lastSnapshotSeq: UInt64 = 0
  var lastHotMs: Int64 = 0
  var hotDirty = true
  /// The log's last seq when the hot state was last written: an event appended outside the
  /// scheduler's actions (a snapshot, a worker's exit) also makes it stale, so that readers of
  /// its `lastSeq` (the web view's status) see every event within `hotIntervalMs`.
  var hotSeq: UInt64 = 0
  var hotStale: Bool { hotDirty || log.lastSeq != hotSeq }
  /// Work happened since the heap was last trimmed (see `Memory.releaseFreePages`).
  var busySinceTrim = false
  var lastTrimMs: Int64 = 0
  /// Client connections beyond this (and the reserve) are answered `too_many_connections` and
  /// closed: `max_clients` from the config, less if the descriptor limit is short, so the log,
  /// the snapshots and a full pool of 1,024 workers always have file descriptors left.
  var maxClients = 1024
  /// What the descriptor limit allows for `maxClients`.
  var clientDescriptors = 1024
  var refusedConnections = 0
  /// Connections in the reserve past `maxClients` (at most `reservedClients`).
  var reservedClients: Set<ClientID> = []
  /// Unprocessed request bytes held for all connections (see `Config.clientInputLimit`).
  var clientInputBytes = 0
  /// Connections not read until `clientInputBytes` falls.
  var pausedClients = 0
  /// Connections with complete requests left over for the next loop iteration.
  var backlog: Set<ClientID> = []
  var lastClientSweepMs: Int64 = 0
  var sampler = ResourceSampler()
  var lastSampleMs: Int64 = 0
  var lastMetricsMs: Int64 = 0
  var lastInboxScanMs: Int64 = 0
  var loggedSnapshotSeq: UInt64 = 0
  var finished = false
  /// Once the pool has stopped: until when the hooks still running may finish (Daemon+Fleet).
  var hooksGraceUntilMs: Int64?
  var iterationInputs = 0
  /// Set when the log's last write or sync failed; cleared by the next one that succeeds.
  var logFailure: PosixError?
  var logFailingSinceMs: Int64 = 0
  /// The next attempt to write the log while it fails, and the delay that led to it (doubling from
  /// 10 ms to 1 s): a full disk costs a few system calls a second, not a core.
  var logRetryAtMs: Int64 = 0
  var logRetryDelayMs: Int64 = 0
  /// Bytes free on the directory's file system while that is below `minFreeBytes`; nil when enough.
  var diskLowFreeBytes: Int?
  var lastSpaceCheckMs: Int64 = -1
  /// When daemon.log's size was last compared with `retention.daemon_log_bytes` (DaemonLog.swift).
  var lastDaemonLogCheckMs: Int64 = 0
  /// systemd's `$NOTIFY_SOCKET`, when it started us (Daemon+Notify.swift).
  var notifier: SystemdNotifier?

  static let hotIntervalMs: Int64 = 20
  static let spaceCheckIntervalMs: Int64 = 1000
  /// Space kept allocated past the end of daemon.log for messages written when the disk is full.
  public static let messageReserveBytes = 64 << 10
  /// Below this many free bytes on the directory's file system the daemon admits and starts
  /// nothing new: what is left is for the events of tasks already running.
  static let minFreeBytes = 1 << 20
  /// How long a stop waits for a failing log before the daemon exits without its final events.
  static let abandonStopAfterMs: Int64 = 2000
  static let metricsIntervalMs: Int64 = 5000
  static let trimIntervalMs: Int64 = 10_000
  /// An idle daemon trims its heap at most this long after the previous trim (the loop wakes at
  /// least once a second, so a burst's pages go back within about a second of its end).
  static let idleTrimAfterMs: Int64 = 1000
  static let inboxIntervalMs: Int64 = 1000

  /// Monotonic time expressed as wall-clock milliseconds since the epoch: timestamps read as real
  /// times, and intervals never go backwards.
  func now() -> Int64 { wallStartMs + (Clock.monotonicNs() - monoStartNs) / 1_000_000 }

  /// Opens the socket, the hot state and the pool's plumbing; spawns the workers.
  init(paths: Paths, config: Config, scheduler: Scheduler, log: EventLogWriter, lockFD: FileDescriptor) throws(PosixError) {
    self.paths = paths
    self.config = config
    self.scheduler = scheduler
    self.log = log
    self.lockFD = lockFD
    secrets = try SecretStore(path: paths.secrets)
    epoll = try Epoll()
    signals = try makePipe(nonBlocking: true)
    files = try BackgroundQueue()
    fileReads = try FileReads()
    snapshots = try BackgroundQueue()
    executable = Processes.executablePath()
    wallStartMs = Clock.wallMs()
    monoStartNs = Clock.monotonicNs()
    startedMs = wallStartMs
    lastSnapshotMs = wallStartMs
    workerLog = try? FileDescriptor.open(paths.daemonLog, [.writeOnly, .create, .append])
    notifier = SystemdNotifier.fromEnvironment(pid: Processes.currentID)
    recordService()
    try? FileDescriptor.standardError.reserveBeyondEnd(Self.messageReserveBytes)

    for s in [Signal.chld, Signal.term, Signal.int, Signal.hup, Signal.usr2] { try Signal.deliver(s, to: signals.write) }
    Signal.block(Signal.usr2, false)  // blocked across a restart's exec (Daemon+Restart)
    try epoll.add(signals.read, .input, token: Self.tokenSignal)
    try epoll.add(fileReads.wakeFD, .input, token: Self.kindFileReads)

    let l = try Self.openListener(paths)  // handed over by a restart, or new (Daemon+Restart)
    listener = l
    try epoll.add(l, .input, token: Self.tokenListener)
    try FileSystem.writeAtomically(paths.pid, Array("\(Processes.currentID)\n".utf8))
    // Every block of the mapping is allocated now: a page the file system could not back later
    // would kill the daemon with SIGBUS the first time a write touched it on a full disk.
    hot = try MappedFile(path: paths.hotState, size: HotState.fileSize, writable: true)
    adoptHooks(now: now())  // hooks still running from before a restart in place (Daemon+Restart)
  }

  /// Starts the pool (after recovery has been logged).
  func startPool() {
    var out: [Action] = []
    scheduler.start(now: now(), into: &out)
    route(out, now: now())
    updateHotState(now: now())
  }

  // MARK: the loop

  /// Runs until the pool is stopped. Returns the process exit code.
  public func run() -> Int32 {
    startPool()
    var events: [(token: UInt64, events: Epoll.Events)] = []
    events.reserveCapacity(256)
    while !finished || hooksOutlastTheStop(now: now()) {
      let timeout = computeTimeout()
      epoll.wait(timeoutMs: timeout, into: &events)
      let t = now()
      for (token, ev) in events { dispatchWake(token: token, events: ev, now: t) }
      serviceClients(now: t)
      if let wake = scheduler.nextWakeMs(), wake <= t { feed(.tick, now: t) }
      cluster?.tick(spare: scheduler.spareCapacity, startable: scheduler.startableNow, now: t)
      periodic(now: t)
      commit(now: t)
      notifySystemd(now: t)
      if mustAbandonStop(now: t) { return abandonStop() }
    }
    shutdownComplete()
    return 0
  }

  static let tokenSignal: UInt64 = 0
  static let tokenListener: UInt64 = 1
  static let kindWorkerOut: UInt64 = 2 << 40
  static let kindWorkerIn: UInt64 = 3 << 40
  static let kindClient: UInt64 = 4 << 40
  static let kindCluster: UInt64 = 5 << 40
  /// An adopted worker's pidfd (Daemon+Readopt.swift).
  static let kindWorkerPid: UInt64 = 6 << 40
  /// The log lifecycle thread's wake pipe (Daemon+Lifecycle.swift).
  static let kindLifecycle: UInt64 = 7 << 40
  /// Answers of reads done on the files thread (FileReads).
  static let kindFileReads: UInt64 = 8 << 40
  static let kindMask: UInt64 = 0xFF << 40

  func computeTimeout() -> Int32 {
    let t = now()
    var wake = t + 1000
    if let w = scheduler.nextWakeMs() { wake = min(wake, w) }
    if hotStale { wake = min(wake, lastHotMs + Self.hotIntervalMs) }
    if logFailure != nil {
      // Pending events and deferred actions wait for the next attempt: never a 0 ms loop.
      wake = min(wake, logRetryAtMs)
    } else {
      if log.hasUnsynced, let since = log.unsyncedSinceMs { wake = min(wake, since + Int64(config.syncIntervalMs)) }
      if log.hasPending { wake = min(wake, t + 100) }
      if !deferred.isEmpty { wake = t }
    }
    if let w = clientWakeMs(now: t) { wake = min(wake, w) }
    if let d = hooks.nextDeadlineMs { wake = min(wake, d) }
    if let w = notifier?.nextWakeMs { wake = min(wake, w) }
    return Int32(max(0, min(1000, wake - t)))
  }

  func dispatchWake(token: UInt64, events ev: Epoll.Events, now t: Int64) {
    switch token & Self.kindMask {
    case 0:
      if token == Self.tokenSignal { handleSignals(now: t) } else { acceptClients(now: t) }
    case Self.kindWorkerOut:
      let slot = Int(token & 0xFFFF_FFFF)
      if let ch = channels[slot] { readWorker(ch, now: t) }
    case Self.kindWorkerIn:
      let slot = Int(token & 0xFFFF_FFFF)
      if let ch = channels[slot] {
        ch.flush()
        updateInterest(ch)
      }
    case Self.kindCluster: clusterEvents(now: t)
    case Self.kindWorkerPid: adoptedWorkerExited(Int(token & 0xFFFF_FFFF), now: t)
    case Self.kindLifecycle: lifecycleWake(now: t)
    case Self.kindFileReads: takeFileReads(now: t)
    case Self.kindClient:
      let id = token & 0xFF_FFFF_FFFF
      if let c = clients[id] { clientWake(c, ev, now: t) }
    default: break
    }
  }

  /// Feeds one input to the scheduler and routes its actions: events to the log buffer now,
  /// everything else after the log is written.
  func feed(_ input: Scheduler.Input, now t: Int64) {
    var out: [Action] = []
    scheduler.handle(input, now: t, into: &out)
    route(out, now: t)
  }

  func route(_ actions: [Action], now t: Int64) {
    for a in actions {
      if case .log(let e) = a {
        log.append(e, nowMs: t)
        noteLogged(e, now: t)
        cluster?.observe(e)
        hotDirty = true
      } else if case .storeSecrets(let n, let values) = a {
        secrets.append(task: n, values)
      } else {
        deferred.append(a)
      }
    }
  }

  /// Writes the log (syncing when a durable answer waits or the sync interval is up), then carries
  /// out the deferred actions. While the log cannot be written nothing that depends on it is carried
  /// out, the scheduler admits nothing, the write is retried with backoff (`logRetryAtMs`), and
  /// only answers that acknowledge nothing go out (`sendRefusals`).
  func commit(now t: Int64) {
    if logFailure != nil && t < logRetryAtMs {
      sendRefusals(now: t)
      return
    }
    var rounds = 0
    while log.hasPending || !deferred.isEmpty || log.hasUnsynced {
      rounds += 1
      let needsSync =
        deferred.contains { if case .reply(_, _, true) = $0 { return true } else { return false } }
        || (log.unsyncedSinceMs.map { t - $0 >= Int64(config.syncIntervalMs) } ?? false)
        || (log.hasPending && config.syncIntervalMs == 0)
      do throws(PosixError) {
        // Secrets first, durably: no log line may name values that are not on disk.
        try secrets.flush()
        try log.flush(sync: needsSync, nowMs: t)
      } catch {
        logFailed(error, now: t)
        sendRefusals(now: t)
        return
      }
      if logFailure != nil { logWritable(now: t) }
      if deferred.isEmpty { break }
      let batch = deferred
      deferred.removeAll(keepingCapacity: true)
      for a in batch { perform(a, now: t) }
      if rounds > 64 { break }
      if !log.hasPending && deferred.isEmpty { break }
    }
    writeSpecFiles()
  }

  func perform(_ a: Action, now t: Int64) {
    switch a {
    case .log(let e):
      log.append(e, nowMs: t)
      noteLogged(e, now: t)
    case .storeSecrets(let n, let values): secrets.append(task: n, values)
    case .reply(let c, let v, _): sendReply(c, v, now: t)
    case .send(let w, let msg):
      guard let ch = channels[w] else { return }
      if case .run(let n, let attempt, _, let budget, let spec, _) = msg {
        let run = DaemonToWorker.run(
          task: n, attempt: attempt, dir: paths.taskDir(n), budget: budget, spec: spec, maxOutput: config.retention.maxOutputBytes)
        ch.send(run.encodedLine())
      } else {
        ch.send(msg.encodedLine())
      }
      updateInterest(ch)
    case .spawnWorker(let w): spawnWorker(w, now: t)
    case .killWorker(_, let pid):
      if pid > 0 { Processes.signal(pid, Signal.kill) }
    case .killGroup(let pg, let hard):
      Processes.signalGroup(pg, hard ? Signal.kill : Signal.term)
    case .closeWorker(let w): channels[w]?.discardStale()
    case .writeSpec(let n): writeSpecFile(n)
    case .writeResult(let n):
      writeResultFile(n)
      taskFinished(n, now: t)
    case .stopped: finished = true
    }
  }

  // MARK: workers

  func spawnWorker(_ slot: Int, now t: Int64) {
    do throws(PosixError) {
      let ch: WorkerChannel
      if let existing = channels[slot] {
        ch = existing
      } else {
        ch = try WorkerChannel(slot: slot, paths: paths)
        try epoll.add(ch.output, .input, token: Self.kindWorkerOut | UInt64(slot))
        channels[slot] = ch
      }
      let pid = try spawnRecorded(ch)  // Daemon+Readopt
      pidToSlot[pid] = slot
      feed(.workerSpawned(slot, pid: pid), now: t)
    } catch {
      feed(.workerSpawnFailed(slot, error.description), now: t)
    }
  }

  func updateInterest(_ ch: WorkerChannel) {
    if ch.wantsWritable {
      try? epoll.add(ch.input, .output, token: Self.kindWorkerIn | UInt64(ch.slot))
    } else {
      epoll.remove(ch.input)
    }
  }

  func readWorker(_ ch: WorkerChannel, now t: Int64) {
    _ = ch.readAvailable()
    processWorkerLines(ch, now: t)
  }

  func processWorkerLines(_ ch: WorkerChannel, now t: Int64) {
    while true {
      switch ch.lines.next() {
      case .none: return
      case .tooLong, .dropped:
        feed(.workerGarbage(ch.slot, "a message longer than 1 MiB"), now: t)
        return
      case .line(let line):
        if line.isEmpty { continue }
        do throws(SpecError) {
          let msg = try WorkerToDaemon.decode(line)
          feed(.worker(ch.slot, msg), now: t)
        } catch {
          let shown = String(decoding: line.prefix(120), as: UTF8.self)
          feed(.workerGarbage(ch.slot, "unreadable message (\(error)): \(shown)"), now: t)
          ch.lines.reset()
          return
        }
      }
    }
  }

  func handleSignals(now t: Int64) {
    var buf: [UInt8] = []
    _ = try? signals.read.read(appendingTo: &buf, max: 256)
    var reap = false
    for s in buf {
      switch Int32(s) {
      case Signal.chld: reap = true
      case Signal.term, Signal.int: requestStop(timeoutMs: Numbers.ms(fromSeconds: config.killGraceS) + 25_000, client: nil, now: t)
      case Signal.hup: reloadConfig(now: t)
      case Signal.usr2: restartInPlace(now: t)
      default: break
      }
    }
    if reap { reapChildren(now: t) }
  }

  func reapChildren(now t: Int64) {
    var sweep = false
    defer { if sweep { killOrphanedTasks() } }
    while let (pid, status) = Processes.reap() {
      guard let slot = pidToSlot.removeValue(forKey: pid) else {
        _ = hookReaped(pid, status, now: t)  // a hook, or an orphaned grandchild
        // What it started outside its group came to the daemon (a subreaper) as it ended.
        sweep = true
        continue
      }
      let text: String
      let crashed: Bool
      switch status {
      case .exited(let c):
        text = "exit code \(c)"
        crashed = c != 0
      case .signaled(let s):
        text = "killed by \(Signal.name(s))"
        crashed = true
      }
      if let ch = channels[slot] {
        // What it said before it died still counts (a final "done").
        _ = ch.readAvailable()
        processWorkerLines(ch, now: t)
      }
      feed(.workerExited(slot, pid: pid, status: text, crashed: crashed), now: t)
      if crashed { sweep = true }
    }
  }

  /// A worker that dies may leave its task's process group behind before the daemon learned the
  /// group's id, and a hook may leave a process it moved out of its group (`setsid`). As subreaper
  /// the daemon inherits such orphans: any child that is not a worker, a hook or one of the
  /// daemon's own helpers (`HelperChildren`: gzip) is one, and its group is killed (it is reaped
  /// as it exits).
  func killOrphanedTasks() {
    HelperChildren.shared.withoutNewOnes { helpers in
      for pid in Processes.children()
      where pidToSlot[pid] == nil && !hooks.isHook(pid) && !helpers.contains(pid) && Processes.info(pid)?.isZombie == false {
        _ = Processes.signalGroup(pid, Signal.kill)
        _ = Processes.signal(pid, Signal.kill)
      }
    }
  }

  func requestStop(timeoutMs: Int64, client: ClientID?, now t: Int64) {
    if let client { stopClients.append(client) }
    feed(.stop(timeoutMs: timeoutMs), now: t)
  }

  /// A message to stderr (daemon.log when detached). Each one is followed by setting space aside
  /// past the end of that file again, so the next message, even the runtime's report of a crash,
  /// still fits when the disk is full.
  func writeStderr(_ s: String) {
    try? FileDescriptor.standardError.writeAll(s)
    try? FileDescriptor.standardError.reserveBeyondEnd(Self.messageReserveBytes)
  }
}

/// Completion of background snapshot writes, read by the loop to log `snapshot.written`.
final class SnapshotProgress: Sendable {
  let seq = Atomic<UInt64>(0)
  let failures = Atomic<Int>(0)
}
