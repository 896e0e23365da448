import CortexCore
import CortexDaemon
import CortexWorker
import Posix

/// `cortex init`: config.json with the defaults and the directory layout, mode 0700.
enum InitCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let workers = try args.intOption("--workers", min: 1, max: 1024)
    let force = args.flag("--force")
    let dsn = try args.option("--cluster")
    let node = try args.option("--node")
    let yes = args.flag("--yes", "-y")
    let noStart = args.flag("--no-start")
    try args.noPositionals()
    if node != nil && dsn == nil { throw CLIError.usage("--node goes with --cluster DSN", args.usage) }
    // One of them won without a word (--no-start): the usage says they exclude each other.
    if yes && noStart { throw CLIError.usage("--yes starts the daemon and --no-start does not: give one of them", args.usage) }
    // In a terminal: the wizard asks (InitWizard), before anything is written. It asked after
    // config.json was written with every default: interrupted (Ctrl-C), it left that file, which
    // the next `cortex init` kept without asking (no agent, though one was on PATH). Without a
    // terminal, or with --yes: the same path with every default taken, daemon started.
    // --no-start: the files only (scripts that edit the config before `cortex start`).
    let ask = !noStart && !yes && !ctx.json && FileDescriptor.standardInput.isTerminal && FileDescriptor.standardError.isTerminal
    let answers =
      ask && (force || !FileSystem.exists(ctx.paths.config))
      ? InitWizard.choose(InitWizard.find(), ctx, ask: true, workers: workers, start: true) : nil
    let wrote: Bool
    do { wrote = try Daemon.initialize(paths: ctx.paths, workers: workers, force: force) } catch {
      throw CLIError(ExitCode.failure, error.description)
    }
    if let dsn { try joinCluster(ctx, dsn: dsn, node: node) }
    // An existing config.json is kept but for the "cluster" setting --cluster writes into it: it
    // said "config.json kept" and a running daemon was not told (it stays what it is until a
    // stop and a start, which the reload's answer says). And but for the pool size --workers
    // gives: it was dropped without a word (`init --workers 3` started 20 workers).
    var changed: [String] = []
    if !wrote, dsn != nil { changed.append("its \"cluster\" setting, now node \(node ?? Host.name)") }
    if !wrote, let workers {
      try setConfig(ctx, "workers", .int(Int64(workers)))
      changed.append("its workers, now \(workers)")
    }
    let kept = changed.isEmpty ? nil : "config.json kept but for " + changed.joined(separator: " and ")
    if !noStart {
      try InitWizard.run(ctx, ask: ask, answers: answers, wrote: wrote, kept: kept, workers: workers, start: true)
    } else {
      if wrote, let agent = InitWizard.find().agents.first?.0 {
        try InitWizard.write(InitWizard.Choices(agent: agent, workers: workers ?? Config().workers, start: false), ctx)
      }
      if !ctx.json {
        ctx.err(
          wrote
            ? "initialized \(ctx.paths.root)\n"
            : "\(ctx.paths.root) is already initialized (\(kept ?? "config.json kept"); --force rewrites it)\n")
      }
      // Written where no daemon can listen: said now, not first by the `cortex start` to come.
      if !ctx.json, let problem = ctx.paths.socketPathProblem { ctx.err("note: no daemon can run there yet: \(problem)\n") }
      // --force rewrote config.json under a running daemon: it reads it now (it starts nothing).
      if wrote || kept != nil, let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("ping"))])) {
        try InitWizard.reload(ctx, ping: v)
      }
      // A project above already has one: say which one commands run below here will use now.
      if !ctx.json, wrote, ctx.lookup?.source == .fallback,
        let outer = DirectoryLookup.nearest(from: FileSystem.dirname(ctx.lookup?.start ?? "/")), outer != ctx.paths.root
      {
        ctx.err("note: \(outer) also exists; commands run in or below \(ctx.lookup?.start ?? "") now use \(ctx.paths.root)\n")
      }
    }
    if ctx.json {
      ctx.printJSON(.object([("ok", .bool(true)), ("dir", .string(ctx.paths.root)), ("config_written", .bool(wrote))]))
    }
    return 0
  }
}

extension InitCommand {
  /// Writes `"cluster": {"postgres": DSN, "node": NAME}` into config.json (validated as the daemon
  /// will read it); the schema itself is `cortex cluster migrate`.
  static func joinCluster(_ ctx: Context, dsn: String, node: String?) throws(CLIError) {
    var o: [(String, JSON)] = [("postgres", .string(dsn))]
    if let node { o.append(("node", .string(node))) }
    do throws(SpecError) { _ = try ClusterSettings.decode(.object(o)) } catch {
      throw CLIError(ExitCode.usage, "\(error)")
    }
    try setConfig(ctx, "cluster", .object(o))
  }

  /// Sets one key of config.json, keeping the rest as it is.
  static func setConfig(_ ctx: Context, _ key: String, _ value: JSON) throws(CLIError) {
    guard let bytes = (try? FileSystem.read(ctx.paths.config)) ?? nil, var cfg = (try? JSON.parse(bytes))?.object else {
      throw CLIError(ExitCode.failure, "cannot read \(ctx.paths.config)")
    }
    if let i = cfg.firstIndex(where: { $0.0 == key }) { cfg[i].1 = value } else { cfg.append((key, value)) }
    do throws(PosixError) {
      try FileSystem.writeAtomically(ctx.paths.config, Array((JSON.object(cfg).pretty() + "\n").utf8))
    } catch {
      throw CLIError(ExitCode.failure, "cannot write \(ctx.paths.config): \(error)")
    }
  }
}

/// `cortex worker`: the hidden mode the daemon starts for each pool slot.
enum WorkerCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    guard let slot = try args.intOption("--slot", min: 1, max: 1024) else { throw CLIError.usage("--slot is required", args.usage) }
    let hb = try args.intOption("--heartbeat-ms", min: 50, max: 3_600_000) ?? 5000
    let orphan = try args.intOption("--orphan-timeout-ms", min: 0, max: 7 * 86_400_000) ?? 300_000
    try args.noPositionals()
    // The daemon's proof that this process is the one it spawned (SPEC §14); not passed to tasks.
    let token = Environment.get("CORTEX_WORKER_TOKEN") ?? "none"
    do throws(PosixError) {
      return try Worker(dir: ctx.paths.root, slot: slot, heartbeatMs: hb, orphanTimeoutMs: orphan, token: token).run()
    } catch {
      throw CLIError(ExitCode.failure, "worker \(slot): \(error)")
    }
  }
}

/// `cortex hook-guard --parent PID -- /bin/sh -c CMD`: what the daemon runs an `on_finish` hook
/// through (HookRunner). The hook runs as its child in its process group; when the daemon dies
/// (kill -9 included) the guard kills that group, so a hook never runs on unbounded after its
/// daemon, whose `hook_timeout_s` nobody would enforce any more (docs/fleet.md, "Hooks").
enum HookGuardCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    guard let parent = try args.intOption("--parent", min: 1, max: Int(Int32.max)) else {
      throw CLIError.usage("--parent is required", args.usage)
    }
    try args.noPositionals()
    let argv = args.afterDashDash
    guard let program = argv.first, program.hasPrefix("/") else {
      throw CLIError.usage("give the hook's command after --, its program as an absolute path", args.usage)
    }
    return Processes.guardChild(parent: Int32(parent), argv, environment: Environment.all())
  }

  static let help = CommandHelp(
    "hook-guard", abstract: "runs an on_finish hook (started by the daemon); ends it with the daemon",
    usage: "cortex hook-guard --parent PID -- PROGRAM [ARGS...]",
    flags: [.option("--parent", value: "PID", help: "the daemon: when it dies, the hook's process group is killed")], hidden: true)
}

extension InitCommand {
  static let help = CommandHelp(
    "init", abstract: "write config.json and the directory layout (idempotent), then start the daemon",
    usage: "cortex init [--workers N] [--force] [--yes | --no-start] [--cluster DSN [--node NAME]]",
    details: """
      Makes ./coordination (or --dir, $CORTEX_DIR) with mode 0700 and a config.json holding the defaults; \
      an existing config.json is kept. Unlike the other commands, init does not look for a directory in \
      the parents of the working directory. It looks for agent CLIs on PATH (claude, codex, aider) and \
      writes the first one found as "agent"; API keys are reported by variable name, never written. In a \
      terminal it asks for the agent, the pool size (proposed from the machine) and whether to start, \
      then starts the daemon and prints its status and the dashboard. Without a terminal (a script, CI), \
      or with --yes, it takes every default without asking and starts the daemon. With --no-start it only \
      writes the files (for scripts that edit config.json before cortex start).
      """,
    flags: [
      .flag("-y", "--yes", help: "take every default without asking, then start the daemon"),
      .flag("--no-start", help: "only write config.json and the directory; start nothing (a daemon already running re-reads it)"),
      .option(
        "--workers", value: "N", help: "pool size to write into config.json, a kept one too (1-1024); the daemon init starts has it",
        default: "proposed from the machine: 4 per core, at most 1 per 512 MiB, 2 to 20; 20 with --no-start"),
      .flag("--force", help: "rewrite config.json with the defaults (a running daemon re-reads it)"),
      .option("--cluster", value: "DSN", help: "join a cluster: the PostgreSQL connection string (see cortex cluster)"),
      .option("--node", value: "NAME", help: "this node's name in the cluster", default: "the host name"),
    ],
    examples: [
      ("cortex init", "the wizard in a terminal (the defaults elsewhere), then the daemon"),
      ("cortex init --workers 8 --no-start", "a pool of 8, files only"),
      ("cortex init --cluster postgresql://cortex@db/cortex", "cluster mode"),
    ])
}

extension WorkerCommand {
  static let help = CommandHelp(
    "worker", abstract: "a pool worker (started by the daemon)",
    usage: "cortex worker --dir DIR --slot N [--heartbeat-ms MS] [--orphan-timeout-ms MS]",
    flags: [
      .option("--slot", value: "N", help: "the pool slot (1-1024)"),
      .option("--heartbeat-ms", value: "MS", help: "heartbeat interval", default: "5000"),
      .option(
        "--orphan-timeout-ms", value: "MS", help: "with no daemon for this long, stop the task's group and exit (orphan_timeout_s)",
        default: "300000"),
    ], hidden: true)
}
