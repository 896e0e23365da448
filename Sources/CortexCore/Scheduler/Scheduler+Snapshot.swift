/// JSON views of the state for the snapshot files and the CLI, and the inverse for recovery.
extension Scheduler {
  public func taskJSON(_ t: TaskRecord, withSpec: Bool = true) -> JSON {
    var o: [(String, JSON)] = [
      ("id", .string(t.id)), ("state", .string(t.state.rawValue)), ("type", .string(t.type)),
      ("priority", .string(t.spec.priority.name)), ("attempt", .int(Int64(t.attempt))),
      ("max_attempts", .int(Int64(t.maxAttempts))), ("token_budget", .int(Int64(t.budget))),
      ("tokens_used", .int(Int64(t.tokensUsed))), ("submitted_ms", .int(t.submittedMs)),
    ]
    if let d = t.spec.description { o.append(("description", .string(d))) }
    if let w = t.worker { o.append(("worker_id", .string(WorkerID.format(w)))) }
    if let p = t.pid { o.append(("pid", .int(Int64(p)))) }
    if let v = t.assignedMs { o.append(("assigned_ms", .int(v))) }
    if let v = t.startedMs { o.append(("started_ms", .int(v))) }
    if let v = t.endedMs { o.append(("ended_ms", .int(v))) }
    if let v = t.exitCode { o.append(("exit_code", .int(Int64(v)))) }
    if let v = t.signal { o.append(("signal", .int(Int64(v)))) }
    if let v = t.reason { o.append(("reason", .string(v))) }
    // The terminal event's sentence, as `wait` gives it beside the reason.
    if t.state.isTerminal, let v = t.detail { o.append(("detail", .string(v))) }
    if let v = t.timeoutMs { o.append(("timeout_ms", .int(v))) }
    if t.notBeforeMs > 0 && t.state == .queued { o.append(("not_before_ms", .int(t.notBeforeMs))) }
    if t.workerKills > 0 { o.append(("worker_kills", .int(Int64(t.workerKills)))) }
    if !t.state.isTerminal, let r = t.stopping?.logReason { o.append(("stopping", .string(r))) }
    if let v = t.waitingReason, t.state == .queued { o.append(("waiting", .string(v))) }
    if let v = t.progress { o.append(("progress", .double(v))) }
    if let v = t.message { o.append(("message", .string(v))) }
    o.append(("group", .string(groupName(t.spec))))
    if let r = t.spec.retryOf { o.append(("retry_of", .string(TaskID.format(r)))) }
    if withSpec, let s = try? JSON.parse(t.specJSON) { o.append(("spec", s)) }
    return .object(o)
  }

  /// What `show` adds to a task it holds: whether it has started at all (a queued task none of
  /// whose attempts began: `"not_started": true`), and, for one held by its dependencies, each
  /// dependency not yet succeeded with its state (`"waiting_on": [{"id", "state"}]`; a state
  /// this daemon no longer knows is `"unknown"`).
  public func showDetails(_ t: TaskRecord) -> [(String, JSON)] {
    guard t.state == .queued else { return [] }
    var o: [(String, JSON)] = []
    if t.attempt <= 1 && t.assignedMs == nil && t.startedMs == nil { o.append(("not_started", .bool(true))) }
    let unmet = t.spec.dependsOn.filter { state(of: $0) != .succeeded }
    if !unmet.isEmpty {
      let held = unmet.map { d -> JSON in
        .object([("id", .string(TaskID.format(d))), ("state", .string(state(of: d)?.rawValue ?? "unknown"))])
      }
      o.append(("waiting_on", .array(held)))
    }
    return o
  }

  public func countsJSON() -> JSON {
    .object(TaskState.allCases.map { ($0.rawValue, .int(Int64(counts[$0, default: 0]))) })
  }

  /// What the snapshot files need, for a background thread: the state without the window of
  /// finished records. Handing over the whole state would make the loop's next mutation copy
  /// thousands of records (copy-on-write), only for the copy to be dropped when the files are
  /// written.
  public func snapshotView() -> Scheduler {
    var s = self
    s.tasks = tasks.filter { !$0.value.state.isTerminal }
    s.finishedOrder = []
    return s
  }

  /// `task-queue.json`: every non-terminal task in full, the states of the finished ones, and
  /// what recovery needs (next id, tokens used, estimates). `seq` is the last event it includes.
  public func queueSnapshot(seq: UInt64, nowMs: Int64) -> JSON {
    let active = tasks.values.filter { !$0.state.isTerminal }.sorted { $0.number < $1.number }
    // Finished tasks as number ranges per state ("1-5000,5002-9000"): the snapshot stays small
    // however many tasks the daemon has run, instead of one JSON number per task every 10 s.
    var finished: [String: String] = [:]
    for r in finishedStates.runs {
      let range = r.first == r.last ? "\(r.first)" : "\(r.first)-\(r.last)"
      finished[r.state.rawValue, default: ""].append(finished[r.state.rawValue] == nil ? range : "," + range)
    }
    return .object([
      ("seq", .int(Int64(seq))), ("written", .string(Timestamp.rfc3339(ms: nowMs))),
      ("next_task", .int(Int64(nextTaskNumber))), ("counts", countsJSON()),
      ("queued_by_priority", .object(Priority.allCases.reversed().map { ($0.name, .int(Int64(queuedByPriority[$0.rawValue]))) })),
      ("tokens_used", .int(Int64(tokensUsed))),
      (
        "estimates",
        .object(
          estimates.sorted { $0.key < $1.key }.map { (k, e) in
            (
              k,
              .object([
                ("count", .int(Int64(e.count))), ("ewma_duration_ms", .double(e.ewmaDurationMs)), ("ewma_tokens", .double(e.ewmaTokens)),
              ])
            )
          })
      ),
      ("tasks", .array(active.map { taskJSON($0) })),
      ("finished", .object(finished.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
      ("retried", .string(Self.rangeText(retried.sorted()))),
      ("fleet", fleetSnapshot(now: nowMs)),
      // Every key the daemon still answers for, finished tasks' too, with their end times
      // (IdempotencyKeys): a restart remembers and forgets what the daemon did (the active tasks
      // above carry theirs in their specs; the finished ones' specs are not in this file).
      ("idempotency", idempotency.json()),
    ])
  }

  /// `token-budget.json`
  public func budgetSnapshot(seq: UInt64, nowMs: Int64) -> JSON {
    let allocations = tasks.values.filter { $0.reserved > 0 }.sorted { $0.number < $1.number }
    return .object([
      ("seq", .int(Int64(seq))), ("written", .string(Timestamp.rfc3339(ms: nowMs))),
      ("total", .int(Int64(config.tokenBudgetTotal))), ("reserved", .int(Int64(tokensReserved))),
      ("used", .int(Int64(tokensUsed))), ("available", .int(Int64(budgetAvailable))),
      (
        "allocations",
        .array(
          allocations.map { t in
            .object([
              ("task_id", .string(t.id)), ("reserved", .int(Int64(t.reserved))), ("used", .int(Int64(t.tokensUsed))),
            ])
          })
      ),
    ])
  }

  public func workerJSON(_ w: WorkerRecord) -> JSON {
    var o: [(String, JSON)] = [
      ("id", .string(w.id)), ("state", .string(w.state.rawValue)), ("pid", .int(Int64(w.pid))),
      ("tasks_done", .int(Int64(w.tasksDone))), ("restarts", .int(Int64(w.restarts.count))),
      ("last_seen_ms", .int(w.lastSeenMs)),
    ]
    if let t = w.task { o.append(("task_id", .string(TaskID.format(t)))) }
    if w.retiring { o.append(("retiring", .bool(true))) }
    return .object(o)
  }

  /// `worker-pool.json`
  public func workersSnapshot(seq: UInt64, nowMs: Int64) -> JSON {
    .object([
      ("seq", .int(Int64(seq))), ("written", .string(Timestamp.rfc3339(ms: nowMs))),
      ("size", .int(Int64(desiredWorkers))), ("idle", .int(Int64(idle.count))),
      ("busy", .int(Int64(workers.filter { $0.state == .busy }.count))),
      ("workers", .array(workers.filter { $0.state != .stopped || $0.slot <= desiredWorkers }.map(workerJSON))),
    ])
  }
}
