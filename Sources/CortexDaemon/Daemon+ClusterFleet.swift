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
    case .success(.unknown):
      // Bad input, as on a single host (65, naming the task).
      reply(client, Scheduler.invalid(SpecError("id", "unknown task \(TaskID.format(id)) in the cluster"), index: nil, of: 1), now: t)
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
