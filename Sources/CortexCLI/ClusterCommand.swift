import CortexCluster
import CortexCore
import CortexDaemon
import Posix

/// `cortex cluster migrate|status`: the PostgreSQL side of cluster mode (SPEC §11).
enum ClusterCommand {
  static let usage = """
    cortex cluster migrate [--postgres DSN]         create or upgrade the schema (idempotent)
           cortex cluster status [--postgres DSN]          nodes, leases, epochs and load
           cortex cluster budget TOTAL [--postgres DSN]    set the cluster's token budget total
    """

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let dsnFlag = try args.option("--postgres", "--dsn")
    let words = try args.positionals()
    guard let sub = words.first else { throw CLIError.usage("give one of: migrate, status, budget", usage) }
    guard ["migrate", "status", "budget"].contains(sub) else {
      throw CLIError.usage("unknown cluster command \(quoted(sub)): give migrate, status or budget", usage)
    }
    let total = sub == "budget" ? try budgetTotal(words) : nil
    if sub != "budget" && words.count != 1 { throw CLIError.usage("cluster \(sub) takes no operand", usage) }
    if dsnFlag == "" { throw CLIError.usage("--postgres needs a connection string, not an empty one", usage) }
    let source: DatabaseSource
    if let dsnFlag { source = .flag(dsnFlag) } else { source = .config(try configuredDSN(ctx), ctx.paths) }
    let db = try connect(source)
    switch sub {
    case "migrate":
      let applied: [Int]
      do { applied = try Migrations.migrate(db) } catch { throw failure(error, source) }
      if ctx.json {
        ctx.printJSON(
          .object([
            ("ok", .bool(true)), ("applied", .array(applied.map { .int(Int64($0)) })), ("version", .int(Int64(Migrations.latest))),
          ]))
      } else {
        ctx.err(
          applied.isEmpty
            ? "the schema is current (version \(Migrations.latest))\n"
            : "applied schema version\(applied.count > 1 ? "s" : "") \(applied.map(String.init).joined(separator: ", "))\n")
      }
      return 0
    case "status":
      do {
        try Migrations.check(db, migrate: source.migrateCommand)
        return try status(db, ctx)
      } catch { throw failure(error, source) }
    case "budget":
      do {
        try Migrations.check(db, migrate: source.migrateCommand)
        return try setBudget(db, total ?? 0, ctx)
      } catch { throw failure(error, source) }
    default:
      throw CLIError.usage("unknown cluster command \(quoted(sub)) (use migrate or status)", usage)
    }
  }

  static func configuredDSN(_ ctx: Context) throws(CLIError) -> String {
    guard FileSystem.exists(ctx.paths.config) else {
      throw CLIError.usage("no --postgres DSN and no \(ctx.paths.config); give --postgres or run cortex init --cluster DSN", usage)
    }
    let config: Config
    do { config = try Daemon.loadConfig(paths: ctx.paths) } catch { throw CLIError(ExitCode.failure, error.description) }
    guard let c = config.cluster else {
      throw CLIError.usage("\(ctx.paths.config) has no \"cluster\" setting; give --postgres DSN or run cortex init --cluster DSN", usage)
    }
    return c.postgres
  }

  static func connect(_ source: DatabaseSource) throws(CLIError) -> PGConnection {
    do { return try PGConnection(source.dsn) } catch { throw failure(error, source) }
  }

  /// Where the connection string came from, so that a message can say what to fix and give a
  /// command that works when pasted anywhere (the schema's `cortex cluster migrate` named no
  /// directory and no database: pasted elsewhere it found no config.json).
  enum DatabaseSource {
    case flag(String)
    case config(String, Paths)

    var dsn: String {
      switch self {
      case .flag(let d), .config(let d, _): d
      }
    }

    /// The command that creates or upgrades this database's schema.
    var migrateCommand: String {
      switch self {
      case .config(_, let paths): return "cortex cluster migrate --dir \(Scheduler.shellQuote(paths.root))"
      case .flag(let d):
        let shown = PGConnection.redacted(d)
        return "cortex cluster migrate --postgres \(Scheduler.shellQuote(shown))"
          + (shown == d ? "" : " (with the password where it says [redacted])")
      }
    }

    /// Where the connection string is set (for a refused login, or one libpq cannot read).
    var setting: String {
      switch self {
      case .flag: "the connection string given with --postgres"
      case .config(_, let paths): "cluster.postgres in \(paths.config)"
      }
    }
  }

  /// Exit codes: 69 when PostgreSQL or libpq cannot be had (like a daemon not running),
  /// 1 for a schema or statement problem, and for a login the server refused (a wrong password,
  /// an unknown role or database) or a connection string libpq cannot read: a setting to fix,
  /// which 69 misread as a daemon not running.
  static func failure(_ e: ClusterError, _ source: DatabaseSource? = nil) -> CLIError {
    switch e.misconfigured {
    case .login?:
      return CLIError(
        ExitCode.failure, e.message + "; check the user, password and database in \(source?.setting ?? "the connection string")")
    case .connectionString?: return CLIError(ExitCode.failure, e.message + "; check \(source?.setting ?? "the connection string")")
    case nil: break
    }
    return switch e.kind {
    case .libraryMissing, .connect: CLIError(ExitCode.notRunning, e.message)
    case .statement, .schema, .conflict: CLIError(ExitCode.failure, e.message)
    case .refused: CLIError(ExitCode.refused, e.message)
    case .invalid: CLIError(ExitCode.invalidSpec, e.message)
    }
  }

  static func status(_ db: PGConnection, _ ctx: Context) throws(ClusterError) -> Int32 {
    let st = try ClusterStatus.read(db)
    let groups = try ClusterStatus.groups(db)
    if ctx.json {
      var o: [(String, JSON)] = [("ok", .bool(true)), ("schema_version", .int(Int64(Migrations.latest)))]
      o += st.json().object ?? []
      o.append(("groups", .array(groups.map { $0.json() })))
      ctx.printJSON(.object(o))
      return 0
    }
    func text(_ v: Int64?) -> String { v.map(String.init) ?? "" }
    let rows = st.nodes.map { n in
      [
        n.name, n.state, text(n.epoch), n.leaseText, n.host, text(n.pid), text(n.workers), text(n.running), text(n.claimed),
      ]
    }
    var out = "schema version \(Migrations.latest); \(st.nodes.count) node\(st.nodes.count == 1 ? "" : "s")\n"
    if !rows.isEmpty { out += table(["NODE", "STATE", "EPOCH", "LEASE", "HOST", "PID", "WORKERS", "RUNNING", "CLAIMED"], rows) }
    out += "tasks: \(st.queued ?? 0) queued, \(st.running ?? 0) running, \(st.done ?? 0) done\n"
    if st.queuePaused { out += "queue: paused (no node takes a new task; cortex resume)\n" }
    if !groups.isEmpty { out += "groups: " + groups.map(\.text).joined(separator: "; ") + "\n" }
    if let total = st.budgetTotal {
      out += "budget: \(total) total, \(st.budgetReserved ?? 0) reserved, \(st.budgetUsed ?? 0) used\n"
    }
    ctx.out(out)
    return 0
  }
}

extension ClusterCommand {
  static let help = CommandHelp(
    "cluster", abstract: "cluster mode on PostgreSQL: migrate the schema, show nodes and leases", usage: usage,
    details: """
      migrate creates or upgrades the schema (idempotent); status shows the nodes, their epochs and \
      leases, and the load; budget sets the token budget all nodes share (config.json's \
      token_budget_total only creates it, when the first node joins), not below what is reserved and \
      used. The database is the one in config.json's "cluster" unless --postgres names one.
      """,
    flags: [
      .option("--postgres", "--dsn", value: "DSN", help: "the PostgreSQL connection string", default: "config.json's cluster.postgres")
    ],
    operandWords: ["migrate", "status", "budget"],
    examples: [
      ("cortex cluster migrate --postgres postgresql://cortex@db/cortex", "create the schema"),
      ("cortex cluster budget 5000000", "every node together may reserve and spend 5,000,000 tokens"),
    ])
}
