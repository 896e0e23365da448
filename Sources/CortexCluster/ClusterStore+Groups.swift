public import CortexCore

/// A group the cluster lists (schema 6, `cortex_group`; docs/fleet.md): it holds claims back
/// while paused, or limited to `parallel` running tasks across every node. A group once paused
/// or limited stays listed (resumed, unlimited), so a node that follows its resume knows who
/// made it.
public struct ClusterGroup: Sendable, Equatable {
  public var name: String
  public var paused: Bool
  /// Most tasks of the group running in the whole cluster; 0 is no limit.
  public var parallel: Int
  /// The node whose command (or config, when its join seeded the limit) last changed the group;
  /// empty when not known.
  public var changedBy: String
  public init(name: String, paused: Bool, parallel: Int, changedBy: String = "") {
    self.name = name
    self.paused = paused
    self.parallel = parallel
    self.changedBy = changedBy
  }

  /// Whether it holds claims back.
  public var holds: Bool { paused || parallel > 0 }

  /// From the renewal's `groups` column: a JSON array of [name, paused, parallel, changed_by].
  static func decode(_ text: String?) -> [ClusterGroup] {
    guard let text, let rows = try? JSON.parse(Array(text.utf8)).array else { return [] }
    return rows.compactMap { r in
      guard let a = r.array, a.count == 4, let name = a[0].string, let paused = a[1].bool, let n = a[2].int else { return nil }
      return ClusterGroup(name: name, paused: paused, parallel: Int(n), changedBy: a[3].string ?? "")
    }
  }
}

/// What a lease renewal reads besides the lease: the cluster's fleet controls.
public struct Renewal: Sendable, Equatable {
  public var queuePaused: Bool
  /// The node that last paused or resumed the queue (empty: not known).
  public var queueChangedBy: String
  public var groups: [ClusterGroup]
}

extension ClusterStore {
  /// The groups the cluster lists now: those that hold claims back (`holds`), and those once
  /// paused or limited that no longer do.
  public func listedGroups() throws(ClusterError) -> [ClusterGroup] {
    ClusterGroup.decode(try db.execute(ClusterSQL.listedGroups)[0, "groups"])
  }

  /// Pauses or resumes one group for every node; returns whether it was paused before. A resume
  /// wakes the nodes to claim.
  public func setGroupPaused(_ group: String, _ paused: Bool) throws(ClusterError) -> Bool {
    try db.transaction { () throws(ClusterError) -> Bool in
      let was = try db.execute(ClusterSQL.setGroupPaused, [group, paused ? "true" : "false", node])[0, "was"] == "t"
      try db.execute(ClusterSQL.wakeGroups)
      if was && !paused { try db.execute(ClusterSQL.wakeNodes) }
      return was
    }
  }

  /// Resumes every paused group (a `resume` without a group); returns their names, sorted.
  public func resumeAllGroups() throws(ClusterError) -> [String] {
    let r = try db.execute(ClusterSQL.resumeAllGroups, [node])
    if r.count > 0 {
      try db.execute(ClusterSQL.wakeGroups)
      try db.execute(ClusterSQL.wakeNodes)
    }
    return (0..<r.count).compactMap { r[$0, "name"] }.sorted()
  }

  /// Sets a group's `parallel` limit for the whole cluster (0: none). Wakes the nodes (a raised
  /// limit frees slots).
  public func setGroupParallel(_ group: String, _ parallel: Int) throws(ClusterError) {
    try db.transaction { () throws(ClusterError) in
      try db.execute(ClusterSQL.setGroupParallel, [group, String(parallel), node])
      try db.execute(ClusterSQL.wakeGroups)
      try db.execute(ClusterSQL.wakeNodes)
    }
  }

  /// A joining node's configured limits, for groups the cluster does not list yet.
  public func seedGroups(_ limits: [String: Int]) throws(ClusterError) {
    guard limits.values.contains(where: { $0 > 0 }) else { return }
    let v = JSON.object(limits.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) })
    try db.transaction { () throws(ClusterError) in
      try db.execute(ClusterSQL.seedGroups, [v.encoded(), node])
      try db.execute(ClusterSQL.wakeGroups)
    }
  }
}

extension ClusterStatus {
  /// A group the cluster holds back, with its load (`cortex cluster status`).
  public struct GroupLoad: Sendable, Equatable {
    public var group: ClusterGroup
    public var running: Int64
    public var queued: Int64

    public func json() -> JSON {
      .object([
        ("name", .string(group.name)), ("paused", .bool(group.paused)), ("parallel", .int(Int64(group.parallel))),
        ("running", .int(running)), ("queued", .int(queued)),
      ])
    }

    /// `slow (parallel 2: 1 running, 5 queued)`.
    public var text: String {
      let hold = [group.paused ? "paused" : nil, group.parallel > 0 ? "parallel \(group.parallel)" : nil].compactMap { $0 }
      return "\(group.name) (\(hold.joined(separator: ", ")): \(running) running, \(queued) queued)"
    }
  }

  /// Whether the cluster knows `group` (`ClusterSQL.groupNamed`).
  public static func knows(_ db: PGConnection, group: String) throws(ClusterError) -> Bool {
    try db.execute(ClusterSQL.groupNamed, [group])[0, "named"] == "t"
  }

  /// The held groups and their load. Not part of `read`: the web view reads that every second,
  /// and these counts scan the live tasks.
  public static func groups(_ db: PGConnection) throws(ClusterError) -> [GroupLoad] {
    let r = try db.execute(ClusterSQL.groupLoad)
    return (0..<r.count).map { i in
      GroupLoad(
        group: ClusterGroup(name: r[i, "name"] ?? "", paused: r[i, "paused"] == "t", parallel: Int(r[i, "parallel"] ?? "") ?? 0),
        running: Int64(r[i, "running"] ?? "") ?? 0, queued: Int64(r[i, "queued"] ?? "") ?? 0)
    }
  }
}
