extension ClusterStatus {
  /// Sets the cluster's token budget total (`cortex cluster budget`). Nil when done; else the
  /// tokens reserved and used now, which the total may not go below.
  public static func setBudgetTotal(_ db: PGConnection, _ total: Int64) throws(ClusterError) -> Int64? {
    if try db.execute(ClusterSQL.setBudgetTotal, [String(total)]).count == 1 { return nil }
    let r = try db.execute(ClusterSQL.budget)
    return (r[0, "reserved"].flatMap { Int64($0) } ?? 0) + (r[0, "used"].flatMap { Int64($0) } ?? 0)
  }
}
