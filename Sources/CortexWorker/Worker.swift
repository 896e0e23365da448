import CortexCore
public import Posix

/// A persistent worker (`cortex worker`, started by the daemon). It runs one task at a time:
/// command tasks in their own process group, synthetic tasks in-process. It reads commands from
/// its `.in` FIFO and reports on `.out`.
///
/// It outlives its daemon (SPEC §14). End of file on `.in` (the daemon held the only write end)
/// or a broken pipe on `.out` means the daemon is gone: the worker is then an orphan. Its task
/// runs on; every report is written to its spool file (`fifo/worker-NNN.spool`) before it is
/// sent, and kept in memory (`report`), so nothing is lost while nobody listens. It looks for a
/// new writer on `.in` every `orphanPollMs`; a new daemon that opens the FIFOs sends `adopt`, and
/// the worker answers `hello` with its state. With no daemon for `orphanTimeoutMs` it kills its
/// task's group and exits, so nothing runs unsupervised for ever.
public final class Worker {
  let paths: Paths
  let slot: Int
  let heartbeatMs: Int64
  let input: FileDescriptor
  let output: FileDescriptor
  let epoll: Epoll
  let signals: (read: FileDescriptor, write: FileDescriptor)
  var lines = LineBuffer()
  var current: Running?
  var nextHeartbeatMs: Int64 = 0
  var rng: SplitMix64
  var exiting = false
  /// What a new daemon is told on adoption; mirrored in the spool file.
  var report: WorkerReport
  let spool: FileDescriptor?
  let orphanTimeoutMs: Int64
  /// When the daemon was found gone (monotonic ms); nil while one listens.
  var orphanSinceMs: Int64?
  /// False while orphaned and `.in` is polled instead of watched (it would report hang-up without end).
  var inputWatched = true
  var nextPollMs: Int64 = 0
  static let orphanPollMs: Int64 = 50

  struct Running {
    var task: Int
    var attempt: Int
    var startedMs: Int64
    var tokens = 0
    var pid: Int32 = 0
    var report: FileDescriptor?
    var reportLines = LineBuffer(maxLine: 1 << 16)
    var synthetic: TaskSpec.Synthetic?
    var endAtMs: Int64 = 0
    var killAtMs: Int64?
    var cancelled = false
    /// A report line said the provider rate limited it (and when to try again).
    var rateLimited = false
    var retryAfterMs: Int64?
    /// stdout and stderr through the worker, when output is limited.
    var output: TaskOutput?
    /// A report line said why it is failing (`{"error": …, "reason": …}`).
    var failure: (reason: String, detail: String)?
  }

  static let tokenInput: UInt64 = 1
  static let tokenSignals: UInt64 = 2
  static let tokenReport: UInt64 = 3
  static let tokenOutput: UInt64 = 4

  public init(dir: String, slot: Int, heartbeatMs: Int, orphanTimeoutMs: Int = 300_000, token: String) throws(PosixError) {
    paths = Paths(root: dir)
    self.slot = slot
    self.heartbeatMs = Int64(max(50, heartbeatMs))
    self.orphanTimeoutMs = Int64(max(0, orphanTimeoutMs))
    report = WorkerReport(slot: slot, pid: Processes.currentID, token: token)
    // No parent-death signal: the worker outlives its daemon (see the type's comment). Unless it
    // must not (cluster mode: another node takes the tasks over), then it leaves with it as before.
    if orphanTimeoutMs == 0 { Processes.setParentDeathSignal(Signal.term) }
    // What a task starts outside its process group is handed to the worker when orphaned, so
    // it can be ended with the task (Worker+Leftovers).
    Processes.becomeSubreaper()
    Signal.ignore(Signal.pipe)
    Signal.ignore(Signal.int)
    Signal.ignore(Signal.hup)
    spool = try? FileDescriptor.open(paths.workerSpool(slot), [.writeOnly, .create, .truncate])
    input = try FileDescriptor.open(paths.fifoIn(slot), [.readOnly, .nonBlocking])
    // Not blocking: a daemon that died before this worker got here holds no end of the FIFO,
    // and the open fails with ENXIO instead of waiting for a reader for ever.
    output = try FileDescriptor.open(paths.fifoOut(slot), [.writeOnly, .nonBlocking])
    try output.setNonBlocking(false)
    epoll = try Epoll()
    signals = try makePipe(nonBlocking: true)
    try Signal.deliver(Signal.chld, to: signals.write)
    try Signal.deliver(Signal.term, to: signals.write)
    try epoll.add(input, .input, token: Self.tokenInput)
    try epoll.add(signals.read, .input, token: Self.tokenSignals)
    rng = SplitMix64(seed: UInt64(truncatingIfNeeded: Clock.monotonicNs()) ^ UInt64(slot))
  }

  /// Serves until told to exit or the daemon is gone. Returns the exit code.
  public func run() -> Int32 {
    send(.ready(pid: Processes.currentID))
    var events: [(token: UInt64, events: Epoll.Events)] = []
    nextHeartbeatMs = Clock.monotonicMs() + heartbeatMs
    while !exiting {
      var wake = nextHeartbeatMs
      if !inputWatched { wake = min(wake, nextPollMs) }
      if let o = orphanSinceMs { wake = min(wake, o + orphanTimeoutMs) }
      if let r = current {
        if r.synthetic != nil && !r.cancelled { wake = min(wake, r.endAtMs) }
        if let k = r.killAtMs { wake = min(wake, k) }
      }
      let timeout = Int32(max(0, min(5000, wake - Clock.monotonicMs())))
      epoll.wait(timeoutMs: timeout, into: &events)
      for (token, _) in events {
        switch token {
        case Self.tokenInput: readCommands()
        case Self.tokenSignals: readSignals()
        case Self.tokenReport: readReport()
        case Self.tokenOutput: pumpOutput()
        default: break
        }
        if exiting { break }
      }
      timers()
    }
    _ = killLeftovers()
    return 0
  }

  // MARK: daemon → worker

  func readCommands() {
    var chunk: [UInt8] = []
    while true {
      do throws(PosixError) {
        let n = try input.read(appendingTo: &chunk, max: 65536)
        if n == 0 {
          orphaned()
          return
        }
        lines.append(chunk)
        chunk.removeAll(keepingCapacity: true)
      } catch {
        break
      }
    }
    while case .line(let line) = lines.next() {
      if line.isEmpty { continue }
      do throws(SpecError) {
        handle(try DaemonToWorker.decode(line))
      } catch {
        writeStderr("cortex worker \(slot): ignoring a bad command: \(error)\n")
      }
      if exiting { return }
    }
  }

  func handle(_ cmd: DaemonToWorker) {
    switch cmd {
    case .run(let task, let attempt, let dir, let budget, let spec, let maxOutput):
      if current != nil {
        writeStderr("cortex worker \(slot): refusing \(TaskID.format(task)): already running one\n")
        return
      }
      start(task: task, attempt: attempt, dir: dir, budget: budget, spec: spec, maxOutput: maxOutput)
    case .cancel(let task, let graceMs):
      guard var r = current, r.task == task, !r.cancelled else { return }
      r.cancelled = true
      if r.synthetic != nil {
        current = r
        finish(exitCode: nil, signal: Signal.term)
        return
      }
      Processes.signalGroup(r.pid, Signal.term)
      r.killAtMs = Clock.monotonicMs() + Int64(graceMs)
      current = r
    case .exit:
      if let r = current, r.pid > 0 { Processes.signalGroup(r.pid, Signal.kill) }
      // A daemon sends exit only to an idle worker whose last outcome it has: nothing to keep.
      try? FileSystem.remove(paths.workerSpool(slot))
      exiting = true
    case .adopt:
      if orphanSinceMs != nil {
        writeStderr("cortex worker \(slot): adopted by a new daemon\n")
      }
      orphanSinceMs = nil
      nextHeartbeatMs = Clock.monotonicMs() + heartbeatMs
      send(.hello(report))
    }
  }

  // MARK: running a task

  func start(task: Int, attempt: Int, dir: String, budget: Int, spec: TaskSpec, maxOutput: Int = 0) {
    let now = Clock.wallMs()
    var r = Running(task: task, attempt: attempt, startedMs: now)
    // A new run means the daemon has the previous outcome: the report now follows this task.
    report.task = task
    report.attempt = attempt
    report.taskPid = 0
    report.startedMs = now
    report.tokensUsed = 0
    report.progress = nil
    report.outcome = nil
    report.cancelled = false
    if let syn = spec.synthetic {
      r.synthetic = syn
      r.tokens = syn.tokens
      current = r
      if syn.durationMs == 0 {
        finish(exitCode: 0, signal: nil)
      } else {
        current!.endAtMs = Clock.monotonicMs() + Int64(syn.durationMs)
        report.tokensUsed = syn.tokens
        saveSpool()
        send(.started(task: task, pid: 0, atMs: now))
      }
      return
    }
    let argv =
      AgentRunner.launchArgv(spec, executable: Processes.executablePath()) ?? spec.command ?? ["/bin/sh", "-c", spec.shell ?? "true"]
    do throws(PosixError) {
      try FileSystem.makeDirectories(dir)
      let log = try FileDescriptor.open(dir + "/output.log", [.writeOnly, .create, .append])
      var keepLog = false
      defer { if !keepLog { log.close() } }
      if attempt > 1 { try? log.writeAll("--- cortex: attempt \(attempt) ---\n") }
      // With a limit the task writes into a pipe the worker copies from (TaskOutput).
      let outPipe = maxOutput > 0 ? try makePipe() : nil
      defer { outPipe?.write.close() }
      let out = outPipe?.write ?? log
      let devnull = try FileDescriptor.open("/dev/null", .readOnly)
      defer { devnull.close() }
      let report = try makePipe()
      defer { report.write.close() }
      // The task's own values win over the worker's (getenv returns the first match).
      let own = Set(spec.env.map { $0.0 + "=" })
      var env = Environment.all().filter { entry in
        !entry.hasPrefix("CORTEX_") && !own.contains(String(entry.prefix { $0 != "=" }) + "=")
      }
      for (k, v) in spec.env { env.append("\(k)=\(v)") }
      env.append(contentsOf: [
        "CORTEX_DIR=\(paths.root)",
        "CORTEX_TASK_ID=\(TaskID.format(task))", "CORTEX_TOKEN_BUDGET=\(budget)", "CORTEX_ATTEMPT=\(attempt)",
        "CORTEX_WORKER_ID=\(WorkerID.format(slot))", "CORTEX_REPORT_FD=3",
      ])
      // Found on the task's PATH, not the worker's (CommandLookup); argv[0] itself is kept.
      let program = CommandLookup.resolve(argv[0], environment: env, cwd: spec.cwd)
      let pid = try Processes.spawn(
        argv, program: program, environment: env, directory: spec.cwd, stdin: devnull, stdout: out, stderr: out, fd3: report.write,
        newProcessGroup: true)
      try report.read.setNonBlocking(true)
      try epoll.add(report.read, .input, token: Self.tokenReport)
      r.pid = pid
      r.report = report.read
      if let outPipe {
        try outPipe.read.setNonBlocking(true)
        try epoll.add(outPipe.read, .input, token: Self.tokenOutput)
        r.output = TaskOutput(pipe: outPipe.read, file: log, limit: maxOutput, written: (try? log.size()) ?? 0)
        keepLog = true
      }
      current = r
      self.report.taskPid = pid
      saveSpool()
      send(.started(task: task, pid: pid, atMs: now))
    } catch {
      current = r
      // A working directory removed after the submit fails the spawn with ENOENT too: that is
      // not "command not found" (which sent people looking at their PATH).
      let what =
        if let cwd = spec.cwd, !FileSystem.isDirectory(cwd) {
          "cannot run \(argv[0]) in \(cwd): the task's working directory is gone (removed or renamed after the submit)"
        } else if error.code == PosixError.ENOENT_ {
          "command not found: \(argv[0])"
        } else {
          "cannot run \(argv[0]): \(error)"
        }
      if let log = try? FileDescriptor.open(dir + "/output.log", [.writeOnly, .create, .append]) {
        try? log.writeAll("cortex: \(what)\n")
        log.close()
      }
      finish(exitCode: 127, signal: nil, error: what)
    }
  }

  func readReport() {
    guard var r = current, let fd = r.report else { return }
    var chunk: [UInt8] = []
    var eof = false
    while true {
      do throws(PosixError) {
        let n = try fd.read(appendingTo: &chunk, max: 65536)
        if n == 0 {
          eof = true
          break
        }
        r.reportLines.append(chunk)
        chunk.removeAll(keepingCapacity: true)
      } catch {
        break
      }
    }
    var tokens: Int? = nil
    var progress: Double? = nil
    var message: String? = nil
    var any = false
    var refused: [String] = []
    while case .line(let line) = r.reportLines.next() {
      if line.isEmpty { continue }
      let report = ReportLine.parse(line)
      if let t = report.tokensUsed {
        r.tokens = max(r.tokens, t)
        tokens = r.tokens
        any = true
      }
      if let p = report.progress {
        progress = p
        any = true
      }
      if let m = report.message {
        message = m
        any = true
      }
      if report.rateLimited {
        r.rateLimited = true
        r.retryAfterMs = report.retryAfterS.map { Numbers.ms(fromSeconds: $0) }
      }
      if let e = report.error {
        r.failure = (report.reason ?? "task_error", e)
        message = e
        any = true
      }
      refused += report.refused
    }
    if !refused.isEmpty {
      // Say so in the decision log rather than drop it silently (at most a few reasons per read).
      let said = "report line refused: " + refused.prefix(4).joined(separator: "; ")
      message = message.map { $0 + " (" + said + ")" } ?? said
      any = true
    }
    if eof {
      epoll.remove(fd)
      fd.close()
      r.report = nil
    }
    current = r
    if any {
      report.tokensUsed = r.tokens
      if let progress { report.progress = progress }
      saveSpool()
      send(.progress(task: r.task, tokensUsed: tokens, progress: progress, message: message))
    }
  }

  func pumpOutput() {
    guard var o = current?.output else { return }
    if !o.pump() {
      epoll.remove(o.pipe)
      o.close()
      current?.output = nil
      return
    }
    current?.output = o
  }

  /// The task is over: copies what its pipe still holds and closes it (a process that escaped
  /// the group and keeps the pipe open loses its output from here on).
  func closeOutput() {
    guard var o = current?.output else { return }
    _ = o.pump()
    epoll.remove(o.pipe)
    o.close()
    current?.output = nil
  }

  func readSignals() {
    var buf: [UInt8] = []
    _ = try? signals.read.read(appendingTo: &buf, max: 64)
    for s in buf {
      if Int32(s) == Signal.term { daemonGone() }
    }
    reapTask()
  }

  func reapTask() {
    while let (pid, status) = Processes.reap() {
      guard let r = current, r.pid == pid else { continue }
      if r.report != nil { readReport() }
      // The leader is gone; nothing else of its group may outlive it.
      Processes.signalGroup(pid, Signal.kill)
      var spins = 0
      while Processes.groupExists(pid) && spins < 400 {
        // Its processes come back to the worker (a subreaper) as they are orphaned: reaped here,
        // or the group would exist as zombies until the spin gives up.
        while Processes.reap() != nil {}
        if !Processes.groupExists(pid) { break }
        sleepMs(5)
        spins += 1
      }
      endLeftovers(of: r.task)
      switch status {
      case .exited(let c): finish(exitCode: c, signal: nil)
      case .signaled(let s): finish(exitCode: nil, signal: s)
      }
    }
  }

  func timers() {
    let now = Clock.monotonicMs()
    if var r = current {
      if r.synthetic != nil && !r.cancelled && now >= r.endAtMs {
        let fail = (r.synthetic!.errorRate > 0) && Double(rng.next() % 1_000_000) / 1_000_000 < r.synthetic!.errorRate
        if fail {
          r.tokens = r.tokens / 2
          current = r
          finish(exitCode: 1, signal: nil, error: "429")
        } else {
          finish(exitCode: 0, signal: nil)
        }
      } else if let k = r.killAtMs, now >= k, r.pid > 0 {
        Processes.signalGroup(r.pid, Signal.kill)
        r.killAtMs = nil
        current = r
      }
    }
    if now >= nextHeartbeatMs {
      if orphanSinceMs == nil { send(.heartbeat) }
      nextHeartbeatMs = now + heartbeatMs
    }
    if !inputWatched && now >= nextPollMs { pollInput(now: now) }
    if let o = orphanSinceMs, now - o >= orphanTimeoutMs, !exiting {
      writeStderr("cortex worker \(slot): no daemon for \(orphanTimeoutMs / 1000) s (orphan_timeout_s); stopping its task and exiting\n")
      daemonGone()
    }
  }

  func finish(exitCode: Int32?, signal: Int32?, error: String? = nil) {
    closeOutput()
    guard let r = current else { return }
    if let fd = r.report {
      epoll.remove(fd)
      fd.close()
    }
    current = nil
    var outcome = TaskOutcome(
      task: r.task, exitCode: exitCode, signal: signal, tokensUsed: r.tokens, startedMs: r.startedMs,
      endedMs: Clock.wallMs(), error: error ?? r.failure?.detail)
    if error == nil { outcome.reason = r.failure?.reason }
    // A task that said it was rate limited and then failed was refused by its provider.
    if r.rateLimited && !(exitCode == 0 && signal == nil && error == nil) {
      outcome.rateLimited = true
      outcome.retryAfterMs = r.retryAfterMs
    }
    report.tokensUsed = r.tokens
    report.outcome = outcome
    report.cancelled = r.cancelled
    saveSpool()
    send(.done(outcome))
  }

  /// Sends a message unless orphaned (reports are in the spool and in `report` meanwhile). A
  /// write that fails means nobody reads `.out`: the daemon is gone.
  func send(_ msg: WorkerToDaemon) {
    guard orphanSinceMs == nil else { return }
    do throws(PosixError) {
      try output.writeAll(msg.encodedLine())
    } catch {
      orphaned()
    }
  }

  func writeStderr(_ s: String) { try? FileDescriptor.standardError.writeAll(s) }
}
