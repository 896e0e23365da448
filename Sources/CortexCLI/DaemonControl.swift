import CortexCore
import CortexDaemon
import Posix

/// Starting, stopping and observing a daemon from a command (`start`, `stop`, `status`, `demo`,
/// `bench` share these).
enum DaemonControl {
  /// Initializes the directory if needed, spawns `cortex daemon --detach`, and returns the ping
  /// answer once the daemon and all its workers are ready.
  static func start(_ ctx: Context, workers: Int?, timeoutS: Int, extraEnvironment: [String] = []) throws(CLIError) -> JSON {
    if let problem = ctx.paths.socketPathProblem { throw CLIError(ExitCode.usage, problem) }
    if let refusal = Daemon.missingConfigRefusal(ctx.paths) { throw CLIError(ExitCode.failure, refusal.description) }
    do { _ = try Daemon.initialize(paths: ctx.paths, workers: nil, force: false) } catch {
      throw CLIError(ExitCode.failure, error.description)
    }
    if let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("ping"))])) {
      throw CLIError(ExitCode.failure, "a daemon already runs for \(ctx.paths.root) (pid \(v["pid"]?.int ?? 0))")
    }
    var argv = [ctx.executable, "--dir", ctx.paths.root, "daemon", "--detach"]
    if let workers { argv += ["--workers", String(workers)] }
    let pid: Int32
    let logStart: Int
    do throws(PosixError) {
      let log = try FileDescriptor.open(ctx.paths.daemonLog, [.writeOnly, .create, .append])
      defer { log.close() }
      logStart = try log.seekToEnd()
      // Room for the daemon's messages (a refusal to start, a crash report) on a full disk.
      try? log.reserveBeyondEnd(Daemon.messageReserveBytes)
      let devnull = try FileDescriptor.open("/dev/null", .readOnly)
      defer { devnull.close() }
      pid = try Processes.spawn(
        argv, environment: Environment.all() + extraEnvironment, stdin: devnull, stdout: log, stderr: log,
        newProcessGroup: false)
    } catch {
      throw CLIError(ExitCode.failure, "cannot start the daemon: \(error)")
    }
    let deadline = Clock.monotonicMs() + Int64(timeoutS) * 1000
    while Clock.monotonicMs() < deadline {
      if let (_, status) = Processes.reap(pid) {
        let text = String(decoding: Self.written(ctx.paths.daemonLog, since: logStart), as: UTF8.self)
        throw CLIError(ExitCode.failure, "the daemon exited during start (\(status)):\n\(text)")
      }
      if let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("ping"))])), v["ready"]?.bool == true {
        // What the start warned about (a torn tail cut, events missing from the log, a file set
        // aside), from its messages in daemon.log.
        let prefix = "cortex daemon: warning: "
        let warnings = String(decoding: Self.written(ctx.paths.daemonLog, since: logStart), as: UTF8.self).split(separator: "\n")
          .filter { $0.hasPrefix(prefix) }.map { JSON.string(String($0.dropFirst(prefix.count))) }
        guard !warnings.isEmpty, var o = v.object else { return v }
        o.append(("warnings", .array(warnings)))
        return .object(o)
      }
      sleepMs(5)
    }
    throw CLIError(ExitCode.failure, "the daemon (pid \(pid)) was not ready within \(timeoutS) s; see \(ctx.paths.daemonLog)")
  }

  /// What daemon.log holds past `offset` (what this start wrote), without reading what came
  /// before it (up to `retention.daemon_log_bytes`, or more from before that limit).
  static func written(_ path: String, since offset: Int) -> [UInt8] {
    guard let fd = try? FileDescriptor.open(path, .readOnly) else { return [] }
    defer { fd.close() }
    return (try? fd.readToEnd(from: offset)) ?? []
  }

  /// Asks the daemon to stop and waits until its process is gone.
  @discardableResult
  /// `progress`, when given, hears every second what the drain still waits for.
  static func stop(
    _ ctx: Context, timeoutS: Int, progress: ((String) -> Void)? = nil
  ) throws(CLIError) -> (
    pid: Int32, answer: JSON?
  ) {
    // Past max_clients the daemon still lets a few connections in for ping and stop; when even
    // those are taken, one frees within seconds, so try again for a while.
    let retryUntil = Clock.monotonicMs() + 10_000
    var connection: (Client, JSON)?
    while connection == nil {
      do throws(CLIError) {
        let c = try Client(ctx)
        connection = (c, try Client.check(try c.request(.object([("op", .string("ping"))]))))
      } catch {
        guard error.reason == "too_many_connections", Clock.monotonicMs() < retryUntil else { throw error }
        sleepMs(50)
      }
    }
    guard let (c, ping) = connection else { throw CLIError(ExitCode.failure, "no connection to the daemon") }
    let pid = Int32(ping["pid"]?.int ?? 0)
    let answer = try? awaitStop(c, timeoutS: timeoutS, ctx: ctx, progress: progress)
    let deadline = Clock.monotonicMs() + Int64(timeoutS + 30) * 1000
    // The daemon may be our own child (demo, bench): reap it, or it would linger as a zombie.
    while Processes.isAlive(pid) && Clock.monotonicMs() < deadline {
      if Processes.reap(pid) != nil { break }
      sleepMs(5)
    }
    if Processes.isAlive(pid) && Processes.reap(pid) == nil { throw CLIError(ExitCode.failure, "the daemon (pid \(pid)) did not exit") }
    return (pid, answer)
  }

  /// Sends `stop` and waits for its answer; meanwhile, once a second, tells `progress` how many
  /// tasks the drain still waits for (from the hot state) and how long it may still take.
  static func awaitStop(
    _ c: Client, timeoutS: Int, ctx: Context, progress: ((String) -> Void)?
  ) throws(CLIError) -> JSON {
    try c.send(.object([("op", .string("stop")), ("timeout_s", .int(Int64(timeoutS)))]))
    guard let progress else { return try c.receive() }
    let started = Clock.monotonicMs()
    var said = ""
    // Answers come in order and the ping's was read: nothing more is buffered before this one.
    while !c.fd.waitReadable(timeoutMs: 1000) {
      guard let v = try? hotState(ctx.paths) else { continue }
      let busy = v.tasks.filter { $0.state == .running || $0.state == .assigned }
      let left = max(0, Int64(timeoutS) * 1000 - (Clock.monotonicMs() - started))
      let names = busy.prefix(5).map { TaskID.format($0.number) }.joined(separator: ", ") + (busy.count > 5 ? ", …" : "")
      let line =
        busy.isEmpty
        ? "stopping: the workers are exiting"
        : left > 0
          ? "stopping: waiting for \(busy.count) running task\(busy.count == 1 ? "" : "s") (\(names)); they are requeued in at most \(formatMs(left))"
          // Past the timeout: the tasks are being told to stop (kill_grace_s, then killed); "in at most 0ms" said nothing.
          : "stopping: the timeout has passed; \(busy.count) task\(busy.count == 1 ? " is" : "s are") being stopped and requeued (\(names))"
      if line != said || (!busy.isEmpty && left > 0) { progress(line) }
      said = line
    }
    return try c.receive()
  }

  /// A consistent view of `hot-state.mmap`, or what is wrong with it. The file is read with
  /// pread(2), not mapped: a mapped page the file system cannot back (a hole on a full disk, or
  /// past the end of a file cut short) kills the reader with SIGBUS, while pread returns zeros or
  /// a short count, which the seqlock and checksum then reject. Thrown, not a `Result`: a
  /// `Result<HotState.View, CLIError>` made the runtime build its type at first use (and look up
  /// `CLIError: Error` among the binary's conformances), a tenth of a `cortex status`.
  static func hotState(_ paths: Paths) throws(CLIError) -> HotState.View {
    // A busy daemon rewrites the file every 20 ms; a reader on a loaded machine can lose the race
    // many times in a row. Back off and try again for up to a second before calling it unusable.
    var tries = 0
    while true {
      do throws(CLIError) {
        return try readHotState(paths)
      } catch {
        guard tries < 50, FileSystem.exists(paths.hotState) else { throw error }
      }
      tries += 1
      sleepMs(20)
    }
  }

  /// `hotState(paths)` for a command that shows it (`status`, `top`): a directory where no daemon
  /// ever ran is named with the context's advice (where a directory would be looked for when
  /// none was found), not `cortex start --dir`.
  static func hotState(_ ctx: Context) throws(CLIError) -> HotState.View {
    do throws(CLIError) {
      return try hotState(ctx.paths)
    } catch  where error.code == ExitCode.notRunning && !FileSystem.exists(ctx.paths.hotState) {
      throw CLIError(error.code, "no hot state in \(ctx.paths.root): the daemon has never run here; \(ctx.startAdvice)")
    }
  }

  /// True when the hot-state file's magic is all zeros: created, never filled in.
  static func neverWritten(_ fd: FileDescriptor) -> Bool {
    var word: UInt64 = 1
    let n =
      (try? withUnsafeMutableBytes(of: &word) { (b: UnsafeMutableRawBufferPointer) throws(PosixError) in
        try fd.read(at: 0, into: b)
      }) ?? 0
    return n < 8 || word == 0
  }

  static func readHotState(_ paths: Paths) throws(CLIError) -> HotState.View {
    guard FileSystem.exists(paths.hotState) else {
      throw CLIError(
        ExitCode.notRunning, "no hot state in \(paths.root): the daemon has never run here; start it with: cortex start --dir \(paths.root)"
      )
    }
    let failure: CLIError
    do throws(PosixError) {
      let fd = try FileDescriptor.open(paths.hotState, .readOnly)
      defer { fd.close() }
      let size = min(HotState.fileSize, try fd.size())
      func read() throws(PosixError) -> Result<HotState.View, HotState.ReadError> {
        try HotState.readConsistent(size: size) { (off, b) throws(PosixError) in try fd.read(at: off, into: b) }
      }
      // A round of attempts can meet the daemon in the middle of a write (its copy under the
      // seqlock; longer if it is preempted there): rounds 1 ms apart, for up to 100 ms, as the web
      // view reads it.
      var result = try read()
      let patience = Clock.monotonicMs() + 100
      while case .failure(.busy) = result, Clock.monotonicMs() < patience {
        sleepMs(1)
        result = try read()
      }
      switch result {
      case .success(let v): return v
      case .failure(.badMagic) where neverWritten(fd):
        // The daemon creates the file, then fills it once it has started; a start that failed in
        // between (in cluster mode: a database it could not join) leaves it all zeros.
        failure = CLIError(
          ExitCode.notRunning,
          "the Cortex daemon is not running for \(paths.root): it has not finished a start here (see \(paths.daemonLog)); start it with: cortex start --dir \(paths.root)"
        )
      case .failure(let e):
        failure = CLIError(
          ExitCode.failure, "\(paths.hotState) is not usable: \(e) (the daemon sets it aside and rebuilds it at start)")
      }
    } catch {
      failure = CLIError(ExitCode.failure, "cannot read \(paths.hotState): \(error)")
    }
    throw failure
  }
}
