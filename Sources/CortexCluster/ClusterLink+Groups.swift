/// What the link's thread knows of the cluster's groups: the groups `cortex_group` lists, as last
/// read (the daemon follows them; with a `parallel` limit among the held ones, claims are
/// serialized, `ClusterSQL.claimTasksGrouped`), and what the held ones have running and queued
/// in the whole cluster (`cortex status` shows those counts, docs/fleet.md).
struct GroupWatch {
  /// How often the load is read while any group is held: each read counts the live tasks of the
  /// held groups (`ClusterSQL.groupLoad`, as `cortex cluster status`).
  static let loadIntervalMs: Int64 = 2000

  /// As last read (nil: not yet).
  private(set) var listed: [ClusterGroup]? = nil
  /// What the held groups have running and queued in the whole cluster, as last read.
  private(set) var load: [ClusterStatus.GroupLoad] = []
  private var lastLoadMs: Int64 = 0

  /// Groups as just read: reported to the daemon if they changed (and their load read again at
  /// once).
  mutating func note(_ g: [ClusterGroup], into out: inout [ClusterLink.Event]) {
    guard g != listed else { return }
    listed = g
    lastLoadMs = 0
    out.append(.groups(g))
  }

  /// Reads the held groups' load when it is due, and reports it if it changed: every
  /// `loadIntervalMs` while a group is held, once more after the last one is let go.
  mutating func readLoad(_ s: ClusterStore, now: Int64, into out: inout [ClusterLink.Event]) throws(ClusterError) {
    guard now - lastLoadMs >= Self.loadIntervalMs, !load.isEmpty || listed?.contains(where: \.holds) == true else { return }
    lastLoadMs = now
    let l = try ClusterStatus.groups(s.db)
    guard l != load else { return }
    load = l
    out.append(.groupLoad(l))
  }
}
