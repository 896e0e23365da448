import CortexCore
import Posix

/// Benchmarks of issue 3: the pure scheduler's decision cost, cancel acknowledgement through a real
/// daemon, and budget accuracy over many tasks.
extension Bench {
  /// In process, no I/O: 20 idle workers, `queued` tasks across the four priorities, then each
  /// completion dispatches the next task. Times each `handle` call (one completion + one dispatch).
  static func decisionCost(queued: Int) -> [(String, JSON)] {
    var config = Config()
    config.workers = 20
    config.maxQueue = queued + 100
    let micros = timedDecisions(config, queued: queued) { _ in nil }
    return [("queued_at_start", .int(Int64(queued))), ("decisions", .int(Int64(micros.count)))]
      + quantiles("decision_us", micros)
  }

  /// The loop both decision benchmarks time: a pool of 20 ready workers, `queued + 20` tasks of
  /// random priority (and the group `group` picks) submitted at once, then one completion at a
  /// time, each `handle` (completion + next dispatch) timed, 1 ms of virtual time apart. When
  /// every worker is idle while tasks wait for a rate limit, time moves on in 10 ms ticks.
  static func timedDecisions(_ config: Config, queued: Int, group: (inout SplitMix64) -> String?) -> [Double] {
    var s = Scheduler(config: config)
    var out: [Action] = []
    s.start(now: 0, into: &out)
    for w in 1...20 {
      s.handle(.workerSpawned(w, pid: Int32(1000 + w)), now: 0, into: &out)
      s.handle(.worker(w, .ready(pid: Int32(1000 + w))), now: 0, into: &out)
    }
    var rng = SplitMix64(seed: 1)
    var specs: [TaskSpec] = []
    for _ in 0..<(queued + 20) {
      var t = TaskSpec()
      t.command = ["true"]
      t.priority = Priority(rawValue: Int(rng.below(4))) ?? .medium
      t.group = group(&rng)
      specs.append(t)
    }
    out.removeAll()
    s.handle(.submit(1, specs), now: 1, into: &out)
    var running: [Int: Int] = [:]  // worker → task
    func collect() {
      for a in out { if case .send(let w, .run(let n, _, _, _, _, _)) = a { running[w] = n } }
      out.removeAll(keepingCapacity: true)
    }
    collect()
    var micros: [Double] = []
    var now: Int64 = 2
    var idleTicks = 0
    while micros.count < queued {
      guard let (w, n) = running.first else {
        now += 10
        s.handle(.tick, now: now, into: &out)
        collect()
        idleTicks += 1
        if idleTicks > 1_000_000 { break }
        continue
      }
      running[w] = nil
      let done = TaskOutcome(task: n, exitCode: 0, signal: nil, tokensUsed: 0, startedMs: now, endedMs: now)
      let t0 = Clock.monotonicNs()
      s.handle(.worker(w, .done(done)), now: now, into: &out)
      micros.append(Double(Clock.monotonicNs() - t0) / 1000)
      collect()
      now += 1
    }
    return micros
  }

  /// Cancels a running `sleep 60` and times the answer, which comes once its group is gone.
  func cancelLatency(samples: Int) throws(CLIError) -> [(String, JSON)] {
    let client = try Client(ctx)
    var ms: [Double] = []
    for _ in 0..<samples {
      let a = try Client.check(
        try client.request(.object([("op", .string("submit")), ("tasks", .array([.object([("shell", .string("sleep 60"))])]))])))
      guard let id = a["ids"]?.array?.first else { throw CLIError(ExitCode.failure, "submit returned no id") }
      // Wait until it runs.
      let deadline = Clock.monotonicMs() + 10_000
      while Clock.monotonicMs() < deadline {
        let show = try Client.check(try client.request(.object([("op", .string("show")), ("id", id)])))
        if show["task"]?["state"]?.string == "running" { break }
        sleepMs(1)
      }
      let t0 = Clock.monotonicNs()
      _ = try Client.check(try client.request(.object([("op", .string("cancel")), ("ids", .array([id]))])))
      ms.append(Double(Clock.monotonicNs() - t0) / 1e6)
    }
    return [("cancel_samples", .int(Int64(samples)))] + Bench.quantiles("cancel_ms", ms)
  }

  /// `count` synthetic tasks with random token use (below their reservation) against a budget
  /// they fit in; compares `used` with the sum reported and checks every budget event.
  func budgetAccuracy(count: Int) throws(CLIError) -> [(String, JSON)] {
    let client = try Client(ctx)
    var rng = SplitMix64(seed: 11)
    var specs: [JSON] = []
    var reported: Int64 = 0
    for _ in 0..<count {
      let tokens = rng.below(1000)
      reported += tokens
      specs.append(
        .object([
          ("synthetic", .object([("duration_ms", .int(0)), ("tokens", .int(tokens))])), ("token_budget", .int(1000)),
        ]))
    }
    let before = try Client.check(try client.request(.object([("op", .string("budget"))])))["budget"]?["used"]?.int ?? 0
    let ack = try Client.check(try client.request(.object([("op", .string("submit")), ("tasks", .array(specs))])))
    _ = try Client.check(try client.request(.object([("op", .string("wait")), ("ids", ack["ids"] ?? .array([]))])))
    let b = try Client.check(try client.request(.object([("op", .string("budget"))])))["budget"] ?? .null
    let used = (b["used"]?.int ?? 0) - before
    // The invariant after every event, from the log: available never below zero.
    var events = 0
    var negative = 0
    let names = LogSegments.indexes((try? FileSystem.list(ctx.paths.events)) ?? [])
    for i in names {
      let bytes = ((try? FileSystem.read(ctx.paths.events + "/" + LogSegments.name(i))) ?? nil) ?? []
      _ = LogSegments.scan(bytes) { v in
        guard let t = v["type"]?.string, t.hasPrefix("budget.") else { return }
        events += 1
        if (v["available"]?.int ?? 0) < 0 { negative += 1 }
      }
    }
    let total = b["total"]?.int ?? 0
    let invariant = total == (b["reserved"]?.int ?? -1) + (b["used"]?.int ?? -1) + (b["available"]?.int ?? -1)
    return [
      ("budget_tasks", .int(Int64(count))), ("tokens_reported", .int(reported)), ("tokens_used", .int(used)),
      ("used_equals_reported", .bool(used == reported)), ("used_minus_reported_abs", .int(abs(used - reported))),
      ("budget_events", .int(Int64(events))),
      ("budget_events_negative", .int(Int64(negative))), ("final_invariant_holds", .bool(invariant)),
    ]
  }
}
