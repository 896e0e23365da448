public import CortexCore
import Posix

/// `cortex restart` and SIGUSR2 (SPEC §14): the daemon replaces its own program in place with
/// execve(2) of the executable it was started from (a new binary at that path is an upgrade).
/// The pid stays, so the workers stay its children; the listening socket is handed over (its
/// backlog waits meanwhile); the log, the snapshot and the files queue are written out first.
/// The new program starts like any daemon: it recovers from the snapshot and the log, and
/// re-adopts the workers (Daemon+Readopt), which kept their tasks running through the exec.
extension Daemon {
  /// The environment variable that passes the listening socket's descriptor to the new program.
  static let listenFDVariable = "CORTEX_LISTEN_FD"
  /// The variable that passes the running `on_finish` hooks (`HookRunner.handover`).
  static let hooksVariable = "CORTEX_HOOKS"

  /// The hooks a restart handed over: this program tracks them as its own (their timeout, their
  /// `hook.finished`, killed at its exit). The variable is removed so no child inherits it.
  func adoptHooks(now t: Int64) {
    defer { Environment.unset(Self.hooksVariable) }
    guard let v = Environment.get(Self.hooksVariable), !v.isEmpty else { return }
    hooks.adopt(v, now: t)
    // One that ended during the exec sent its SIGCHLD to the old program: reap it now.
    for pid in hooks.running.keys {
      if let (_, status) = Processes.reap(pid) { _ = hookReaped(pid, status, now: t) }
    }
  }

  /// The control socket: the one handed over by a restart, else a new one at `paths.socket`.
  static func openListener(_ paths: Paths) throws(PosixError) -> FileDescriptor {
    if let v = Environment.get(listenFDVariable), let raw = Int32(v), raw > 2 {
      let fd = FileDescriptor(raw: raw)
      if (try? fd.setCloseOnExec(true)) != nil, FileSystem.exists(paths.socket) { return fd }
    }
    // A socket left by a daemon that died is stale: we hold the lock, so nobody serves it.
    try FileSystem.remove(paths.socket)
    let l = try UnixSocket.listen(path: paths.socket)
    try FileSystem.setMode(paths.socket, 0o600)
    return l
  }

  /// Why the program a restart execs would refuse to start with `config.json` as it is now (or
  /// the directory), else nil. `cortex restart` asks it before signalling; the daemon again.
  public static func restartConfigProblem(_ paths: Paths) -> String? {
    if let refusal = DirectoryGuard.check(paths) { return "cannot use \(paths.root): \(refusal)" }
    guard FileSystem.exists(paths.config) else { return "\(paths.config) does not exist" }
    do throws(StartupError) {
      _ = try loadConfig(paths: paths)
      return nil
    } catch {
      return error.description
    }
  }

  /// The new program's arguments: this one's, with the pool size as it is now (`cortex scale`
  /// changed it, not config.json or the first `--workers`), so a restart keeps the pool it had.
  static func restartArguments(_ argv: [String], workers: Int) -> [String] {
    var out: [String] = []
    var i = 0
    while i < argv.count {
      if argv[i] == "--workers" {
        i += 2
        continue
      }
      if !argv[i].hasPrefix("--workers=") { out.append(argv[i]) }
      i += 1
    }
    return out + ["--workers", String(workers)]
  }

  /// Answers what has been asked, writes everything out, and execs. Returns only if the exec
  /// failed (the daemon then carries on as it was, and says so).
  func restartInPlace(now t: Int64) {
    guard scheduler.phase == .running else {
      writeStderr("cortex daemon: SIGUSR2 ignored: the daemon is stopping\n")
      return
    }
    guard config.cluster == nil, let listener else {
      let why = "restart in place is not built for cluster mode; use cortex stop and start"
      log.append(Event("daemon.warning", reason: "restart_refused", detail: why), nowMs: t)
      restartFailed(why)
      return
    }
    // The new program reads config.json at its start and exits on one it cannot take: check it
    // first, or a restart meant to pick up an edit took a healthy daemon down with it.
    if let problem = Self.restartConfigProblem(paths) {
      log.append(Event("daemon.warning", reason: "restart_refused", detail: "\(problem); the daemon carries on"), nowMs: t)
      writeStderr("cortex daemon: restart refused: \(problem); the daemon carries on\n")
      restartFailed(problem)
      return
    }
    // Requests already read are answered; new connections wait in the backlog for the new program.
    for (_, c) in clients { clientWake(c, .input, now: t) }
    serviceClients(now: t)
    let running = scheduler.workers.filter { $0.state == .busy }.count
    log.append(
      Event(
        "daemon.restarting", reason: "requested",
        detail: "exec \(executable); \(running) running tasks carry on in their workers",
        fields: [("pid", .int(Int64(Processes.currentID))), ("running", .int(Int64(running)))]), nowMs: t)
    commit(now: t)
    do throws(PosixError) {
      try secrets.flush()
      try log.flush(sync: true, nowMs: t)
    } catch {
      writeStderr("cortex daemon: restart refused: cannot write the log: \(error)\n")
      restartFailed("cannot write the log: \(error)")
      return
    }
    // No new snapshot: the synced log is the record, and the next program replays its tail (a
    // full snapshot of a busy daemon costs more than that replay). Background writes finish first.
    snapshots.drain()
    files.drain()
    updateHotState(now: t)
    hot?.flushAsync()
    for (_, ch) in channels { ch.flush() }
    for (_, c) in clients { c.flush() }
    var argv = CommandLine.arguments
    if argv.isEmpty { argv = [executable, "--dir", paths.root, "daemon"] } else { argv[0] = executable }
    argv = Self.restartArguments(argv, workers: scheduler.desiredWorkers)
    // Under systemd the new program must go on notifying (the watchdog above all: without its
    // pings systemd kills the service, workers and tasks with it): hand on the variables it
    // removed from this environment at start.
    // Running hooks stay this pid's children; the new program takes them over (their timeout
    // and their hook.finished). Those still waiting to start are not run, and daemon.log says so.
    if hooks.waitingCount > 0 {
      try? workerLog?.writeAll("cortex: \(hooks.waitingCount) on_finish hooks not run: the daemon restarted in place\n")
    }
    let env =
      Environment.all().filter { !$0.hasPrefix(Self.listenFDVariable + "=") && !$0.hasPrefix(Self.hooksVariable + "=") }
      + ["\(Self.listenFDVariable)=\(listener.raw)", "\(Self.hooksVariable)=\(hooks.handover(now: t))"]
      + (notifier?.inherited ?? [])
    try? listener.setCloseOnExec(false)
    // A second SIGUSR2 before the new program has its handler would kill it (the default action):
    // it stays pending until `Daemon.init` routes it to the loop.
    Signal.block(Signal.usr2, true)
    let error = Processes.replaceProgram(executable, arguments: argv, environment: env)
    Signal.block(Signal.usr2, false)
    try? listener.setCloseOnExec(true)
    writeStderr("cortex daemon: restart failed: \(error); carrying on\n")
    log.append(Event("daemon.warning", reason: "restart_failed", detail: "\(error)"), nowMs: t)
    restartFailed("\(error)")
  }

  /// Counts a SIGUSR2 that left this program running, for the ping answer.
  func restartFailed(_ why: String) {
    restartFailures += 1
    restartFailure = why
  }
}
