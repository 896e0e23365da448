import CortexCluster
import CortexCore

/// `cortex cluster budget TOTAL`: the token budget every node shares lives in PostgreSQL; the
/// first node to join creates it from its config.json's `token_budget_total`, and a later change
/// of that setting (a restart, SIGHUP) does not reach it. Before this command the cluster's
/// total could be changed only with SQL.
extension ClusterCommand {
  /// The TOTAL operand of `cluster budget`.
  static func budgetTotal(_ words: [String]) throws(CLIError) -> Int64 {
    guard words.count == 2 else { throw CLIError.usage("give the cluster's new token budget total: cortex cluster budget TOTAL", usage) }
    guard let n = Int64(words[1]), n >= 0, n <= 1 << 50 else {
      throw CLIError.usage("the token budget total must be a whole number from 0 to \(1 << 50), not \(quoted(words[1]))", usage)
    }
    return n
  }

  static func setBudget(_ db: PGConnection, _ total: Int64, _ ctx: Context) throws(ClusterError) -> Int32 {
    if let taken = try ClusterStatus.setBudgetTotal(db, total) {
      throw ClusterError(
        .conflict,
        "the cluster's token budget cannot be \(total): \(taken) tokens are reserved or used already; give at least \(taken)")
    }
    let st = try ClusterStatus.read(db)
    let reserved = st.budgetReserved ?? 0
    let used = st.budgetUsed ?? 0
    if ctx.json {
      ctx.printJSON(
        .object([
          ("ok", .bool(true)), ("total", .int(total)), ("reserved", .int(reserved)), ("used", .int(used)),
          ("available", .int(total - reserved - used)),
        ]))
    } else {
      ctx.err("cortex: the cluster's token budget is \(total) (\(reserved) reserved, \(used) used, \(total - reserved - used) available)\n")
    }
    return 0
  }
}
