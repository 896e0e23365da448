import CortexCluster
import CortexCore

/// `edit` and `retry` in cluster mode. An edit changes the database's copy of a queued task (any
/// node may claim it) and is logged here as `task.edited`, with the node.
///
/// `retry` in cluster mode: the finished tasks' specs come from the cluster's history (any node
/// may have run them), and go back in through the ordinary cluster submit, each naming the task
/// it retries. A task's secret values are deleted with its terminal state (docs/cluster.md), so a
/// spec that had some cannot be submitted again faithfully: that is refused, never run with
/// `[redacted]` in place of a credential.
extension Daemon {
  /// The answer to `pause` / `resume` in cluster mode, shaped as on a single host. This node's
  /// scheduler follows at once (the others with their next lease renewal).
  func clusterPauseSet(_ client: ClientID, _ paused: Bool, _ result: Result<Bool, ClusterError>, now t: Int64) {
    switch result {
    case .success(let was):
      // A resume also resumed every paused group in the cluster (the others hear it with their
      // next renewal); this node's scheduler resumes its own at once.
      let resumedGroups = paused ? [] : scheduler.fleet.groups.filter(\.paused).map(\.name)
      if scheduler.fleet.paused != paused || !resumedGroups.isEmpty {
        feed(.control(ClusterAdapter.internalClient, paused ? .pause(group: nil) : .resume(group: nil)), now: t)
        groupsFileDue = true
      }
      let changed = (was == paused ? [] : ["*"]) + resumedGroups
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
  /// renewal or wake-up (`followGroups`).
  func clusterGroupSet(_ client: ClientID, _ group: String, _ command: FleetCommand, _ result: Result<Bool, ClusterError>, now t: Int64) {
    switch result {
    case .success:
      feed(.control(client, command), now: t)
      groupsFileDue = true
    case .failure(let error):
      reply(client, Scheduler.refused("cluster_unavailable", "cannot change group \(group) in the cluster: \(error)"), now: t)
    }
  }

  /// This node's scheduler follows the cluster's groups: paused ones are paused here, the
  /// cluster's `parallel` limits replace this node's (a limit of the cluster is never exceeded
  /// by one node either), and a group the cluster no longer holds back is resumed and unlimited.
  func followGroups(_ held: [ClusterGroup], now t: Int64) {
    let byName = Dictionary(held.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
    var commands: [FleetCommand] = []
    for g in held {
      let local = scheduler.fleet.groups.first { $0.name == g.name }
      if (local?.paused ?? false) != g.paused { commands.append(g.paused ? .pause(group: g.name) : .resume(group: g.name)) }
      if (local?.parallel ?? 0) != g.parallel { commands.append(.setParallel(group: g.name, g.parallel)) }
    }
    for local in scheduler.fleet.groups where byName[local.name] == nil {
      if local.paused { commands.append(.resume(group: local.name)) }
      if local.parallel != 0 { commands.append(.setParallel(group: local.name, 0)) }
    }
    for c in commands { feed(.control(ClusterAdapter.internalClient, c), now: t) }
    if !commands.isEmpty { groupsFileDue = true }
  }

  func clusterEdited(
    _ cluster: ClusterAdapter, _ client: ClientID, _ id: Int, fields: [String], _ result: Result<ClusterStore.EditResult, ClusterError>,
    now t: Int64
  ) {
    switch result {
    case .success(.edited(let task, let e)):
      var f: [(String, JSON)] = [("before", e.before), ("after", e.after), ("node", .string(cluster.node))]
      if let ms = e.timeoutMs { f.append(("timeout_ms", .int(ms))) }
      log.append(
        Event("task.edited", task: id, reason: "cortex_edit", detail: "changed \(fields.joined(separator: ", "))", fields: f), nowMs: t)
      reply(client, .object([("ok", .bool(true)), ("task", task)]), now: t)
    case .success(.notQueued(let why)):
      reply(client, Scheduler.failure("\(TaskID.format(id)) \(why); only a queued task can be edited"), now: t)
    case .failure(let error):
      if case .invalid(let field, _) = error.kind {
        reply(client, Scheduler.invalid(SpecError(field, error.message), index: nil, of: 1), now: t)
      } else {
        reply(client, Scheduler.refused("cluster_unavailable", "cannot edit the task in the cluster: \(error)"), now: t)
      }
    }
  }

  func clusterRetry(
    _ cluster: ClusterAdapter, _ client: ClientID, _ result: Result<[ClusterStore.RetrySource], ClusterError>, now t: Int64
  ) {
    let sources: [ClusterStore.RetrySource]
    switch result {
    case .success(let s): sources = s
    case .failure(let error):
      reply(client, Scheduler.refused("cluster_unavailable", "cannot read the tasks to retry from the cluster: \(error)"), now: t)
      return
    }
    var batch = RetryBatch()
    for src in sources {
      let id = TaskID.format(src.id)
      let outcome: Result<TaskSpec, RetryRefusal>
      if let live = src.liveState {
        outcome = .failure(
          RetryRefusal(message: "\(id) is \(live); only a finished task can be retried (cortex cancel it first)", code: 1))
      } else if src.state == nil || src.spec == nil {
        outcome = .failure(
          RetryRefusal(message: "\(id): unknown task in the cluster (finished tasks are kept for cluster.history_s)", code: 65))
      } else if let v = try? JSON.parse(Array(src.spec!.utf8)), let spec = try? TaskSpec.decode(v) {
        outcome = Result { () throws(RetryRefusal) in
          try spec.retry(of: src.id, secretsGone: "the cluster deletes them when a task ends")
        }
      } else {
        outcome = .failure(RetryRefusal(message: "\(id): its spec in the cluster's history cannot be read; submit it again", code: 65))
      }
      if let refusal = batch.add(src.id, named: src.named, outcome) {
        return reply(client, Scheduler.failure(refusal.message, code: refusal.code), now: t)
      }
    }
    if batch.specs.isEmpty { return reply(client, .object([("ok", .bool(true)), ("ids", .array([]))] + batch.answerFields), now: t) }
    clusterSubmit(cluster, client, batch.specs, answerFields: batch.answerFields, now: t)
  }
}
