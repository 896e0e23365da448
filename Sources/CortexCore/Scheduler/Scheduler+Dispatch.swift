/// Dispatch and the life of a task from queued to its one terminal event.
extension Scheduler {
  /// Gives the highest-priority ready tasks to idle workers. A task whose budget does not fit
  /// waits (logged once per reason) and nothing of lower priority overtakes it.
  mutating func dispatch(now: Int64, into out: inout [Action]) {
    fleet.pass &+= 1
    fleet.lastPassMs = now
    fleet.typeReadyMs = nil
    guard phase == .running, admitting else { return }
    while !idle.isEmpty {
      // The best head among the groups that may start one now (Scheduler+Groups).
      guard let (n, g, p) = nextCandidate(now: now, into: &out) else { return }
      switch admit(n, group: g, priority: p, now: now, into: &out) {
      case .stop: return
      case .next: continue
      case .start: break
      }
      popHead(g, p)
      let w = idle.removeLast()
      takeRate(n, group: g, now: now)
      assign(n, to: w, now: now, into: &out)
    }
  }

  enum Admission { case start, stop, next }

  /// Whether dispatch may start task `n`, the head of group `g` at priority `p`, now: `.stop` when
  /// nothing more may start in this pass, `.next` to look at the next candidate. Reads the
  /// record here, so that no copy of it is held while dispatch changes it (see TaskRecord).
  mutating func admit(_ n: Int, group g: Int, priority p: Int, now: Int64, into out: inout [Action]) -> Admission {
    let t = tasks[n]!
    if p != Priority.critical.rawValue && idle.count <= config.reserveCritical {
      noteWaiting(n, "reserved_for_critical", "the last \(config.reserveCritical) idle workers are kept for critical tasks", into: &out)
      return .stop
    }
    if t.budget > config.tokenBudgetTotal - tokensUsed {
      // Used tokens never come back: this task can never fit. End it rather than block the queue.
      popHead(g, p)
      finish(
        n, .failed, reason: "token_budget_exhausted",
        detail: "needs \(t.budget) tokens; only \(config.tokenBudgetTotal - tokensUsed) of the total are not spent", now: now,
        into: &out)
      return .next
    }
    if t.budget > budgetAvailable {
      noteWaiting(
        n, "token_budget_exhausted", "needs \(t.budget) tokens, \(max(0, budgetAvailable)) available", into: &out)
      return .stop
    }
    if let (reason, detail) = infeasible(t) {
      noteWaiting(n, reason, detail, into: &out)
      return .stop
    }
    if let why = typeBlocked(t, now: now) {
      // Its worker type's rate limit holds it; other groups' tasks may go.
      noteWaitingAt(n, why.reason, why.detail, at: why.at, group: fleet.groups[g].name, into: &out)
      if let at = why.at { fleet.typeReadyMs = min(fleet.typeReadyMs ?? at, at) }
      fleet.groups[g].skipPass = fleet.pass
      return .next
    }
    claimResources(t)
    return .start
  }

  /// The worker type's CPU and memory needs against the latest sample of the machine. Synthetic
  /// tasks spawn nothing and need nothing; so do tasks without a worker type.
  func infeasible(_ t: TaskRecord) -> (String, String)? {
    guard t.spec.synthetic == nil, let r = resources, let name = t.spec.type, let wt = config.workerType(name) else { return nil }
    let mem = r.availableMB - r.claimedMB
    if wt.memoryMB > 0 && mem < wt.memoryMB {
      return ("insufficient_memory", "\(name) needs \(wt.memoryMB) MiB; \(max(0, mem)) MiB available")
    }
    let cpu = r.idleCores - r.claimedCores
    // A single task may always use a whole machine's idle CPU, even if it asks for more.
    if wt.cpu > 0 && cpu < min(wt.cpu, 0.9) {
      return ("insufficient_cpu", "\(name) needs \(wt.cpu) idle cores; \(Double(Int(max(0, cpu) * 100)) / 100) idle")
    }
    return nil
  }

  /// Counts a dispatched task against the sample until the next one (which sees its real use).
  mutating func claimResources(_ t: TaskRecord) {
    guard t.spec.synthetic == nil, resources != nil, let name = t.spec.type, let wt = config.workerType(name) else { return }
    resources!.claimedMB += wt.memoryMB
    resources!.claimedCores += wt.cpu
  }

  mutating func assign(_ n: Int, to w: Int, now: Int64, into out: inout [Action]) {
    setState(n, .assigned)
    guard
      let (attempt, budget, spec) = update(
        n,
        { t in
          t.worker = w
          t.assignedMs = now
          t.startedMs = nil
          t.pid = nil
          t.tokensUsed = 0
          t.reserved = t.budget
          t.waitingReason = nil
          t.deadlineMs = t.timeoutMs.map { now + $0 }
          return (t.attempt, t.budget, t.spec)
        })
    else { return }
    tokensReserved += budget
    workers[w - 1].state = .busy
    workers[w - 1].task = n
    out.append(.log(Event("task.assigned", task: n, worker: w, attempt: attempt)))
    if budget > 0 {
      out.append(
        .log(
          Event(
            "budget.reserved", task: n, attempt: attempt,
            fields: [("tokens", .int(Int64(budget))), ("available", .int(Int64(budgetAvailable)))])))
    }
    out.append(.send(worker: w, .run(task: n, attempt: attempt, dir: "", budget: budget, spec: spec)))
  }

  mutating func taskStarted(_ w: Int, task n: Int, pid: Int32, now: Int64, into out: inout [Action]) {
    guard workers[w - 1].task == n, var t = tasks[n], t.state == .assigned else { return }
    t.pid = pid > 0 ? pid : nil
    t.startedMs = now
    tasks[n] = t
    setState(n, .running)
    var fields: [(String, JSON)] = []
    if pid > 0 { fields.append(("pid", .int(Int64(pid)))) }
    out.append(.log(Event("task.started", task: n, worker: w, attempt: t.attempt, fields: fields)))
  }

  mutating func taskProgress(
    _ w: Int, task n: Int, tokens: Int?, progress: Double?, message: String?, now: Int64, into out: inout [Action]
  ) {
    guard workers[w - 1].task == n, var t = tasks[n], !t.state.isTerminal else { return }
    if let tokens { t.tokensUsed = max(t.tokensUsed, tokens) }
    if let progress { t.progress = progress }
    if let message { t.message = message }
    let overrun = t.tokensUsed > t.reserved && t.stopping == nil
    if now - t.lastProgressLogMs >= 100 || overrun {
      t.lastProgressLogMs = now
      var f: [(String, JSON)] = [("tokens_used", .int(Int64(t.tokensUsed)))]
      if let progress { f.append(("progress", .double(progress))) }
      out.append(.log(Event("task.progress", task: n, worker: w, attempt: t.attempt, detail: message, fields: f)))
    }
    if overrun {
      out.append(
        .log(
          Event(
            "budget.overrun", task: n, attempt: t.attempt, reason: "token_budget_exceeded",
            detail: "reported \(t.tokensUsed) tokens, reserved \(t.reserved); stopping it",
            fields: [("tokens_used", .int(Int64(t.tokensUsed))), ("reserved", .int(Int64(t.reserved)))])))
      askToStop(&t, .budget, detail: "used \(t.tokensUsed) of \(t.reserved) tokens", now: now, into: &out)
    }
    tasks[n] = t
  }

  /// Asks the worker of task `t` to stop it for `cause`, after logging why (`task.stopping`; not
  /// for `cortex stop`, which requeues). Logged first, as every decision is: a daemon that starts
  /// before the worker reported the end (`cortex restart`, a crash) then knows the task was being
  /// stopped, and ends it cancelled, timed out or failed as asked, rather than taking the stopped
  /// process's exit for its result or running it again.
  func askToStop(_ t: inout TaskRecord, _ cause: StopCause, detail: String, now: Int64, into out: inout [Action]) {
    t.stopping = cause
    t.stopDeadlineMs = now + Int64(graceMs) + 5000
    if let reason = cause.logReason {
      out.append(.log(Event("task.stopping", task: t.number, worker: t.worker, attempt: t.attempt, reason: reason, detail: detail)))
    }
    if let w = t.worker { out.append(.send(worker: w, .cancel(task: t.number, graceMs: graceMs))) }
  }

  /// The worker finished an attempt (or stopped it on request).
  /// `endedMs`: when it ended, if not now (an outcome a re-adoption found in a worker's report,
  /// the task having ended while no daemon ran).
  mutating func taskDone(_ w: Int, _ o: TaskOutcome, now: Int64, endedMs: Int64? = nil, into out: inout [Action]) {
    let n = o.task
    guard workers[w - 1].task == n, let state = tasks[n]?.state, !state.isTerminal else { return }
    workers[w - 1].task = nil
    workers[w - 1].tasksDone += 1
    if workers[w - 1].state == .busy {
      if workers[w - 1].retiring || phase != .running {
        retire(w, now: now, into: &out)
      } else {
        workers[w - 1].state = .idle
        idle.append(w)
      }
    }
    if state == .assigned {
      // Started and finished in one breath (synthetic tasks): record the start too.
      let attempt = update(n) { t in
        t.startedMs = o.startedMs > 0 ? min(now, max(t.assignedMs ?? now, o.startedMs)) : now
        return t.attempt
      }
      setState(n, .running)
      out.append(.log(Event("task.started", task: n, worker: w, attempt: attempt)))
    }
    update(n) { t in
      t.tokensUsed = max(t.tokensUsed, o.tokensUsed)
      t.exitCode = o.exitCode
      t.signal = o.signal
    }
    // What the outcome depends on, read once (before the budget is released): the record itself is not held while it changes
    // below (a held copy would make each change copy it; see TaskRecord).
    let t = DoneFacts(tasks[n]!)
    let rateLimited = !o.succeeded && isRateLimited(tasks[n]!, o)
    releaseBudget(n, into: &out)
    let used = t.tokensUsed
    let overrun = used > t.reserved
    if t.stopping == nil && overrun {
      out.append(
        .log(
          Event(
            "budget.overrun", task: n, attempt: t.attempt, reason: "token_budget_exceeded",
            detail: "reported \(used) tokens, reserved \(t.reserved)")))
    }
    switch t.stopping {
    case .cancel: finish(n, .cancelled, reason: "cancelled", detail: nil, now: now, endedMs: endedMs, into: &out)
    case .timeout:
      finish(n, .timedOut, reason: "timeout", detail: "ran longer than \(t.timeoutMs ?? 0) ms", now: now, endedMs: endedMs, into: &out)
    case .budget:
      finish(
        n, .failed, reason: "token_budget_exceeded", detail: "used \(used) of \(t.reserved) tokens", now: now, endedMs: endedMs,
        into: &out)
    case .shutdown:
      requeue(n, reason: "daemon_stopping", detail: "stopped by cortex stop; it runs again at the next start", now: now, into: &out)
    case nil:
      if overrun {
        finish(
          n, .failed, reason: "token_budget_exceeded", detail: "used \(used) of \(t.reserved) tokens", now: now, endedMs: endedMs,
          into: &out)
      } else if o.succeeded {
        let end = endedMs ?? now
        let dur = Double(max(0, end - (t.startedMs ?? end)))
        estimates[t.type, default: Estimate()].observe(durationMs: dur, tokens: used)
        rateSucceeded(n, now: now, into: &out)
        finish(n, .succeeded, reason: nil, detail: nil, now: now, endedMs: endedMs, into: &out)
      } else if rateLimited, retryRateLimited(n, o, now: now, into: &out) {
        // Retried after the provider's retry_after (Scheduler+RateLimits).
      } else {
        let (reason, detail) = Self.failureReason(o)
        if t.attempt < t.maxAttempts {
          retry(n, reason: reason, detail: detail, now: now, into: &out)
        } else {
          finish(n, .failed, reason: reason, detail: detail, now: now, endedMs: endedMs, into: &out)
        }
      }
    }
  }

  static func failureReason(_ o: TaskOutcome) -> (String, String) {
    if let e = o.error {
      if let r = o.reason { return (r, e) }
      if e == "429" { return ("rate_limited", "simulated 429 from the synthetic agent") }
      return ("spawn_failed", e)
    }
    if let s = o.signal { return ("signal", "killed by signal \(s)") }
    return ("exit_code", "exited with code \(o.exitCode ?? -1)")
  }

  mutating func releaseBudget(_ n: Int, into out: inout [Action]) {
    guard
      let (reserved, used, attempt) = update(
        n,
        { t -> (Int, Int, Int)? in
          guard t.reserved > 0 || t.tokensUsed > 0 else { return nil }
          defer { t.reserved = 0 }
          return (t.reserved, t.tokensUsed, t.attempt)
        }) ?? nil
    else { return }
    tokensReserved -= reserved
    // Usage above the reservation is capped at what is free (the reservation was just returned
    // to it): the budget can never go negative.
    let charged = min(used, max(0, budgetAvailable))
    tokensUsed += charged
    out.append(
      .log(
        Event(
          "budget.released", task: n, attempt: attempt,
          fields: [
            ("tokens", .int(Int64(reserved))), ("used", .int(Int64(charged))),
            ("available", .int(Int64(budgetAvailable))),
          ])))
  }

  /// Exponential backoff with jitter: base · 2^(attempt-1), capped, plus up to 25 % random.
  mutating func backoffMs(attempt: Int) -> Int64 {
    let base = Int64(config.retryBackoffBaseMs)
    let exp = base << min(20, max(0, attempt - 1))
    let capped = min(exp, Int64(config.retryBackoffMaxMs))
    return capped + rng.below(capped / 4 + 1)
  }

  /// A task back in the queue for its next attempt, not before `delay` ms from now, with
  /// nothing of its last run left on it (both retries and rate-limited retries come here).
  mutating func requeue(_ n: Int, after delay: Int64, now: Int64) {
    guard var t = tasks[n] else { return }
    t.attempt += 1
    t.notBeforeMs = now + delay
    t.worker = nil
    t.stopping = nil
    t.stopDeadlineMs = nil
    t.deadlineMs = nil
    tasks[n] = t
    setState(n, .queued)
    delayed.append(n)
  }

  mutating func retry(_ n: Int, reason: String, detail: String, now: Int64, into out: inout [Action]) {
    guard let t = tasks[n] else { return }
    let delay = backoffMs(attempt: t.attempt)
    requeue(n, after: delay, now: now)
    out.append(
      .log(
        Event(
          "task.retrying", task: n, attempt: t.attempt, reason: reason, detail: detail,
          fields: [
            ("delay_ms", .int(delay)), ("not_before", .string(Timestamp.rfc3339(ms: now + delay))),
            ("tokens_used", .int(Int64(t.tokensUsed))),
          ])))
  }

  /// Back to the queue at once, without counting against max_attempts (the task did not fail).
  mutating func requeue(_ n: Int, reason: String, detail: String, now: Int64, into out: inout [Action]) {
    guard var t = tasks[n] else { return }
    t.attempt += 1
    t.worker = nil
    t.stopping = nil
    t.stopDeadlineMs = nil
    t.deadlineMs = nil
    t.maxAttempts = max(t.maxAttempts, t.attempt)
    t.notBeforeMs = now
    tasks[n] = t
    setState(n, .queued)
    enqueue(n)
    out.append(
      .log(
        Event(
          "task.retrying", task: n, attempt: t.attempt, reason: reason, detail: detail,
          fields: [("delay_ms", .int(0)), ("tokens_used", .int(Int64(t.tokensUsed)))])))
  }

  /// The one terminal transition. Logs the terminal event, answers waiters, settles dependents.
  /// `endedMs`: when the task ended, if before `now` (logged as `ended_ms`, which replay takes).
  mutating func finish(
    _ n: Int, _ state: TaskState, reason: String?, detail: String?, now: Int64, endedMs: Int64? = nil, into out: inout [Action]
  ) {
    guard let old = tasks[n]?.state, !old.isTerminal else { return }
    if tasks[n]!.reserved > 0 { releaseBudget(n, into: &out) }
    if old == .queued {
      blocked.remove(n)
      if let i = delayed.firstIndex(of: n) { delayed.remove(at: i) }
      // The entry stays in its queue and is skipped when reached (lazy deletion).
      if tasks[n]!.inQueue { unqueue(n) }
    }
    let end = min(now, endedMs ?? now)
    let t = update(n) { t in
      t.endedMs = end
      t.reason = reason
      t.detail = detail
      t.stopping = nil
      return (
        exitCode: t.exitCode, signal: t.signal, tokensUsed: t.tokensUsed, startedMs: t.startedMs, worker: t.worker, attempt: t.attempt,
        key: t.spec.idempotencyKey
      )
    }!
    setState(n, state)
    if let k = t.key { idempotency.ended(k, task: n, at: now) }
    var f: [(String, JSON)] = []
    if let c = t.exitCode { f.append(("exit_code", .int(Int64(c)))) }
    if let s = t.signal { f.append(("signal", .int(Int64(s)))) }
    f.append(("tokens_used", .int(Int64(t.tokensUsed))))
    if let s = t.startedMs { f.append(("duration_ms", .int(max(0, end - s)))) }
    if end < now { f.append(("ended_ms", .int(end))) }
    out.append(
      .log(Event(state.terminalEventType, task: n, worker: t.worker, attempt: t.attempt, reason: reason, detail: detail, fields: f)))
    out.append(.writeResult(task: n))
    // Answer whoever waits (most tasks have nobody waiting, depending or cancelling: no lookups then).
    // The pending sets are changed in place: a copy taken out of the table made each removal
    // copy the whole set (a wait on 20,000 tasks copied 20,000 numbers per task that ended).
    for c in taskWaiters.isEmpty ? [] : taskWaiters.removeValue(forKey: n) ?? [] {
      guard waitRequests[c]?.pending.remove(n) != nil, waitRequests[c]!.pending.isEmpty else { continue }
      let req = waitRequests.removeValue(forKey: c)!
      out.append(.reply(c, waitReply(req.ids), durable: false))
    }
    // The answer names every id as the request's first look did (an unknown id among running
    // ones was answered with no results, and `cortex cancel` printed it as cancelled, exit 0);
    // a running task says how it ended (as in cluster mode, ClusterAdapter.answer).
    for c in cancelWaiters.isEmpty ? [] : cancelWaiters.removeValue(forKey: n) ?? [] {
      guard cancelRequests[c]?.pending.remove(n) != nil, cancelRequests[c]!.pending.isEmpty else { continue }
      let req = cancelRequests.removeValue(forKey: c)!
      let results = req.results.map { (id, r) -> (String, JSON) in
        guard r.string == "cancelling", let m = TaskID.parse(id), let st = self.state(of: m) else { return (id, r) }
        return (id, .string(st == .cancelled ? "cancelled" : "already \(st.rawValue)"))
      }
      out.append(.reply(c, .object([("ok", .bool(true)), ("results", .object(results))]), durable: true))
    }
    // Dependents: run when every dependency succeeded; cancelled when one cannot.
    for d in dependents.isEmpty ? [] : dependents.removeValue(forKey: n) ?? [] {
      guard let dt = tasks[d], dt.state == .queued, blocked.contains(d) else { continue }
      if state != .succeeded {
        finish(d, .cancelled, reason: "dependency_failed", detail: "\(TaskID.format(n)) ended \(state.rawValue)", now: now, into: &out)
      } else if dt.spec.dependsOn.allSatisfy({ self.state(of: $0) == .succeeded }) {
        blocked.remove(d)
        tasks[d]?.waitingReason = nil
        enqueue(d)
      }
    }
    finishedOrder.append(n)
    finishedStates[n] = state
    trimFinished()
  }

  /// Keeps the newest `keepFinished` terminal tasks in full; older ones only as number → state.
  mutating func trimFinished() {
    guard finishedOrder.count > keepFinished * 2 else { return }
    let drop = finishedOrder.count - keepFinished
    for n in finishedOrder[..<drop] { tasks[n] = nil }
    finishedOrder.removeFirst(drop)
  }

  /// Timers: retries that are due, tasks past their timeout, tasks that ignored a stop.
  mutating func tickTasks(now: Int64, into out: inout [Action]) {
    if !delayed.isEmpty {
      var keep: [Int] = []
      for n in delayed {
        guard let t = tasks[n], t.state == .queued else { continue }
        if t.notBeforeMs <= now { enqueue(n) } else { keep.append(n) }
      }
      delayed = keep
    }
    for w in workers where w.state == .busy {
      guard let n = w.task, var t = tasks[n] else { continue }
      if t.stopping == nil, let d = t.deadlineMs, now >= d {
        askToStop(&t, .timeout, detail: "ran longer than \(t.timeoutMs ?? 0) ms", now: now, into: &out)
        tasks[n] = t
      } else if let sd = t.stopDeadlineMs, now >= sd {
        // The worker did not report the stop in time: it is unhealthy.
        markUnhealthy(w.slot, reason: "stop_ignored", detail: "did not stop \(t.id) within the grace period", now: now, into: &out)
      }
    }
  }
}

/// The fields of a record that `taskDone` decides on.
private struct DoneFacts {
  let tokensUsed, reserved, attempt, maxAttempts: Int
  let stopping: StopCause?
  let timeoutMs, startedMs: Int64?
  let type: String
  init(_ t: TaskRecord) {
    (tokensUsed, reserved, attempt, maxAttempts) = (t.tokensUsed, t.reserved, t.attempt, t.maxAttempts)
    (stopping, timeoutMs, startedMs, type) = (t.stopping, t.timeoutMs, t.startedMs, t.type)
  }
}
