import CortexCore
import Posix

/// `/api/status` (also pushed on the event stream) and `/metrics`.
extension WebServer {
  static let stateLetters: [String: Character] = [
    "starting": "s", "idle": "i", "busy": "b", "stopping": "t", "restarting": "r", "parked": "p", "stopped": "x",
  ]

  /// The worker slots the pages and `/api/workers` show: the pool's, and any slot beyond it that
  /// is not stopped yet (a scale-down's). The slots of an earlier, larger pool stay in the hot
  /// state as `stopped`; `cortex status`, `top` and `workers` leave them out too. A prefix, so
  /// that a tile's position is its slot.
  static func shownWorkers(_ v: HotState.View) -> ArraySlice<HotState.WorkerView> {
    let last = v.workers.lastIndex(where: v.inPool)
    return v.workers[..<((last ?? -1) + 1)]
  }

  /// `withCluster`: add `cluster` (cluster mode; not in the answer to another node's web view).
  func statusJSON(_ v: HotState.View, now t: Int64, withCluster: Bool = true) -> JSON {
    var states = ""
    var tasks: [JSON] = []
    let shown = Self.shownWorkers(v)
    states.reserveCapacity(shown.count)
    for w in shown {
      states.append(Self.stateLetters[w.state] ?? "?")
      tasks.append(.int(Int64(w.task ?? 0)))
    }
    return .object(
      [
        ("ok", .bool(true)), ("seq", .int(Int64(v.lastSeq))), ("phase", .string(v.phase)), ("admitting", .bool(v.admitting)),
        ("pid", .int(Int64(v.pid))), ("started_ms", .int(v.startedMs)), ("updated_ms", .int(v.updatedMs)), ("now_ms", .int(t)),
        ("pool_size", .int(Int64(v.poolSize))),
        ("counts", v.countsJSON),
        ("queued_by_priority", v.queuedByPriorityJSON),
        ("rejected", .int(Int64(v.rejected))),
        // In cluster mode a node's own budget is a placeholder (2^60, so that the database's
        // check is the one that refuses): the budget is the cluster's, under `cluster`.
        ("budget", cluster == nil ? v.budgetJSON : .object([("scope", .string("cluster")), ("see", .string("cluster.budget"))])),
        ("workers", .object([("states", .string(states)), ("tasks", .array(tasks))])),
        (
          "web",
          .object([
            ("connections", .int(Int64(connections.count))), ("streams", .int(Int64(streams.count))),
            ("log_seq", .int(Int64(model.lastSeq))), ("tasks_known", .int(Int64(model.taskCount))),
          ])
        ),
      ] + (cluster.map { [("node", JSON.string($0.node))] } ?? []) + (withCluster ? clusterStatusField(v, now: t) : []))
  }

  func metricsText(now t: Int64) -> String {
    var s = ""
    func metric(_ name: String, _ help: String, _ type: String, _ rows: [(String, String)]) {
      s += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
      for (labels, v) in rows { s += "\(name)\(labels) \(v)\n" }
    }
    let outcomes = ["succeeded", "failed", "cancelled", "timed_out", "rejected"]
    metric(
      "cortex_tasks_finished_total", "Tasks that reached a terminal state, by outcome, since the daemon started (from the decision log).",
      "counter", outcomes.map { ("{outcome=\"\($0)\"}", String(model.metrics.finishedTotal[$0] ?? 0)) })
    s += model.metrics.queueWait.exposition(
      "cortex_task_queue_wait_seconds", "Time from queued (submitted or retried) to started, per attempt.")
    s += model.metrics.run.exposition("cortex_task_run_seconds", "Time from started to finished, per attempt that ran.")
    let (counts, sum, count) = fsync.read()
    s += Histogram(counts: counts, sum: sum, count: count).exposition(
      "cortex_log_fsync_seconds", "fdatasync(2) of the decision log, as the daemon timed it.")
    metric("cortex_log_events_total", "Events read from the decision log by the web view.", "counter", [("", String(model.linesRead))])
    if let v = hot.read() {
      metric(
        "cortex_tasks", "Tasks by state (hot state).", "gauge",
        TaskState.allCases.map { ("{state=\"\($0.rawValue)\"}", String(v.counts[$0] ?? 0)) })
      metric(
        "cortex_queue_depth", "Queued tasks by priority.", "gauge",
        Priority.allCases.reversed().map { ("{priority=\"\($0.name)\"}", String(v.queuedByPriority[$0] ?? 0)) })
      var byState: [String: Int] = [:]
      for w in v.workers { byState[w.state, default: 0] += 1 }
      metric(
        "cortex_workers", "Workers by state.", "gauge",
        HotState.workerStates.map { ("{state=\"\($0.rawValue)\"}", String(byState[$0.rawValue] ?? 0)) })
      // Not in cluster mode, where this node's budget is a placeholder (the cluster's is the
      // database's: cortex cluster status).
      if cluster == nil {
        metric(
          "cortex_tokens", "Token budget.", "gauge",
          [
            ("{kind=\"total\"}", String(v.tokensTotal)), ("{kind=\"reserved\"}", String(v.tokensReserved)),
            ("{kind=\"used\"}", String(v.tokensUsed)), ("{kind=\"available\"}", String(v.tokensAvailable)),
          ])
      }
      metric("cortex_log_seq", "Last event sequence number applied to the hot state.", "gauge", [("", String(v.lastSeq))])
    }
    // The groups as the daemon last wrote them (at once after a change, else at most once a
    // second): the same gauges as its metrics.prom.
    if let bytes = (try? FileSystem.read(paths.groups)) ?? nil, let g = try? JSON.parse(bytes) {
      s += Exposition.groups(g["groups"]?.array ?? [], queuePaused: g["queue_paused"]?.bool ?? false)
    }
    metric("cortex_web_connections", "Open HTTP connections (event streams included).", "gauge", [("", String(connections.count))])
    metric("cortex_web_refused_total", "HTTP connections refused because every slot was busy.", "counter", [("", String(refused))])
    // In cluster mode every series is this node's, and says so (`Exposition`).
    if let cluster { s = Exposition.labelled(s, node: cluster.node) }
    return s
  }
}
