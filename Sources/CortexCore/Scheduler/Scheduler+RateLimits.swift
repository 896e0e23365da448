/// Rate-limit outcomes (SPEC §15): a task refused by its provider shrinks the allowed start rate
/// of its group and worker type (AIMD, see `RateLimiter`) and, where a rate limit is configured,
/// is retried after the provider's `retry_after_s` without counting against `max_attempts`.
/// Successes let the rate grow back. Every change is logged (`rate.decreased`, `rate.increased`).
extension Scheduler {
  /// The most rate-limited retries of one task that do not count against `max_attempts`.
  static let maxRateLimitedRetries = 100

  /// A synthetic 429, a report line `{"rate_limited": true}`, or the exit code that the group's
  /// or type's `rate` names.
  func isRateLimited(_ t: TaskRecord, _ o: TaskOutcome) -> Bool {
    if o.rateLimited || o.error == "429" { return true }
    guard let code = o.exitCode, o.signal == nil else { return false }
    if t.group >= 0, fleet.groups[t.group].limiter?.config.rateLimitedExitCode == code { return true }
    if let name = t.spec.type, fleet.typeLimiters[name]?.config.rateLimitedExitCode == code { return true }
    return false
  }

  /// Adapts the limiters; retries the task when one governs it. Returns false when the task should
  /// take the ordinary failure path (no limiter, or too many rate-limited retries).
  mutating func retryRateLimited(_ n: Int, _ o: TaskOutcome, now: Int64, into out: inout [Action]) -> Bool {
    guard let t = tasks[n] else { return false }
    let g = groupOf(n)
    let started = t.startedMs ?? t.assignedMs ?? now
    var governed = false
    if fleet.groups[g].limiter != nil {
      governed = true
      if let (from, to) = fleet.groups[g].limiter!.rateLimited(now: now, startedMs: started, retryAfterMs: o.retryAfterMs) {
        logRate(
          "rate.decreased", scope: ("group", fleet.groups[g].name), from, to, task: n, reason: "rate_limited",
          learned: fleet.groups[g].limiter!, into: &out)
      }
    }
    if let name = t.spec.type, fleet.typeLimiters[name] != nil {
      governed = true
      if let (from, to) = fleet.typeLimiters[name]!.rateLimited(now: now, startedMs: started, retryAfterMs: o.retryAfterMs) {
        logRate(
          "rate.decreased", scope: ("worker_type", name), from, to, task: n, reason: "rate_limited",
          learned: fleet.typeLimiters[name]!, into: &out)
      }
    }
    // A shorter hold or a changed rate: the group is looked at again (Scheduler+Groups).
    wakeGroup(g)
    guard governed, t.rateLimitedRetries < Self.maxRateLimitedRetries else { return false }
    let delay = o.retryAfterMs ?? backoffMs(attempt: t.rateLimitedRetries + 1)
    // A provider's refusal does not use up the task's own attempts.
    tasks[n]!.rateLimitedRetries += 1
    tasks[n]!.maxAttempts = max(t.maxAttempts, t.attempt + 1)
    requeue(n, after: delay, now: now)
    let said = o.retryAfterMs.map { "the provider asked to retry after \($0) ms" } ?? "no retry_after given; backing off \(delay) ms"
    out.append(
      .log(
        Event(
          "task.retrying", task: n, attempt: t.attempt + 1, reason: "rate_limited",
          detail: "refused by its provider's rate limit; \(said) (not counted against max_attempts)",
          fields: [
            ("delay_ms", .int(delay)), ("not_before", .string(Timestamp.rfc3339(ms: now + delay))),
            ("tokens_used", .int(Int64(t.tokensUsed))), ("attempt_counted", .bool(false)),
            ("group", .string(fleet.groups[g].name)),
          ])))
    return true
  }

  /// A task of a rate-limited group or type succeeded: the allowed rate climbs back (see `RateLimiter`).
  mutating func rateSucceeded(_ n: Int, now: Int64, into out: inout [Action]) {
    guard let (started, type) = update(n, { t in (t.startedMs ?? t.assignedMs ?? now, t.spec.type) }) else { return }
    let g = groupOf(n)
    if fleet.groups[g].limiter != nil, let (from, to) = fleet.groups[g].limiter!.succeeded(now: now, startedMs: started) {
      logRate(
        "rate.increased", scope: ("group", fleet.groups[g].name), from, to, task: n, reason: "succeeded",
        learned: fleet.groups[g].limiter!, into: &out)
    }
    // A higher allowed rate may refill its bucket sooner than the group was parked for.
    if fleet.groups[g].limiter != nil { wakeGroup(g) }
    if let name = type, fleet.typeLimiters[name] != nil,
      let (from, to) = fleet.typeLimiters[name]!.succeeded(now: now, startedMs: started)
    {
      logRate(
        "rate.increased", scope: ("worker_type", name), from, to, task: n, reason: "succeeded", learned: fleet.typeLimiters[name]!,
        into: &out)
    }
  }

  /// Logs a change of the allowed rate with what a restart needs to go on from it (replayed by
  /// `replayRate`): where refusals began after a decrease, how far the climb is after an increase.
  func logRate(
    _ type: String, scope: (String, String), _ from: Double, _ to: Double, task n: Int, reason: String,
    learned l: RateLimiter, into out: inout [Action]
  ) {
    func r(_ v: Double) -> Double { (v * 100).rounded() / 100 }
    var fields: [(String, JSON)] = [(scope.0, .string(scope.1)), ("from_per_min", .double(r(from))), ("to_per_min", .double(r(to)))]
    if let b = l.refusalsBeganPerMin { fields.append(("refusals_began_per_min", .double(r(b)))) }
    if type == "rate.increased" { fields.append(("climbed_ms", .int(l.climbedMs))) }
    out.append(
      .log(
        Event(
          type, task: n, reason: reason,
          detail: "\(scope.0) \(scope.1): starts per minute \(Numbers.text(r(from))) → \(Numbers.text(r(to)))",
          fields: fields)))
  }

  /// A `rate.decreased` or `rate.increased` event after the snapshot, put back into its limiter
  /// (if the config still has one for that group or worker type).
  mutating func replayRate(_ type: String, _ e: JSON, atMs: Int64) {
    func apply(_ l: inout RateLimiter) {
      if type == "rate.decreased" { l.replayDecrease(e, atMs: atMs) } else { l.replayIncrease(e, atMs: atMs) }
    }
    if let name = e["group"]?.string {
      let g = groupIndex(name)
      if fleet.groups[g].limiter != nil { apply(&fleet.groups[g].limiter!) }
    } else if let name = e["worker_type"]?.string, fleet.typeLimiters[name] != nil {
      apply(&fleet.typeLimiters[name]!)
    }
  }

  /// The learned rates of every limiter that learned something, for `task-queue.json`.
  func learnedRatesJSON(now: Int64) -> JSON {
    var rows: [JSON] = []
    for g in fleet.groups {
      guard let l = g.limiter?.learnedJSON(now: now), case .object(let f) = l else { continue }
      rows.append(.object([("group", .string(g.name))] + f))
    }
    for name in fleet.typeLimiters.keys.sorted() {
      guard let l = fleet.typeLimiters[name]?.learnedJSON(now: now), case .object(let f) = l else { continue }
      rows.append(.object([("worker_type", .string(name))] + f))
    }
    return .array(rows)
  }

  /// Puts back the learned rates of `task-queue.json` into the limiters the config has now.
  mutating func restoreLearnedRates(_ v: JSON?, now: Int64) {
    for row in v?.array ?? [] {
      if let name = row["group"]?.string {
        let g = groupIndex(name)
        fleet.groups[g].limiter?.restoreLearned(row, now: now)
      } else if let name = row["worker_type"]?.string {
        fleet.typeLimiters[name]?.restoreLearned(row, now: now)
      }
    }
  }
}
