/// Re-adoption of the previous daemon's workers (SPEC §14), applied to the recovered state after
/// replay and before `settleAfterRecovery`, which then retries only tasks no adopted worker holds.
extension Scheduler {
  /// The log's in-flight task on each worker slot (assigned or running, by the worker that has it).
  public func inFlightBySlot() -> [Int: Readoption.Expected] {
    var out: [Int: Readoption.Expected] = [:]
    for (n, t) in tasks where t.state == .assigned || t.state == .running {
      if let w = t.worker { out[w] = Readoption.Expected(task: n, attempt: t.attempt, stopping: t.stopping != nil) }
    }
    return out
  }

  /// Applies one slot's decision. `pid` is the adopted worker's. Logs `worker.readopted`,
  /// `task.readopted` and, for a completion, the task's terminal event; the task's reservation is
  /// carried over (a running task keeps it; a completed one releases it once, here).
  public mutating func applyReadoption(
    slot w: Int, pid: Int32, _ decision: Readoption.Decision, now: Int64, into out: inout [Action]
  ) {
    ensureSlot(w)
    switch decision {
    case .kill(let reason, let detail):
      out.append(
        .log(Event("worker.unhealthy", worker: w, reason: reason, detail: detail + "; killed", fields: [("pid", .int(Int64(pid)))])))
    case .gone(let reason, let completed):
      guard let o = completed, let t = tasks[o.task], !t.state.isTerminal else { return }
      // The worker is gone but its spool proves the task finished: take the outcome.
      takeOver(o.task, on: w, taskPid: 0, startedMs: o.startedMs, now: now)
      logStart(o.task, wasAssigned: t.state == .assigned, on: w, pid: 0, into: &out)
      out.append(
        .log(
          Event(
            "task.readopted", task: o.task, worker: w, attempt: t.attempt, reason: reason,
            detail: "finished while no daemon ran; its outcome was in the worker's spool", fields: [("finished", .bool(true))])))
      workers[w - 1].retiring = false
      taskDone(w, o, now: now, endedMs: endedWhileAway(o, now: now), into: &out)
      // No process behind the slot: it is spawned afresh like any stopped slot.
      idle.removeAll { $0 == w }
      workers[w - 1].state = .stopped
      workers[w - 1].task = nil
      workers[w - 1].pid = 0
    case .adopt(let d):
      workers[w - 1].pid = pid
      workers[w - 1].spawnedMs = now
      workers[w - 1].readyMs = now
      workers[w - 1].lastSeenMs = now
      workers[w - 1].restarts = []
      out.append(.log(Event("worker.readopted", worker: w, reason: "daemon_restarted", fields: [("pid", .int(Int64(pid)))])))
      switch d {
      case .idle:
        workers[w - 1].state = .idle
        if w <= desiredWorkers { idle.append(w) } else { retire(w, now: now, into: &out) }
      case .running(let r):
        guard let n = r.task, let t = tasks[n] else { return }
        takeOver(n, on: w, taskPid: r.taskPid, startedMs: r.startedMs, now: now)
        logStart(n, wasAssigned: t.state == .assigned, on: w, pid: r.taskPid, into: &out)
        tasks[n]!.tokensUsed = max(t.tokensUsed, r.tokensUsed)
        if let p = r.progress { tasks[n]!.progress = p }
        var f: [(String, JSON)] = [("tokens_used", .int(Int64(tasks[n]!.tokensUsed)))]
        if r.taskPid > 0 { f.append(("pid", .int(Int64(r.taskPid)))) }
        let stop = tasks[n]!.stopping
        if let why = stop?.logReason { f.append(("stopping", .string(why))) }
        out.append(
          .log(
            Event(
              "task.readopted", task: n, worker: w, attempt: t.attempt, reason: "daemon_restarted",
              detail: stop == nil
                ? "still running; adopted by the new daemon" : "being stopped; adopted by the new daemon, which asks again",
              fields: f)))
        if stop != nil {
          // The old daemon asked for a stop (logged); the worker may not have read it. Asking
          // again is harmless: a worker already stopping the task ignores it.
          tasks[n]!.stopDeadlineMs = now + Int64(graceMs) + 5000
          out.append(.send(worker: w, .cancel(task: n, graceMs: graceMs)))
        }
      case .completed(let o):
        guard let t = tasks[o.task] else { return }
        takeOver(o.task, on: w, taskPid: 0, startedMs: o.startedMs, now: now)
        logStart(o.task, wasAssigned: t.state == .assigned, on: w, pid: 0, into: &out)
        out.append(
          .log(
            Event(
              "task.readopted", task: o.task, worker: w, attempt: t.attempt, reason: "daemon_restarted",
              detail: "finished while no daemon ran; outcome reported on adoption", fields: [("finished", .bool(true))])))
        taskDone(w, o, now: now, endedMs: endedWhileAway(o, now: now), into: &out)
      }
    }
  }

  /// When a task that ended while no daemon ran really ended (its worker's clock, kept between
  /// its start and now): its terminal event said the moment of the adoption, so a 20 s task
  /// adopted a minute later was recorded (show, hooks, estimates) as running 80 s.
  func endedWhileAway(_ o: TaskOutcome, now: Int64) -> Int64? {
    guard o.endedMs > 0 else { return nil }
    return min(now, max(tasks[o.task]?.startedMs ?? 0, o.endedMs))
  }

  /// Puts task `n` back on worker `w` as the previous daemon had it: running, its reservation
  /// counted again (recovery starts from none), its timeout counted from its real start.
  mutating func takeOver(_ n: Int, on w: Int, taskPid: Int32, startedMs: Int64, now: Int64) {
    guard var t = tasks[n] else { return }
    setState(n, .running)
    t.state = .running
    t.worker = w
    if taskPid > 0 { t.pid = taskPid }
    if t.startedMs == nil { t.startedMs = startedMs > 0 ? startedMs : now }
    t.reserved = t.budget
    tokensReserved += t.budget
    t.deadlineMs = t.timeoutMs.map { (t.startedMs ?? now) + $0 }
    tasks[n] = t
    workers[w - 1].state = .busy
    workers[w - 1].task = n
    workers[w - 1].retiring = w > desiredWorkers
  }

  /// A task the log had only assigned when the old daemon went (its worker's `started` never
  /// read) started all the same: its `task.started`, with the worker's start time, so that the
  /// log has one for every task that ran (it had `task.readopted` and an end, and no start).
  mutating func logStart(_ n: Int, wasAssigned: Bool, on w: Int, pid: Int32, into out: inout [Action]) {
    guard wasAssigned, let t = tasks[n] else { return }
    var fields: [(String, JSON)] = []
    if pid > 0 { fields.append(("pid", .int(Int64(pid)))) }
    if let started = t.startedMs { fields.append(("started_ms", .int(started))) }
    out.append(.log(Event("task.started", task: n, worker: w, attempt: t.attempt, reason: "readopted", fields: fields)))
  }

  /// Whether a live, re-adopted worker holds task `n` (`settleAfterRecovery` leaves it running).
  func heldByAdoptedWorker(_ n: Int) -> Bool {
    guard let w = tasks[n]?.worker, w >= 1, w <= workers.count else { return false }
    return workers[w - 1].task == n && workers[w - 1].pid > 0 && workers[w - 1].state == .busy
  }
}
