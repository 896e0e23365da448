import CortexCluster
import CortexCore

/// `pause`, `resume` and `group set` in cluster mode, and how a node follows the cluster's
/// pauses and group limits (docs/fleet.md). A change made here is applied by this node's
/// scheduler once the database has it, and logged as the single-host command is (reason
/// `cortex_pause`, `cortex_resume`, `cortex_group_set`); one this node follows from the cluster
/// (made on another node, or while this one was away) is logged with reason `cluster_pause`,
/// `cluster_resume` or `cluster_group_set`, and the node that made it as `changed_by` (when the
/// database knows it: `cortex_queue.changed_by`, `cortex_group.changed_by`); every event of a
/// node names that node as `node`.
extension Daemon {
  /// The answer to `pause` / `resume` in cluster mode, shaped as on a single host. This node's
  /// scheduler follows at once (the others with their next lease renewal). A resume names every
  /// group it resumed in the cluster, not only those this node knew were paused.
  func clusterPauseSet(
    _ client: ClientID, _ paused: Bool, _ result: Result<(was: Bool, resumedGroups: [String]), ClusterError>, now t: Int64
  ) {
    switch result {
    case .success(let r):
      // A resume also resumed every paused group in the cluster (the others hear it with their
      // next renewal); this node's scheduler resumes its own at once.
      let resumedHere = paused ? [] : scheduler.fleet.groups.filter(\.paused).map(\.name)
      if scheduler.fleet.paused != paused || !resumedHere.isEmpty {
        feed(.control(ClusterAdapter.internalClient, paused ? .pause(group: nil) : .resume(group: nil)), now: t)
        groupsFileDue = true
      }
      let resumed = Set(resumedHere).union(r.resumedGroups).sorted()
      let changed = (r.was == paused ? [] : ["*"]) + resumed
      reply(
        client,
        .object([
          ("ok", .bool(true)), ("changed", .array(changed.map { .string($0) })), ("queue_paused", .bool(paused)),
          ("paused_groups", .array(scheduler.fleet.groups.filter(\.paused).map { .string($0.name) })), ("scope", .string("cluster")),
        ]), now: t)
    case .failure(let error):
      reply(client, Scheduler.refused("cluster_unavailable", "cannot \(paused ? "pause" : "resume") the cluster's queue: \(error)"), now: t)
    }
  }

  /// The answer to `pause GROUP`, `resume GROUP` or `group set` in cluster mode: once the
  /// database has it, this node's scheduler applies the same request and answers it (and logs
  /// `group.paused`, `group.resumed` or `group.updated`); the other nodes follow with their next
  /// renewal or wake-up (`followGroups`). A pause or resume the cluster had and this node had not
  /// heard of yet is followed first, so that the answer says what the command changed in the
  /// cluster ("group x resumed", not "was not paused").
  func clusterGroupSet(_ client: ClientID, _ group: String, _ command: FleetCommand, _ result: Result<Bool, ClusterError>, now t: Int64) {
    switch result {
    case .success(let was):
      if command == .pause(group: group) || command == .resume(group: group),
        (scheduler.fleet.groups.first { $0.name == group }?.paused ?? false) != was
      {
        follow(was ? .pause(group: group) : .resume(group: group), by: "", now: t)
      }
      feed(.control(client, command), now: t)
      groupsFileDue = true
    case .failure(let error):
      reply(client, Scheduler.refused("cluster_unavailable", "cannot change group \(group) in the cluster: \(error)"), now: t)
    }
  }

  /// This node's scheduler follows the cluster's queue pause.
  func followQueuePause(_ paused: Bool, by: String, now t: Int64) {
    guard scheduler.fleet.paused != paused else { return }
    follow(paused ? .pause(group: nil) : .resume(group: nil), by: by, now: t)
    groupsFileDue = true
  }

  /// This node's scheduler follows the cluster's groups: paused ones are paused here, the
  /// cluster's `parallel` limits replace this node's (a limit of the cluster is never exceeded
  /// by one node either), and a group the cluster does not hold back is resumed and unlimited.
  func followGroups(_ listed: [ClusterGroup], now t: Int64) {
    let byName = Dictionary(listed.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
    var commands: [(FleetCommand, by: String)] = []
    for g in listed {
      let local = scheduler.fleet.groups.first { $0.name == g.name }
      if (local?.paused ?? false) != g.paused { commands.append((g.paused ? .pause(group: g.name) : .resume(group: g.name), g.changedBy)) }
      if (local?.parallel ?? 0) != g.parallel { commands.append((.setParallel(group: g.name, g.parallel), g.changedBy)) }
    }
    for local in scheduler.fleet.groups where byName[local.name] == nil {
      if local.paused { commands.append((.resume(group: local.name), "")) }
      if local.parallel != 0 { commands.append((.setParallel(group: local.name, 0), "")) }
    }
    for (c, by) in commands { follow(c, by: by, now: t) }
    if !commands.isEmpty { groupsFileDue = true }
  }

  /// Applies a change this node follows from the cluster; the scheduler's events say where it
  /// came from (see the type's comment). Recovery replays them by type, as the local command's.
  func follow(_ command: FleetCommand, by: String, now t: Int64) {
    var out: [Action] = []
    scheduler.handle(.control(ClusterAdapter.internalClient, command), now: t, into: &out)
    route(
      out.map { a in
        guard case .log(var e) = a else { return a }
        if let r = e.reason, r.hasPrefix("cortex_") { e.reason = "cluster_" + r.dropFirst("cortex_".count) }
        e.detail = (e.detail ?? "") + (by.isEmpty ? " (changed in the cluster)" : " (changed on node \(by))")
        if !by.isEmpty { e.fields.append(("changed_by", .string(by))) }
        return .log(e)
      }, now: t)
  }
}
