extension ClusterStore {
  /// At submit, as on a single host: a task that needs more tokens than the cluster's budget has
  /// not spent can never run (spent tokens do not come back), so the batch is refused (65),
  /// naming the task and what to change. It used to be accepted and then held every task behind
  /// it in the claim order, those without a budget too, until someone cancelled it.
  func checkBudget(_ tasks: [NewTask]) throws(ClusterError) {
    guard let biggest = tasks.map(\.tokenBudget).max(), biggest > 0 else { return }
    let r = try db.execute(ClusterSQL.budget)
    guard let total = r[0, "total"].flatMap({ Int($0) }), let used = r[0, "used"].flatMap({ Int($0) }) else { return }
    guard let i = tasks.firstIndex(where: { $0.tokenBudget > total - used }) else { return }
    throw ClusterError(
      .invalid(field: "token_budget", index: tasks.count > 1 ? i : nil),
      "needs \(tasks[i].tokenBudget) tokens but only \(total - used) of the cluster's \(total) are not spent (token_budget_exhausted; spent tokens do not come back: give it a smaller token_budget, or raise the cluster's total with cortex cluster budget TOTAL)"
    )
  }
}
