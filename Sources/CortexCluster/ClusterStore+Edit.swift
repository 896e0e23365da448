public import CortexCore

/// `edit` of a queued task in the cluster's table: read (locked), changed by the caller's pure
/// function, written back, in one transaction; a task claimed meanwhile is not changed.
extension ClusterStore {
  /// What the caller's change makes of a task: its new spec (redacted JSON text), priority,
  /// timeout and secret values (JSON text; nil: none).
  public struct Edited: Sendable {
    public var spec: String
    public var priority: Int
    public var timeoutMs: Int64?
    public var secrets: String?
    /// What to log: the changed fields before and after (redacted).
    public var before: JSON
    public var after: JSON
    /// The task's group when the edit changed it (nil: unchanged).
    public var group: String?
    public init(spec: String, priority: Int, timeoutMs: Int64?, secrets: String?, before: JSON, after: JSON, group: String? = nil) {
      self.group = group
      self.spec = spec
      self.priority = priority
      self.timeoutMs = timeoutMs
      self.secrets = secrets
      self.before = before
      self.after = after
    }
  }

  public enum EditResult: Sendable {
    /// Changed: the task as the cluster now knows it, and the change.
    case edited(task: JSON, Edited)
    /// Not queued (running or finished): why, in words.
    case notQueued(String)
    /// No such task in the cluster (live or finished within `cluster.history_s`).
    case unknown
  }

  /// Applies `change` (spec text, secret values text) to task `id` if it is queued.
  public func edit(
    _ id: Int, _ change: @Sendable (String, String?) -> Result<Edited, ClusterError>
  ) throws(ClusterError) -> EditResult {
    try db.transaction { () throws(ClusterError) -> EditResult in
      let r = try db.execute(ClusterSQL.editSource, [String(id)])
      guard r.count > 0, let spec = r[0, "spec"] else {
        guard let state = try outcomes([id]).first?.state else { return .unknown }
        return .notQueued("already \(state.rawValue)")
      }
      guard r[0, "state"] == "queued" else { return .notQueued("is \(r[0, "state"] ?? "live")") }
      let e: Edited
      switch change(spec, r[0, "secrets"]) {
      case .success(let x): e = x
      case .failure(let error): throw error
      }
      try db.execute(ClusterSQL.updateQueuedTask, [String(id), e.spec, String(e.priority), e.timeoutMs.map { String($0) }, e.group])
      if let secrets = e.secrets {
        try db.execute(ClusterSQL.replaceSecrets, [String(id), secrets])
      } else {
        try db.execute(ClusterSQL.deleteSecrets, [String(id)])
      }
      return .edited(task: try describe(id) ?? .null, e)
    }
  }
}
