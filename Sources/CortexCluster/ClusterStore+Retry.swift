public import CortexCore

/// What `retry` needs from the cluster: the specs of finished tasks, which the history table
/// keeps (redacted: the secret values go with the task's terminal state).
extension ClusterStore {
  /// One task a retry names or `--all-failed` found.
  public struct RetrySource: Sendable {
    public var id: Int
    /// Its terminal state; nil while it is live or when there is no such task.
    public var state: TaskState?
    /// The spec as stored (redacted JSON text), for a finished task.
    public var spec: String?
    /// Its state while it is still live (queued, running).
    public var liveState: String?
    /// Named by the request (else found by `--all-failed`).
    public var named = true
  }

  /// The named tasks in the order given, then, with `allFailed`, every failed or timed-out task
  /// that no task retries yet (the newest of each retry chain), oldest first.
  public func retrySources(ids: [Int], allFailed: Bool) throws(ClusterError) -> [RetrySource] {
    func rows(_ r: PGConnection.Rows) -> [RetrySource] {
      (0..<r.count).map { i in
        RetrySource(
          id: Int(r[i, "id"] ?? "") ?? 0, state: r[i, "done_state"].flatMap(TaskState.init(rawValue:)), spec: r[i, "spec"],
          liveState: r[i, "live_state"])
      }
    }
    var out: [RetrySource] = []
    if !ids.isEmpty {
      out = rows(try db.execute(ClusterSQL.retrySources, ["{" + ids.map(String.init).joined(separator: ",") + "}"]))
    }
    guard allFailed else { return out }
    let retried = Set(try db.execute(ClusterSQL.retriedTasks).values.compactMap { $0[0].flatMap(TaskID.parse) })
    let named = Set(ids)
    for var r in rows(try db.execute(ClusterSQL.failedTasks)) where !retried.contains(r.id) && !named.contains(r.id) {
      r.named = false
      out.append(r)
    }
    return out
  }
}
