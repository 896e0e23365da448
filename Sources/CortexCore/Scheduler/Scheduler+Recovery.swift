/// Recovery: rebuild the state from a snapshot (optional) and the events after it, then settle
/// what was in flight. A function of its inputs, tested on its own.
extension Scheduler {
  static let requeueReasons: Set<String> = ["worker_exited", "daemon_restarted", "daemon_stopping"]

  public struct RecoveryError: Error, CustomStringConvertible {
    public let description: String
  }

  /// Loads `task-queue.json`; returns its `seq`.
  public mutating func restore(snapshot v: JSON) throws(RecoveryError) -> UInt64 {
    guard let seq = v["seq"]?.int, let next = v["next_task"]?.int, let list = v["tasks"]?.array else {
      throw RecoveryError(description: "task-queue.json lacks seq, next_task or tasks")
    }
    nextTaskNumber = Int(next)
    tokensUsed = Int(v["tokens_used"]?.int ?? 0)
    for (k, e) in v["estimates"]?.object ?? [] {
      var est = Estimate()
      est.count = Int(e["count"]?.int ?? 0)
      est.ewmaDurationMs = e["ewma_duration_ms"]?.double ?? 0
      est.ewmaTokens = e["ewma_tokens"]?.double ?? 0
      estimates[k] = est
    }
    for (state, nums) in v["finished"]?.object ?? [] {
      guard let st = TaskState(rawValue: state) else { continue }
      guard let ranges = FinishedStates.ranges(nums) else {
        throw RecoveryError(description: "task-queue.json: finished.\(state) is not a list of task-number ranges")
      }
      for r in ranges {
        finishedStates.set(r, st)
        counts[st, default: 0] += r.count
      }
    }
    if let v = v["retried"] {
      guard let ranges = FinishedStates.ranges(v) else {
        throw RecoveryError(description: "task-queue.json: retried is not a list of task-number ranges")
      }
      for r in ranges { retried.formUnion(r) }
    } else {
      retriedComplete = false
    }
    tasks.reserveCapacity(tasks.count + list.count)
    for t in list {
      guard let id = t["id"]?.string, let n = TaskID.parse(id), let specV = t["spec"],
        let stName = t["state"]?.string, let st = TaskState(rawValue: stName)
      else { throw RecoveryError(description: "task-queue.json has a task without id, state or spec") }
      let spec: TaskSpec
      do { spec = try TaskSpec.decode(specV) } catch {
        throw RecoveryError(description: "task-queue.json: \(id): \(error)")
      }
      var rec = TaskRecord(
        number: n, spec: spec, specJSON: specV.encodedBytes(), maxAttempts: Int(t["max_attempts"]?.int ?? 1),
        budget: Int(t["token_budget"]?.int ?? 0), timeoutMs: t["timeout_ms"]?.int, submittedMs: t["submitted_ms"]?.int ?? 0)
      rec.state = st
      rec.attempt = Int(t["attempt"]?.int ?? 1)
      rec.workerKills = Int(t["worker_kills"]?.int ?? 0)
      rec.notBeforeMs = t["not_before_ms"]?.int ?? 0
      rec.worker = t["worker_id"]?.string.flatMap(WorkerID.parse)
      rec.pid = t["pid"]?.int.map { Int32(truncatingIfNeeded: $0) }
      rec.assignedMs = t["assigned_ms"]?.int
      rec.startedMs = t["started_ms"]?.int
      rec.stopping = t["stopping"]?.string.flatMap(StopCause.init(logReason:))
      tasks[n] = rec
      counts[st, default: 0] += 1
      if let k = spec.idempotencyKey { idempotency.remember(k, task: n) }
      if let old = spec.retryOf { retried.insert(old) }
    }
    // Keys of tasks that finished before this snapshot, with their end times (a snapshot written
    // before it kept them has none: those keys stay forgotten, as they were then).
    let writtenMs = v["written"]?.string.flatMap(Timestamp.parse) ?? 0
    try idempotency.restore(v["idempotency"], writtenMs: writtenMs) { tasks[$0].map { !$0.state.isTerminal } ?? false }
    restoreFleet(v["fleet"], writtenMs: writtenMs)
    return UInt64(seq)
  }

  /// Task numbers below `n` were given out (the hot state saw them) even if the log lost their
  /// events: they are never given out again (SPEC §3: ids are never reused).
  public mutating func neverReuse(taskNumbersBelow n: Int) { nextTaskNumber = max(nextTaskNumber, n) }

  /// Applies one logged event (after the snapshot's seq) to the state. Unknown types are ignored.
  public mutating func replay(_ e: JSON) {
    guard let type = e["type"]?.string else { return }
    let n = e["task_id"]?.string.flatMap(TaskID.parse)
    let tsMs = e["ts"]?.string.flatMap(Timestamp.parse) ?? 0
    switch type {
    case "task.submitted":
      guard let n, tasks[n] == nil, finishedStates[n] == nil, let specV = e["spec"],
        let spec = try? TaskSpec.decode(specV)
      else { return }
      var rec = TaskRecord(
        number: n, spec: spec, specJSON: specV.encodedBytes(), maxAttempts: Int(e["max_attempts"]?.int ?? 1),
        budget: Int(e["token_budget"]?.int ?? 0), timeoutMs: e["timeout_ms"]?.int, submittedMs: tsMs)
      rec.state = .queued
      tasks[n] = rec
      counts[.queued, default: 0] += 1
      nextTaskNumber = max(nextTaskNumber, n + 1)
      if let k = spec.idempotencyKey { idempotency.remember(k, task: n) }
      if let old = spec.retryOf { retried.insert(old) }
    case "task.claimed":
      guard let n else { return }
      replayClaim(e, number: n, tsMs: tsMs)
    case "task.assigned":
      guard let n, tasks[n] != nil else { return }
      setState(n, .assigned)
      tasks[n]!.attempt = Int(e["attempt"]?.int ?? Int64(tasks[n]!.attempt))
      tasks[n]!.worker = e["worker_id"]?.string.flatMap(WorkerID.parse)
      tasks[n]!.assignedMs = tsMs
    case "task.started":
      guard let n, tasks[n] != nil else { return }
      setState(n, .running)
      // Logged at a re-adoption, it carries the worker's own start time.
      tasks[n]!.startedMs = e["started_ms"]?.int ?? tsMs
      if let p = e["pid"]?.int { tasks[n]!.pid = Int32(truncatingIfNeeded: p) }
    case "task.retrying":
      guard let n, tasks[n] != nil else { return }
      setState(n, .queued)
      tasks[n]!.attempt = Int(e["attempt"]?.int ?? Int64(tasks[n]!.attempt + 1))
      let reason = e["reason"]?.string ?? ""
      // Requeues by Cortex itself do not count against max_attempts (see `requeue`).
      if Self.requeueReasons.contains(reason) || e["attempt_counted"]?.bool == false {
        tasks[n]!.maxAttempts = max(tasks[n]!.maxAttempts, tasks[n]!.attempt)
      }
      if reason == "worker_exited" { tasks[n]!.workerKills += 1 }
      tasks[n]!.worker = nil
      tasks[n]!.stopping = nil
      tasks[n]!.notBeforeMs = tsMs + (e["delay_ms"]?.int ?? 0)
    case "task.succeeded", "task.failed", "task.cancelled", "task.timed_out", "task.rejected":
      guard let n, tasks[n] != nil, let st = TaskState(rawValue: String(type.dropFirst(5))) else { return }
      setState(n, st)
      // Logged at a re-adoption of a task that ended while no daemon ran, it carries the real end.
      tasks[n]!.endedMs = e["ended_ms"]?.int ?? tsMs
      tasks[n]!.reason = e["reason"]?.string
      tasks[n]!.detail = e["detail"]?.string
      tasks[n]!.exitCode = e["exit_code"]?.int.map { Int32(truncatingIfNeeded: $0) }
      tasks[n]!.signal = e["signal"]?.int.map { Int32(truncatingIfNeeded: $0) }
      tasks[n]!.tokensUsed = Int(e["tokens_used"]?.int ?? 0)
      finishedOrder.append(n)
      finishedStates[n] = st
      if let k = tasks[n]!.spec.idempotencyKey { idempotency.ended(k, task: n, at: tsMs) }
      if e["reason"]?.string == "returned_to_cluster" { forgetReturned(n) }
    case "idempotency.forgotten": replayForgottenKeys(e)
    case "task.stopping":
      // Cortex asked the worker to stop this attempt: how it ends is decided by why (readoption).
      guard let n, let t = tasks[n], !t.state.isTerminal, let cause = StopCause(logReason: e["reason"]?.string) else { return }
      tasks[n]!.stopping = cause
    case "budget.released":
      tokensUsed += Int(e["used"]?.int ?? 0)
    default: replayFleet(type, e, task: n)
    }
  }

  /// After replay, before `settleAfterRecovery`: puts the secret store's values back into the
  /// specs of tasks that may still run. A task whose spec holds redacted values the store does not
  /// have (the store was lost, or the log predates it) is failed with `secret_unavailable` rather
  /// than run with `[redacted]` in place of a credential.
  public mutating func restoreSecrets(_ store: [Int: SpecSecrets], now: Int64, into out: inout [Action]) {
    let marker = Array(Redaction.marker.utf8)
    for n in tasks.keys.sorted() {
      guard let t = tasks[n], !t.state.isTerminal else { continue }
      var missing: [String] = []
      if let secrets = store[n] {
        var spec = t.spec
        missing = spec.restore(secrets)
        tasks[n]!.spec = spec
      } else if ByteSearch.contains(marker, in: t.specJSON) {
        missing = ["a redacted value"]
      }
      if !missing.isEmpty {
        finish(
          n, .failed, reason: "secret_unavailable",
          detail: "its secret values (\(missing.joined(separator: ", "))) are not in the secret store; submit it again",
          now: now, into: &out)
      }
    }
  }

  /// After replay: tasks that were handed to workers of the previous daemon go back to the queue
  /// (recorded); queued tasks are queued or blocked again. Returns the events to log.
  public mutating func settleAfterRecovery(now: Int64, into out: inout [Action]) -> (requeued: Int, queued: Int) {
    var requeued = 0
    var queued = 0
    for n in tasks.keys.sorted() {
      guard let t = tasks[n] else { continue }
      switch t.state {
      case .assigned, .running:
        if heldByAdoptedWorker(n) { continue }  // re-adopted: it runs on (Scheduler+Readopt)
        if let pg = t.pid { out.append(.killGroup(pgid: pg, hard: true)) }
        tasks[n]!.reserved = 0
        tasks[n]!.pid = nil
        if let cause = t.stopping, let end = cause.endState {
          // The log asked this attempt to stop (cancel, timeout, budget): it ends as asked.
          finish(
            n, end, reason: cause.logReason,
            detail: "it was being stopped (\(cause.logReason ?? "")) when the daemon stopped, and its worker is gone", now: now,
            into: &out)
          continue
        }
        requeue(n, reason: "daemon_restarted", detail: "was \(t.state.rawValue) when the daemon stopped", now: now, into: &out)
        requeued += 1
      case .queued:
        queued += 1
        let unmet = t.spec.dependsOn.filter { state(of: $0) != .succeeded }
        if unmet.contains(where: { state(of: $0)?.isTerminal == true }) {
          finish(n, .cancelled, reason: "dependency_failed", detail: "a dependency ended without success", now: now, into: &out)
        } else if !unmet.isEmpty {
          blocked.insert(n)
          for d in unmet { dependents[d, default: []].append(n) }
        } else if t.notBeforeMs > now {
          delayed.append(n)
        } else {
          enqueue(n)
        }
      default: break
      }
    }
    // Only re-adopted tasks hold a reservation now; everything else was released by the requeue.
    tokensReserved = tasks.values.reduce(0) { $0 + (heldByAdoptedWorker($1.number) ? $1.reserved : 0) }
    trimFinished()
    return (requeued, queued)
  }
}
