/// `cortex retry` (SPEC §15): a finished task submitted again as a new task with `retry_of`.
///
/// The scheduler holds the specs of the newest finished tasks only (`keepFinished`, and none
/// from before the daemon started); older ones are known by their compact record. For those the
/// daemon reads `tasks/<id>/spec.json` before it hands the request over (`retrySpecsNeeded`), so
/// the decision stays here and free of I/O. A spec read back holds `[redacted]` in place of each
/// secret value; the real values are kept only while a task may still run, so such a task is
/// refused, never run with `[redacted]` in place of a credential.
extension Scheduler {
  /// A spec the daemon read from a finished task's `spec.json`, or why it could not.
  public enum StoredSpec: Equatable, Sendable {
    case spec(TaskSpec)
    /// The file is missing, unreadable or not a valid spec: the reason, naming the file.
    case unreadable(String)
    /// The task has no directory (a synthetic task never has one; retention or `cortex clean`
    /// removes finished ones): the reason. `--all-failed` counts these instead of naming each.
    case absent(String)
  }

  /// What a retry request covers: the named tasks, then with `allFailed` every failed or
  /// timed-out task (held in full or known by its compact record, oldest first) that no task
  /// retries already and that is not named. Only the newest of each retry chain: a failure that
  /// was retried (its retry queued, running or failed in turn) is not taken again, or every
  /// `--all-failed` would run each old failure once more beside its retries.
  public func retryList(_ ids: [Int], allFailed: Bool) -> (named: [Int], swept: [Int]) {
    guard allFailed else { return (ids, []) }
    let named = Set(ids)
    var swept: [Int] = []
    for r in finishedStates.runs where r.state == .failed || r.state == .timedOut {
      for n in r.first...r.last where !retried.contains(n) && !named.contains(n) { swept.append(n) }
    }
    return (ids, swept)
  }

  /// The tasks of a retry request whose specs the daemon must read from `spec.json`: finished
  /// ones the scheduler knows only by their compact record.
  public func retrySpecsNeeded(_ ids: [Int], allFailed: Bool) -> [Int] {
    let (named, swept) = retryList(ids, allFailed: allFailed)
    return (named + swept).filter { tasks[$0] == nil && finishedStates[$0] != nil }
  }

  /// Each finished task is submitted again as a new task (`retry_of` names the old one), through
  /// the same admission as any submit; the old task is not changed. A named task that cannot be
  /// retried refuses the whole request; one that `allFailed` found is left out and named in
  /// the answer's `skipped` (it would otherwise block every later `--all-failed`).
  mutating func retryTasks(
    _ c: ClientID, _ ids: [Int], allFailed: Bool, stored: [Int: StoredSpec], now: Int64, into out: inout [Action]
  ) {
    let (named, swept) = retryList(ids, allFailed: allFailed)
    var batch = RetryBatch()
    for (i, n) in (named + swept).enumerated() {
      if let refusal = batch.add(n, named: i < named.count, Result { () throws(RetryRefusal) in try retrySpec(n, stored[n]) }) {
        out.append(.reply(c, Self.failure(refusal.message, code: refusal.code), durable: false))
        return
      }
    }
    if batch.specs.isEmpty {
      out.append(.reply(c, .object([("ok", .bool(true)), ("ids", .array([]))] + batch.answerFields), durable: false))
      return
    }
    var inner: [Action] = []
    submit(c, batch.specs, now: now, into: &inner)
    for a in inner {
      if case .reply(let client, let v, let durable) = a, client == c, v["ok"]?.bool == true, var o = v.object {
        o += batch.answerFields
        out.append(.reply(client, .object(o), durable: durable))
      } else {
        out.append(a)
      }
    }
  }

  /// The spec to submit for a retry of task `n`: its own, with `retry_of` set and what ties it
  /// to its first submission (`depends_on`, `idempotency_key`, `sla_deadline`) cleared.
  func retrySpec(_ n: Int, _ stored: StoredSpec?) throws(RetryRefusal) -> TaskSpec {
    let id = TaskID.format(n)
    let spec: TaskSpec
    if let t = tasks[n] {
      guard t.state.isTerminal else {
        throw RetryRefusal(
          message: "\(id) is \(t.state.rawValue); only a finished task can be retried (cortex cancel it first)", code: 1)
      }
      spec = t.spec
    } else if finishedStates[n] != nil {
      switch stored {
      case .spec(let s): spec = s
      case .unreadable(let why): throw RetryRefusal(message: "\(id): cannot be retried: \(why)", code: 65)
      case .absent(let why): throw RetryRefusal(message: "\(id): cannot be retried: \(why)", code: 65, absent: true)
      case nil: throw RetryRefusal(message: "\(id): cannot be retried: its spec.json was not read", code: 65)
      }
    } else {
      throw RetryRefusal(message: "id: " + TaskID.unknown(n, next: nextTaskNumber), code: 65)
    }
    // A spec read back from a redacted copy (spec.json, or the log after a restart) has lost its
    // secret values: the store keeps them only while a task may still run.
    return try spec.retry(of: n, secretsGone: "the daemon drops them when it restarts after the task ended")
  }

  /// After recovery from a snapshot written before `retried` was kept in it: the tasks that the
  /// daemon found retried in the `spec.json` files of tasks the scheduler does not hold.
  public mutating func restoreRetried(_ found: [Int]) {
    retried.formUnion(found)
    retriedComplete = true
  }

  /// Ascending numbers as ranges, "1-5,7,9-12" (the snapshot's form, read by `FinishedStates.ranges`).
  static func rangeText(_ sorted: [Int]) -> String {
    var out = ""
    var i = 0
    while i < sorted.count {
      var j = i
      while j + 1 < sorted.count, sorted[j + 1] == sorted[j] + 1 { j += 1 }
      if !out.isEmpty { out += "," }
      out += i == j ? "\(sorted[i])" : "\(sorted[i])-\(sorted[j])"
      i = j + 1
    }
    return out
  }
}

extension TaskSpec {
  /// Where this spec holds `[redacted]` in place of a value (`env.API_TOKEN`, `command[2]`, …):
  /// a spec read back from its redacted copy, whose secret values are gone. Empty for a spec
  /// with its real values.
  public var redactedPaths: [String] {
    let m = Redaction.marker
    var out: [String] = []
    if description?.contains(m) == true { out.append("description") }
    for (i, a) in (command ?? []).enumerated() where a.contains(m) { out.append("command[\(i)]") }
    if shell?.contains(m) == true { out.append("shell") }
    for (k, v) in env where v.contains(m) { out.append("env.\(k)") }
    for (k, v) in labels where v.contains(m) { out.append("labels.\(k)") }
    return out
  }
}
