import CortexCluster
import CortexCore
import CortexDaemon

/// `cortex budget` in cluster mode: the budget is the cluster's, kept in PostgreSQL (SPEC §11);
/// a node's own is a placeholder (2^60 tokens, so that the database's check is the one that
/// refuses), which `budget` used to print as the node's total and available tokens.
extension PoolCommands {
  /// Nil on a single host (the daemon's budget is the one).
  static func clusterBudget(_ ctx: Context) throws(CLIError) -> Int32? {
    guard let config = try? Daemon.loadConfig(paths: ctx.paths), let settings = config.cluster else { return nil }
    let source = ClusterCommand.DatabaseSource.config(settings.postgres, ctx.paths)
    let db = try ClusterCommand.connect(source)
    let st: ClusterStatus
    do throws(ClusterError) {
      try Migrations.check(db, migrate: source.migrateCommand)
      st = try ClusterStatus.read(db)
    } catch { throw ClusterCommand.failure(error, source) }
    let total = st.budgetTotal ?? 0
    let reserved = st.budgetReserved ?? 0
    let used = st.budgetUsed ?? 0
    // What this node's running tasks reserved and used so far, when its daemon answers.
    let mine = (try? Client.check(try Client(ctx).request(.object([("op", .string("budget"))]))))?["budget"]?["allocations"]?.array ?? []
    if ctx.json {
      ctx.printJSON(
        .object([
          ("scope", .string("cluster")), ("node", .string(settings.node ?? Host.name)), ("total", .int(total)),
          ("reserved", .int(reserved)), ("used", .int(used)), ("available", .int(total - reserved - used)),
          ("allocations", .array(mine)), ("config_total", .int(Int64(config.tokenBudgetTotal))),
        ]))
      return 0
    }
    var s = ""
    for (k, v) in [("total", total), ("reserved", reserved), ("used", used), ("available", total - reserved - used)] {
      s += k + String(repeating: " ", count: 11 - k.count) + String(v) + "\n"
    }
    s += "the cluster's budget (PostgreSQL), shared by every node\n"
    // A changed token_budget_total reaches no node's budget: say so, and how to change it.
    if Int64(config.tokenBudgetTotal) != total {
      s +=
        "config.json's token_budget_total (\(config.tokenBudgetTotal)) is not the cluster's: it only creates the budget when the first node joins; to change it: cortex cluster budget \(config.tokenBudgetTotal)\n"
    }
    if !mine.isEmpty {
      s +=
        "\nthis node's tasks (node \(settings.node ?? Host.name)):\n"
        + table(
          ["TASK", "RESERVED", "USED"],
          mine.map { [$0["task_id"]?.string ?? "", String($0["reserved"]?.int ?? 0), String($0["used"]?.int ?? 0)] })
    }
    ctx.out(s)
    return 0
  }
}
