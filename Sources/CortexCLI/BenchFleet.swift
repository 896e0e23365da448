import CortexCore
import Posix

/// Benchmarks of issue 16, both in process on the pure scheduler (no daemon, no I/O):
/// - `decision-groups`: the cost of one completion + dispatch with 10,000 queued across 50 groups
///   that have parallel limits and (half of them) rate limits, beside today's single-queue case;
/// - `provider`: closed-loop synthetic agents against a simulated provider with a hard limit of
///   R starts per minute (a token bucket, one second of burst) and injected 429s, on virtual time,
///   with AIMD adaptation on and off.
extension Bench {
  /// Like `decisionCost`, with `groups` groups: each has `parallel` 2 and every other one a rate
  /// limit of 600 starts per minute, so at any moment many groups are full or rate limited and
  /// dispatch skips them. Virtual time advances 1 ms per decision.
  static func decisionCostGroups(queued: Int, groups: Int) -> [(String, JSON)] {
    var config = Config()
    config.workers = 20
    config.maxQueue = queued + 100
    config.groups = (0..<groups).map { g in
      ("g\(g)", GroupConfig(parallel: 2, rate: g % 2 == 0 ? RateConfig(startsPerMin: 600) : nil))
    }
    let micros = timedDecisions(config, queued: queued) { rng in "g\(rng.below(Int64(groups)))" }
    return [
      ("groups", .int(Int64(groups))), ("queued_at_start", .int(Int64(queued))), ("group_decisions", .int(Int64(micros.count))),
    ] + quantiles("group_decision_us", micros)
  }

  /// One provider simulation. `agents` closed-loop agents (each submits its next task when the
  /// last one ends) on `workers` workers, in one group whose rate ceiling is `ceilingPerMin`; the
  /// provider accepts `limitPerMin` starts a minute (a token bucket with one second of burst) and
  /// answers a start past it with a 429 and the time until its next token (`retry_after`); an
  /// accepted call fails with an injected 429 (no retry_after) at `injected`. Calls take `callMs`;
  /// a refusal comes back in 50 ms. Returns what was observed in the last `measureS` seconds.
  static func providerRun(
    adaptive: Bool, agents: Int, workers: Int, limitPerMin: Double, ceilingPerMin: Double, injected: Double, callMs: Int64,
    durationS: Int64, measureS: Int64, seed: UInt64, retryAfter: Bool = true
  ) -> [(String, JSON)] {
    var config = Config()
    config.workers = workers
    config.maxQueue = agents * 2
    config.maxQueueWaitS = 86_400
    config.groups = [("api", GroupConfig(rate: RateConfig(startsPerMin: ceilingPerMin, adaptive: adaptive)))]
    var s = Scheduler(config: config, seed: seed)
    var rng = SplitMix64(seed: seed &+ 77)
    var out: [Action] = []
    var now: Int64 = 1_000_000
    s.start(now: now, into: &out)
    for w in 1...workers {
      s.handle(.workerSpawned(w, pid: Int32(1000 + w)), now: now, into: &out)
      s.handle(.worker(w, .ready(pid: Int32(1000 + w))), now: now, into: &out)
    }
    out.removeAll()
    // The provider's bucket.
    let rate = limitPerMin / 60_000
    let burst = max(1, limitPerMin / 60)
    var tokens = burst
    var refilled = now
    // Completions due: (time, worker, outcome).
    var due: [(at: Int64, w: Int, o: TaskOutcome)] = []
    var submittedAt: [Int: Int64] = [:]
    var waits: [Double] = []
    let measureFrom = now + (durationS - measureS) * 1000
    var accepted = 0, refused = 0, injectedCount = 0, succeeded = 0, starts = 0
    var spec = TaskSpec()
    spec.synthetic = .init(durationMs: Int(callMs))
    spec.group = "api"
    var client: ClientID = 1

    func submit(_ k: Int) {
      for _ in 0..<k {
        s.handle(.submit(client, [spec]), now: now, into: &out)
        client += 1
      }
    }
    func absorb() {
      var i = 0
      while i < out.count {
        let a = out[i]
        i += 1
        switch a {
        case .log(let e):
          if e.type == "task.submitted", let n = e.task { submittedAt[n] = now }
          if TaskState.terminalEventTypes.contains(e.type) {
            // The agent submits its next task at once.
            s.handle(.submit(client, [spec]), now: now, into: &out)
            client += 1
          }
        case .send(let w, .run(let n, _, _, _, _, _)):
          let counted = now >= measureFrom
          if counted { starts += 1 }
          if now > refilled {
            tokens = min(burst, tokens + Double(now - refilled) * rate)
            refilled = now
          }
          var o = TaskOutcome(task: n, exitCode: 0, signal: nil, tokensUsed: 0, startedMs: now, endedMs: now)
          var at = now + callMs
          if tokens >= 1 {
            tokens -= 1
            if counted { accepted += 1 }
            if Double(rng.below(1_000_000)) / 1_000_000 < injected {
              o.exitCode = 1
              o.error = "429"
              if counted { injectedCount += 1 }
              at = now + 50
            } else {
              if counted {
                succeeded += 1
                waits.append(Double(now - (submittedAt[n] ?? now)))
              }
            }
          } else {
            o.exitCode = 1
            o.rateLimited = true
            o.retryAfterMs = retryAfter ? Int64(((1 - tokens) / rate).rounded(.up)) : nil
            if counted { refused += 1 }
            at = now + 50
          }
          due.append((at, w, o))
        default: break
        }
      }
      out.removeAll(keepingCapacity: true)
    }
    submit(agents)
    absorb()
    let end = now + durationS * 1000
    var nextBeat = now + 1000
    while now < end {
      var next = min(end, nextBeat)
      if let d = due.min(by: { $0.at < $1.at }) { next = min(next, d.at) }
      if let wake = s.nextWakeMs() { next = min(next, max(now + 1, wake)) }
      now = max(now, next)
      var ready: [(at: Int64, w: Int, o: TaskOutcome)] = []
      due.removeAll { d in
        if d.at <= now {
          ready.append(d)
          return true
        }
        return false
      }
      for d in ready.sorted(by: { $0.at < $1.at }) {
        var o = d.o
        o.endedMs = now
        s.handle(.worker(d.w, .done(o)), now: now, into: &out)
        absorb()
      }
      if now >= nextBeat {
        for w in 1...workers { s.handle(.worker(w, .heartbeat), now: now, into: &out) }
        nextBeat = now + 1000
      }
      s.handle(.tick, now: now, into: &out)
      absorb()
    }
    let minutes = Double(measureS) / 60
    let allowed = s.fleet.groups.first { $0.name == "api" }?.limiter?.allowedPerMin ?? 0
    func r3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
    return [
      ("accepted_per_min", .double(r3(Double(accepted) / minutes))),
      ("accepted_fraction_of_limit", .double(r3(Double(accepted) / minutes / limitPerMin))),
      ("succeeded_per_min", .double(r3(Double(succeeded) / minutes))),
      ("starts", .int(Int64(starts))), ("refused_by_limit", .int(Int64(refused))),
      ("refused_fraction_of_starts", .double(r3(Double(refused) / Double(max(1, starts))))),
      ("injected_429", .int(Int64(injectedCount))),
      ("wasted_fraction_of_starts", .double(r3(Double(refused + injectedCount) / Double(max(1, starts))))),
      ("allowed_per_min_at_end", .double(r3(allowed))),
    ] + quantiles("queue_wait_ms", waits)
  }
}

extension Bench {
  /// `decision-groups`: today's single-queue decision and the 50-group one, in the same process.
  /// `provider`: 200 agents on 50 workers against a provider limit of 600 starts/min with 15 %
  /// injected 429s; the group's ceiling is 1,200/min (twice the real limit, as when it is not
  /// known), with adaptation on and off, and 600/min (known) with adaptation on.
  static func fleetProfile(_ profile: String, tasks: Int?, agents: Int, duration: Int, seed: UInt64 = 1) -> JSON {
    let agents = agents == 100 ? 200 : agents
    if profile == "decision-groups" {
      let q = tasks ?? 10_000
      return .object([("profile", .string(profile))] + decisionCost(queued: q) + decisionCostGroups(queued: q, groups: 50))
    }
    var o: [(String, JSON)] = [
      ("profile", .string(profile)), ("agents", .int(Int64(agents))), ("workers", .int(50)), ("limit_per_min", .int(600)),
      ("injected_429_rate", .double(0.15)), ("call_ms", .int(2000)), ("virtual_duration_s", .int(Int64(max(duration, 120)))),
      ("measured_last_s", .int(Int64(max(duration, 120) - 60))),
    ]
    let runs: [(String, Bool, Double, Bool)] = [
      ("adaptive", true, 1200, true), ("fixed", false, 1200, true), ("known_limit", true, 600, true),
      ("adaptive_no_retry_after", true, 1200, false), ("fixed_no_retry_after", false, 1200, false),
    ]
    for (name, adaptive, ceiling, retryAfter) in runs {
      let r = providerRun(
        adaptive: adaptive, agents: agents, workers: 50, limitPerMin: 600, ceilingPerMin: ceiling, injected: 0.15, callMs: 2000,
        durationS: Int64(max(duration, 120)), measureS: Int64(max(duration, 120) - 60), seed: seed, retryAfter: retryAfter)
      o += r.map { ("\(name)_\($0.0)", $0.1) }
    }
    return .object(o)
  }
}
