import CortexCore
import CortexDaemon
import Posix

/// `cortex start` (detached; returns once the daemon and all its workers are ready) and
/// `cortex daemon` (foreground).
enum StartCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    if args.flag("--foreground") { return try runForeground(&args, ctx) }
    let workers = try args.intOption("--workers", min: 1, max: 1024)
    let timeout = try args.intOption("--timeout", min: 1) ?? 60
    try args.noPositionals()
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
      let devnull = try FileDescriptor.open("/dev/null", .readOnly)
      defer { devnull.close() }
      pid = try Processes.spawn(argv, environment: Environment.all(), stdin: devnull, stdout: log, stderr: log, newProcessGroup: false)
    } catch {
      throw CLIError(ExitCode.failure, "cannot start the daemon: \(error)")
    }
    let deadline = Clock.monotonicMs() + Int64(timeout) * 1000
    while Clock.monotonicMs() < deadline {
      if let (_, status) = Processes.reap(pid) {
        let log = ((try? FileSystem.read(ctx.paths.daemonLog)) ?? nil) ?? []
        let text = String(decoding: log.dropFirst(logStart), as: UTF8.self)
        throw CLIError(ExitCode.failure, "the daemon exited during start (\(status)):\n\(text)")
      }
      if let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("ping"))])), v["ready"]?.bool == true {
        if ctx.json {
          ctx.printJSON(v)
        } else {
          ctx.err("cortex: daemon started (pid \(v["pid"]?.int ?? 0), \(v["workers_ready"]?.int ?? 0) workers ready) in \(ctx.paths.root)\n")
        }
        return 0
      }
      sleepMs(5)
    }
    throw CLIError(ExitCode.failure, "the daemon (pid \(pid)) was not ready within \(timeout) s; see \(ctx.paths.daemonLog)")
  }

  static func runForeground(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    var options = DaemonOptions()
    options.workers = try args.intOption("--workers", min: 1, max: 1024)
    options.detach = args.flag("--detach")
    try args.noPositionals()
    do throws(StartupError) {
      let d = try Daemon(paths: ctx.paths, options: options)
      return d.run()
    } catch {
      throw CLIError(error.exitCode, error.description)
    }
  }
}

/// `cortex stop`: graceful; returns once the daemon process is gone.
enum StopCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let timeout = try args.intOption("--timeout", min: 0) ?? 30
    try args.noPositionals()
    let c = try Client(ctx)
    let ping = try c.request(.object([("op", .string("ping"))]))
    let pid = Int32(ping["pid"]?.int ?? 0)
    let answer = try? c.request(.object([("op", .string("stop")), ("timeout_s", .int(Int64(timeout)))]))
    let deadline = Clock.monotonicMs() + Int64(timeout + 30) * 1000
    while Processes.isAlive(pid) && Clock.monotonicMs() < deadline { sleepMs(5) }
    if Processes.isAlive(pid) { throw CLIError(ExitCode.failure, "the daemon (pid \(pid)) did not exit") }
    if ctx.json {
      ctx.printJSON(answer ?? .object([("ok", .bool(true))]))
    } else {
      ctx.err("cortex: daemon stopped (pid \(pid))\n")
    }
    return 0
  }
}
