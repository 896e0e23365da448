import CortexCluster
import CortexCore
import Posix

/// What the loop does with the cluster link's reports (cluster mode only; `cluster` is nil on a
/// single host and none of this runs).
extension Daemon {
  /// `answerFields`: added to the answer after its ids (a `retry`'s account of what it retried).
  /// `inbox`: the inbox file the batch comes from, recorded with it in the database.
  func clusterSubmit(
    _ cluster: ClusterAdapter, _ id: ClientID, _ specs: [TaskSpec], answerFields: [(String, JSON)] = [],
    inbox: (name: String, crc32c: UInt32)? = nil, now t: Int64
  ) {
    switch scheduler.prepare(specs) {
    case .failure(let refusal): reply(id, refusal.json, now: t)
    case .success(let ready):
      cluster.submit(
        id, ready, groups: ready.map { scheduler.groupName($0.spec) }, maxQueue: config.maxQueue, answerFields: answerFields,
        inbox: inbox.map { ClusterStore.InboxFile(name: $0.name, crc32c: $0.crc32c) })
    }
  }

  /// At a start, before the first scan of the inbox: each inbox file the database says this node
  /// submitted and had not moved is moved to `accepted/` if it still has the same bytes, with
  /// `inbox.accepted` (reason `already_submitted`), instead of being submitted again; every such
  /// record then goes (a file gone or changed since is not the one it recorded).
  func settleClusterInbox(_ cluster: ClusterAdapter, now t: Int64) {
    for r in cluster.unmovedInbox {
      let path = paths.inbox + "/" + r.file.name
      if case .success(let bytes)? = readInboxFile(path), FastCRC32C.checksum(bytes) == r.file.crc32c,
        (try? FileSystem.rename(path, paths.inboxAccepted + "/" + r.file.name)) != nil
      {
        try? FileSystem.syncDirectory(paths.inboxAccepted)
        log.append(InboxLedger.accepted(file: r.file.name, tasks: r.ids, recovered: true), nowMs: t)
      }
      cluster.inboxSettled(r.file.name, ids: r.ids)
    }
    cluster.unmovedInbox = []
  }

  func clusterEvents(now t: Int64) {
    guard let cluster else { return }
    for e in cluster.link.events() {
      switch e {
      case .submitted(let ticket, let result):
        guard let client = cluster.pendingSubmits.removeValue(forKey: ticket) else { continue }
        let extra = cluster.pendingAnswerFields.removeValue(forKey: ticket) ?? []
        let file = cluster.pendingInbox.removeValue(forKey: ticket)
        switch result {
        case .success(let ids):
          log.append(
            Event(
              "task.submitted", reason: "cluster", detail: "\(ids.count) task\(ids.count == 1 ? "" : "s") committed to the cluster",
              fields: [("node", .string(cluster.node)), ("ids", .array(ids.map { .string(TaskID.format($0)) }))]
                + (file.map { InboxLedger.fields(file: $0.name, crc32c: $0.crc32c) } ?? [])), nowMs: t)
          var answer: [(String, JSON)] = [("ok", .bool(true)), ("ids", .array(ids.map { .string(TaskID.format($0)) }))]
          answer += extra
          reply(client, .object(answer), now: t)
        case .failure(let error):
          if case .connect = error.kind, inboxPending.removeValue(forKey: client) != nil {
            // An inbox file PostgreSQL did not answer for stays in inbox/ and is submitted again
            // once it answers (it moved to rejected/, to be dropped again by hand). Had the submit
            // committed and its answer been lost, the database's record of the file answers the
            // next one with the first one's ids (`ClusterStore+Inbox`).
          } else if case .refused(let reason) = error.kind {
            reply(client, Scheduler.refused(reason, error.message), now: t)
          } else if case .invalid(let field, let index) = error.kind {
            reply(client, Scheduler.invalid(SpecError(field, error.message), position: index.map { $0 + 1 }, of: nil), now: t)
          } else if error.sqlState == "23505" {
            // Two nodes committed the same new key at once; the other one won. A retry answers
            // with the winner's id.
            reply(
              client,
              Scheduler.refused(
                "idempotency_race", "another node added a task with the same idempotency key at the same moment; submit again for its id"),
              now: t)
          } else if error.outcomeUnknown {
            // The COMMIT went out and its answer did not come back: "did not take" would be a
            // guess, and a script repeating the submit on 75 could add the tasks twice.
            guard case .object(var fields) = Scheduler.refused("cluster_unavailable", Self.commitUnknown(error)) else { continue }
            fields.append(("outcome", .string("unknown")))
            reply(client, .object(fields), now: t)
          } else {
            reply(client, Scheduler.refused("cluster_unavailable", "the cluster's database did not take the batch: \(error)"), now: t)
          }
        }
      case .claimed(let list):
        // The link lowered its copy of the wish by what it claimed: send ours again next tick.
        cluster.lastWanted = -1
        var adopted: [Scheduler.Adopted] = []
        var cancelled: [Int] = []
        for c in list {
          guard let v = try? JSON.parse(Array(c.spec.utf8)), var spec = try? TaskSpec.decode(v) else {
            // Cannot happen for specs this code wrote; finish it rather than hold the claim.
            cluster.link.complete(
              .init(
                id: c.id, attempt: c.attempt, epoch: cluster.link.epoch, state: .rejected, reason: "bad_spec", exitCode: nil,
                tokensUsed: 0))
            continue
          }
          if let text = c.secrets, let sv = try? JSON.parse(Array(text.utf8)), let secrets = SpecSecrets.decode(sv) {
            spec.restore(secrets)
          }
          // The group the cluster counts the task in (resolved where it was submitted), not the
          // one this node's worker types would give it: a task counted in one group but held
          // here by another's limit would take the first group's slot while it waits.
          if spec.group == nil, let g = c.group { spec.group = g }
          cluster.claims[c.id] = (c.attempt, cluster.link.epoch)
          adopted.append(
            Scheduler.Adopted(
              number: c.id, spec: spec, budget: c.tokenBudget, timeoutMs: c.timeoutMs, maxAttempts: c.maxAttempts, attempt: c.attempt))
          if c.cancelRequested { cancelled.append(c.id) }
        }
        feed(.adopt(adopted, node: cluster.node), now: t)
        if !cancelled.isEmpty { feed(.cancel(ClusterAdapter.internalClient, cancelled), now: t) }
      case .completed(let id, let accepted):
        cluster.outbox.confirmed(id)
        if !accepted {
          log.append(
            Event(
              "task.completion_refused", task: id, reason: "fenced",
              detail: "the cluster refused this node's terminal state: its claim was fenced (another node owns the task now)",
              fields: [("node", .string(cluster.node))]), nowMs: t)
        }
      case .cancelRequested(let ids):
        feed(.cancel(ClusterAdapter.internalClient, ids), now: t)
      case .replayed(let accepted, let refused):
        log.append(
          Event(
            "cluster.replayed", reason: "restart",
            detail:
              "\(accepted) terminal states kept while the database was unreachable were delivered before joining; \(refused) were refused (already delivered, or given to another node)",
            fields: [("node", .string(cluster.node)), ("accepted", .int(Int64(accepted))), ("refused", .int(Int64(refused)))]),
          nowMs: t)
      case .joined(let epoch):
        log.append(
          Event("node.joined", reason: "lease", fields: [("node", .string(cluster.node)), ("epoch", .int(epoch))]), nowMs: t)
      case .fenced(let why):
        // Self-fencing: stop everything claimed here; the cluster gives it to another node.
        let ids = Array(cluster.claims.keys)
        cluster.claims.removeAll()
        log.append(Event("node.fenced", reason: "lease_lost", detail: why, fields: [("node", .string(cluster.node))]), nowMs: t)
        if !ids.isEmpty { feed(.cancel(ClusterAdapter.internalClient, ids), now: t) }
      case .unavailable(let why):
        if cluster.unreachableSinceMs == nil { cluster.unreachableSinceMs = t }
        hotDirty = true
        cluster.outbox.keep()
        log.append(Event("cluster.unavailable", reason: "database_unreachable", detail: why), nowMs: t)
        answerCancelsCutOff(cluster, now: t)
      case .available:
        cluster.unreachableSinceMs = nil
        hotDirty = true
        cluster.outbox.release()
        log.append(Event("cluster.available", reason: "database_reachable"), nowMs: t)
      case .described(let ticket, let result):
        guard let (client, id) = cluster.pendingShows.removeValue(forKey: ticket) else { continue }
        switch result {
        case .success(let task?): reply(client, .object([("ok", .bool(true)), ("task", task)]), now: t)
        case .success(nil):
          reply(client, Scheduler.invalid(SpecError("id", "unknown task \(TaskID.format(id)) in the cluster"), index: nil, of: 1), now: t)
        case .failure(let error):
          reply(
            client,
            Scheduler.refused(
              "cluster_unavailable", "\(TaskID.format(id)) is not held by this node and the cluster's record of it cannot be read: \(error)"
            ),
            now: t)
        }
      case .listed(let ticket, let result):
        guard let client = cluster.pendingLists.removeValue(forKey: ticket) else { continue }
        switch result {
        case .success(let rows):
          // A task held here, or one that ended here and that this node still keeps (the same
          // end, the same attempt), is shown as this node knows it: worker, times, progress. The
          // cluster's tables keep no worker (and a start time only since schema 9).
          let merged: [JSON] = rows.map { row in
            guard let n = row["id"]?.string.flatMap(TaskID.parse), let rec = scheduler.tasks[n],
              !rec.state.isTerminal
                || (row["node"]?.string == cluster.node && row["state"]?.string == rec.state.rawValue
                  && row["attempt"]?.int == Int64(rec.attempt)),
              case .object(var o) = scheduler.taskJSON(rec, withSpec: false)
            else { return row }
            o.removeAll { $0.0 == "node" }
            o.append(("node", .string(cluster.node)))
            return .object(o)
          }
          reply(client, .object([("ok", .bool(true)), ("tasks", .array(merged))]), now: t)
        case .failure(let error):
          reply(client, Scheduler.refused("cluster_unavailable", "cannot list the cluster's tasks: \(error)"), now: t)
        }
      case .queuePaused(let paused, let by):
        // Every node follows the cluster's pause in its own scheduler: `cortex status` says so,
        // and what it claimed before waits too. Logged there as queue.paused / queue.resumed.
        followQueuePause(paused, by: by, now: t)
      case .groups(let listed):
        cluster.listedGroups = listed
        followGroups(listed, now: t)
      case .groupLoad(let load):
        cluster.groupLoad = load
        groupsFileDue = true
      case .groupSet(let ticket, let group, _, let result):
        guard let p = cluster.pendingGroupSets.removeValue(forKey: ticket) else { continue }
        clusterGroupSet(p.client, group, p.command, result, now: t)
      case .queuePauseSet(let ticket, let paused, let result):
        guard let client = cluster.pendingPauses.removeValue(forKey: ticket) else { continue }
        clusterPauseSet(client, paused, result, now: t)
      case .edited(let ticket, let id, let result):
        guard let p = cluster.pendingEdits.removeValue(forKey: ticket) else { continue }
        clusterEdited(cluster, p.client, id, fields: p.fields, result, now: t)
      case .retrySources(let ticket, let result):
        guard let client = cluster.pendingRetries.removeValue(forKey: ticket) else { continue }
        clusterRetry(cluster, client, result, now: t)
      case .finished(let ticket, let outcomes):
        guard let w = cluster.pendingWatches.removeValue(forKey: ticket) else { continue }
        reply(w.client, ClusterAdapter.answer(outcomes, cancel: w.cancel), now: t)
      case .settled(let failed, let cancelled, let readied, let trimmed):
        log.append(
          Event(
            "cluster.settled", reason: "leader",
            detail:
              "\(failed) queued tasks failed because they need more tokens than the cluster's budget has not spent (token_budget_exhausted); \(cancelled) tasks cancelled because a dependency failed; \(readied) made ready by a recount; \(trimmed) finished records past cluster.history_s removed",
            fields: [
              ("node", .string(cluster.node)), ("failed", .int(Int64(failed))), ("cancelled", .int(Int64(cancelled))),
              ("readied", .int(Int64(readied))),
              ("trimmed", .int(Int64(trimmed))),
            ]), nowMs: t)
      case .rescued(let fenced, let requeued, let cancelled):
        log.append(
          Event(
            "cluster.rescued", reason: "lease_lapsed",
            detail: "fenced \(fenced.isEmpty ? "no node" : fenced.joined(separator: ", ")); \(requeued) tasks requeued"
              + (cancelled > 0 ? "; \(cancelled) cancelled (a cancel was asked for)" : ""),
            fields: [
              ("node", .string(cluster.node)), ("requeued", .int(Int64(requeued))), ("cancelled", .int(Int64(cancelled))),
            ]), nowMs: t)
      }
    }
  }
}

/// `cancel` while this node cannot reach PostgreSQL (docs/cluster.md, "What a node answers while
/// it cannot reach the database"): a cancel is confirmed by the database, so its client is
/// answered at once with 75 `cluster_unavailable`, never left waiting for the outage to end;
/// the cancel itself is kept by the link and written once the database answers.
extension Daemon {
  /// A cancel asked for while the link reports PostgreSQL unreachable: kept by the link (a cancel
  /// dropped then let the task run again after its rescue) and answered at once. Its client used
  /// to wait without a word until the database answered again and the task ended.
  func clusterCancel(_ cluster: ClusterAdapter, _ client: ClientID, _ ids: [Int], now t: Int64) {
    guard let since = cluster.unreachableSinceMs else {
      cluster.watch(client, ids, cancel: true)
      return
    }
    cluster.link.cancel(ids)
    reply(client, Self.cancelKept(ids, unreachableForMs: t - since), now: t)
  }

  /// The link lost the database while cancels it had been handed wait for their tasks to end:
  /// each is answered now, as one asked for after the loss is.
  func answerCancelsCutOff(_ cluster: ClusterAdapter, now t: Int64) {
    for (ticket, w) in cluster.pendingWatches where w.cancel {
      cluster.pendingWatches[ticket] = nil
      reply(w.client, Self.cancelKept(w.ids, unreachableForMs: nil), now: t)
    }
  }

  /// 75 `cluster_unavailable` with `"outcome": "pending"`: the cancel is kept, not confirmed.
  static func cancelKept(_ ids: [Int], unreachableForMs: Int64?) -> JSON {
    let which = ids.count == 1 ? TaskID.format(ids[0]) : "\(ids.count) tasks"
    let again = ids.count == 1 ? TaskID.format(ids[0]) : "ID..."
    let detail =
      "this node cannot reach the cluster's database"
      + (unreachableForMs.map { " (unreachable for \(max(0, $0) / 1000) s)" } ?? "")
      + ", which confirms cancels: the cancel of \(which) is kept by this node and written to the cluster once the database answers "
      + "(if it was not written already), and the task's node stops the task then; cortex wait \(again) says when it has ended"
    guard case .object(var fields) = Scheduler.refused("cluster_unavailable", detail) else { return .null }
    fields.append(("outcome", .string("pending")))
    return .object(fields)
  }
}

extension Daemon {
  /// The refusal of a submit whose COMMIT may or may not have reached the database.
  static func commitUnknown(_ error: ClusterError) -> String {
    "the connection to the cluster's database broke while it committed the batch (\(error.message)): whether its tasks were added is not known "
      + "(cortex list shows what the cluster has); a submit with --idempotency-key K, or a batch whose lines carry an idempotency_key, is safe to repeat"
  }
}
