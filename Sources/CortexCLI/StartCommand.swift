import CortexCore
import CortexDaemon
import Posix

/// `cortex start` (detached; returns once the daemon and all its workers are ready) and
/// `cortex daemon` (foreground).
enum StartCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    if args.flag("--foreground") { return try runForeground(&args, ctx, printsDashboard: true) }
    let workers = try args.intOption("--workers", min: 1, max: 1024)
    let timeout = try args.secondsOption("--timeout", min: 1, max: 86_400) ?? 60
    try args.noPositionals()
    try refuseTheProjectForItsDirectory(ctx, args.usage)
    try configureAgentIfNew(ctx)
    let v: JSON
    do throws(CLIError) { v = try DaemonControl.start(ctx, workers: workers, timeoutS: timeout) } catch {
      // The daemon that already runs: its address is what someone who lost it (the sign-in
      // page sends them here) came for; the start is still refused.
      if !ctx.json, error.description.hasPrefix("a daemon already runs"), let web = WebAddress.read(ctx.paths) {
        ctx.err(dashboardLine(web))
      }
      throw error
    }
    let web = WebAddress.read(ctx.paths)
    if ctx.json {
      var o = v.object ?? []
      if let web { o.append(("web_url", .string(web))) }
      ctx.printJSON(.object(o))
    } else {
      let ready = v["workers_ready"]?.int ?? 0
      ctx.err("cortex: daemon started (pid \(v["pid"]?.int ?? 0), \(ready) worker\(ready == 1 ? "" : "s") ready) in \(ctx.paths.root)\n")
      if let web { ctx.err(dashboardLine(web)) }
      for w in v["warnings"]?.array ?? [] { ctx.err("cortex: warning: \(w.string ?? "")\n") }
    }
    return 0
  }

  /// `cortex start --dir ~/project` where `~/project/coordination` is the directory: start would
  /// make a second, empty one (config.json and all) in the project's top directory and run a
  /// second daemon beside the first. The same for a `$CORTEX_DIR` with no config.json while the
  /// working directory's project has one (exported for another project, or relative and read
  /// from a subdirectory): it is set once and forgotten, unlike a --dir typed now. Refused (64)
  /// naming the directory meant; `cortex init --dir` first makes one there on purpose.
  static func refuseTheProjectForItsDirectory(_ ctx: Context, _ usage: String) throws(CLIError) {
    guard let lookup = ctx.lookup else { return }
    if let inner = lookup.meantInstead {
      throw CLIError.usage(
        lookup.meantInsteadText(inner) + " (to make a new directory here anyway: cortex init --dir \(ctx.paths.root), then cortex start)",
        usage)
    }
    if lookup.source == .environment, lookup.foundInstead != nil, let problem = lookup.namedDirectoryProblem() {
      throw CLIError.usage(problem + ", then cortex start", usage)
    }
  }

  static func dashboardLine(_ url: String) -> String { "cortex: dashboard at \(url)\n" }

  /// A start that makes the directory writes the agent CLI found on PATH into its config.json,
  /// as `cortex init` (and `init --no-start`) do. It wrote none: with claude on PATH, the first
  /// `cortex task create --type development` was refused telling the user to install Claude Code.
  static func configureAgentIfNew(_ ctx: Context) throws(CLIError) {
    guard !FileSystem.exists(ctx.paths.config), Daemon.missingConfigRefusal(ctx.paths) == nil else { return }
    let wrote: Bool
    do { wrote = try Daemon.initialize(paths: ctx.paths, workers: nil, force: false) } catch {
      throw CLIError(ExitCode.failure, error.description)
    }
    guard wrote, let (agent, path) = InitWizard.find().agents.first else { return }
    try InitWizard.write(InitWizard.Choices(agent: agent, workers: Config().workers, start: true), ctx)
    if !ctx.json { ctx.err("cortex: config.json written with agent \(agent.rawValue) (\(path)); cortex init --force asks again\n") }
  }

  /// `cortex daemon`, and `cortex start --foreground` (`printsDashboard`): that one prints the
  /// dashboard's address with its token once the daemon serves, as the detached start does (the
  /// daemon's own line names only the token's file: an address without the token answers 401).
  /// `cortex daemon` does not: under systemd its messages go to the journal.
  static func runForeground(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    try runForeground(&args, ctx, printsDashboard: false)
  }

  static func runForeground(_ args: inout Args, _ ctx: Context, printsDashboard: Bool) throws(CLIError) -> Int32 {
    var options = DaemonOptions()
    options.workers = try args.intOption("--workers", min: 1, max: 1024)
    options.detach = args.flag("--detach")
    try args.noPositionals()
    do throws(StartupError) {
      let d = try Daemon(paths: ctx.paths, options: options)
      if printsDashboard, let web = WebAddress.read(ctx.paths) { ctx.err(dashboardLine(web)) }
      return d.run()
    } catch {
      throw CLIError(error.exitCode, error.description)
    }
  }
}

/// `cortex stop`: graceful; returns once the daemon process is gone.
enum StopCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let timeout = try args.secondsOption("--timeout", min: 0, max: 86_400) ?? 30
    try args.noPositionals()
    let (pid, answer): (Int32, JSON?)
    do throws(CLIError) {
      (pid, answer) = try DaemonControl.stop(ctx, timeoutS: timeout, progress: ctx.json ? nil : { ctx.err("cortex: \($0)\n") })
    } catch {
      throw orphansNamed(error, ctx)
    }
    if answer == nil {
      // No answer to the stop: the daemon went away mid-drain (kill -9, a crash). Nothing was
      // requeued or reaped, and its workers go on with their tasks; "daemon stopped" and 0 said
      // that all was stopped.
      let workers = orphanedWorkers(ctx)
      if !workers.isEmpty {
        throw CLIError(
          ExitCode.failure,
          "the daemon (pid \(pid)) exited before it finished the stop (killed or crashed: the stop got no answer); "
            + describe(workers, ctx))
      }
      if !ctx.json {
        ctx.err(
          "cortex: the daemon (pid \(pid)) exited before it answered the stop (killed or crashed); "
            + "nothing of it runs now, and the next start recovers from the log\n")
        return 0
      }
    }
    if ctx.json {
      ctx.printJSON(answer ?? .object([("ok", .bool(true))]))
    } else if answer?["clean"]?.bool == false {
      // The log could not be written: the daemon left as after a crash (docs/design.md, I/O errors).
      let why = answer?["error"]?.string ?? "the decision log cannot be written"
      ctx.err("cortex: daemon stopped (pid \(pid)) without its final events (\(why)); the next start recovers from the log\n")
    } else {
      ctx.err("cortex: daemon stopped (pid \(pid))\n")
    }
    return 0
  }
}

extension StopCommand {
  /// No daemon to stop, but the workers of one that died (kill -9, a crash) still run, with
  /// their tasks: they wait `orphan_timeout_s` for a daemon to re-adopt them. "Not running"
  /// alone reads as if nothing ran; say what does and how to stop it (with --dir: a bare `cortex
  /// start` run elsewhere would start a second daemon in another directory, and stop nothing).
  static func orphansNamed(_ error: CLIError, _ ctx: Context) -> CLIError {
    guard error.code == ExitCode.notRunning else { return error }
    let workers = orphanedWorkers(ctx)
    guard !workers.isEmpty else { return error }
    return CLIError(error.code, "\(error.description); but " + describe(workers, ctx), answer: error.answer)
  }

  /// The workers of this directory still running without a daemon.
  static func orphanedWorkers(_ ctx: Context) -> [ProcessEntry] {
    Processes.belonging(toDirectory: ctx.paths.root).filter { $0.commandLine.dropFirst().first == "worker" && !$0.isZombie }
  }

  static func describe(_ workers: [ProcessEntry], _ ctx: Context) -> String {
    let n = workers.count
    return "\(n) worker\(n == 1 ? "" : "s") of its last run still run\(n == 1 ? "s" : "") "
      + "(pid\(n == 1 ? "" : "s") \(workers.map { String($0.pid) }.joined(separator: ", "))), with any task they had: they wait orphan_timeout_s "
      + "for a daemon to take them back. To stop them and their tasks: cortex start --dir \(ctx.paths.root), then cortex stop --dir \(ctx.paths.root)"
  }
}

extension StartCommand {
  static let help = CommandHelp(
    "start", abstract: "start the daemon and its worker pool (detached unless --foreground)",
    usage: "cortex start [--foreground] [--workers N] [--timeout S]",
    details: """
      Initializes the directory if needed, starts the daemon in the background and returns once it \
      and all its workers are ready. Its messages go to daemon.log in the directory. Under systemd, \
      run `cortex daemon` instead (Type=notify).
      """,
    flags: [
      .flag("--foreground", help: "run in this process, as `cortex daemon`, printing the dashboard's address with its token"),
      .option(
        "--workers", value: "N", help: "pool size (1-1024), kept as cortex scale keeps it",
        default: "the size cortex scale or --workers last set, else config.json's workers"),
      .option("--timeout", value: "S", help: "give up when not ready after S seconds (or a duration: 90s, 2m)", default: "60"),
    ],
    examples: [("cortex start --workers 40", "a pool of 40, from now on")])

  static let daemonHelp = CommandHelp(
    "daemon", abstract: "run the daemon in the foreground", usage: "cortex daemon [--workers N]",
    details: """
      The daemon itself, attached to this terminal (Ctrl-C stops it gracefully). With $NOTIFY_SOCKET \
      set (systemd, Type=notify) it sends READY=1 once all workers are ready, STATUS= lines, STOPPING=1, \
      and WATCHDOG=1 at half of $WATCHDOG_USEC.
      """,
    flags: [
      .option(
        "--workers", value: "N", help: "pool size (1-1024), kept as cortex scale keeps it",
        default: "the size cortex scale or --workers last set, else config.json's workers"),
      .flag("--detach", help: "leave the terminal's session (what `cortex start` uses)"),
    ],
    examples: [("cortex --dir /var/lib/cortex daemon", "as the systemd unit runs it")])
}

extension StopCommand {
  static let help = CommandHelp(
    "stop", abstract: "stop gracefully: admit nothing, drain or requeue, reap, final snapshot", usage: "cortex stop [--timeout S]",
    details: """
      Running tasks get S seconds to finish; those still running are then killed and requeued for the \
      next start (in cluster mode, for any node, by the cluster's next rescue). Returns once the daemon \
      process is gone.
      """,
    flags: [
      .option("--timeout", value: "S", help: "how long running tasks may finish, in seconds (or a duration: 30s, 2m)", default: "30")
    ],
    examples: [("cortex stop --timeout 0", "requeue running tasks at once")])
}
