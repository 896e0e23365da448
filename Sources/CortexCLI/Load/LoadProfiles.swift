import CortexCore
import Posix

/// The load profiles of `cortex bench`: smoke, ramp, fixed, soak, saturation, chaos. Each drives a
/// real daemon with synthetic agents and writes evidence (summary, CSV, SVG) under `--out`.
enum LoadProfiles {
  static let names = ["smoke", "ramp", "fixed", "soak", "saturation", "chaos"]

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let usage = BenchCommand.usage
    var o = LoadOptions()
    o.workers = try args.intOption("--workers", min: 1, max: 1024) ?? 20
    if let l = try args.option("--latency") { o.latency = try LoadOptions.Latency.parse(l) }
    o.tokens = try args.intOption("--tokens", min: 0, max: 1_000_000) ?? 100
    if let e = try args.option("--error-rate") {
      guard let r = Double(e), r >= 0, r <= 1 else { throw CLIError.usage("--error-rate must be from 0 to 1, not \(quoted(e))", usage) }
      o.errorRate = r
    }
    if let e = try args.option("--error-budget-rate") {
      guard let r = Double(e), r >= 0, r <= 1 else {
        throw CLIError.usage("--error-budget-rate must be from 0 to 1, not \(quoted(e))", usage)
      }
      o.errorBudgetRate = r
    }
    if args.flag("--no-retries") { o.maxAttempts = 1 }
    if let k = try args.option("--kind") {
      guard k == "synthetic" || k == "exec" else { throw CLIError.usage("--kind must be synthetic or exec, not \(quoted(k))", usage) }
      o.kind = k
    }
    let agentsText = try args.option("--agents")
    let rateText = try args.option("--rate")
    func duration(_ name: String) throws(CLIError) -> Int64? {
      guard let t = try args.option(name) else { return nil }
      guard let ms = DurationText.parseMs(t), ms > 0 else {
        throw CLIError.usage("\(name): \(quoted(t)) is not a duration like 30s or 5m", usage)
      }
      return ms
    }
    let durationMs = try duration("--duration")
    let stepMs = try duration("--step")
    let out = try args.option("--out") ?? "docs/bench"
    let words = try args.positionals()
    guard let profile = words.first, names.contains(profile), words.count == 1 else {
      throw CLIError.usage("give one profile", usage)
    }

    var phases: [LoadEngine.Phase] = []
    var chaos: LoadEngine.Chaos? = nil
    var saturation = false
    switch profile {
    case "smoke":
      let n = try LoadOptions.agentSteps(agentsText ?? "8").last!
      if agentsText == nil && o.latency == .fixed(50) { o.latency = .fixed(10) }
      phases = [LoadEngine.Phase(shape: .agents(n), durationMs: durationMs ?? 3000, label: "\(n) agents")]
    case "ramp":
      for n in try LoadOptions.agentSteps(agentsText ?? "8..1000") {
        phases.append(LoadEngine.Phase(shape: .agents(n), durationMs: stepMs ?? 10_000, label: "\(n) agents"))
      }
    case "fixed", "soak", "chaos":
      let d = durationMs ?? (profile == "soak" ? 3_600_000 : 60_000)
      if let rateText {
        // Open loop: a fixed arrival rate instead of a fixed number of agents.
        let r = try LoadOptions.rate(rateText)
        phases = [LoadEngine.Phase(shape: .rate(r), durationMs: d, label: "\(Int(r))/s")]
      } else {
        let n = try LoadOptions.agentSteps(agentsText ?? (profile == "soak" ? "50" : "100")).last!
        phases = [LoadEngine.Phase(shape: .agents(n), durationMs: d, label: "\(n) agents")]
      }
      if profile == "soak" { o.sampleMs = 10_000 }
      if profile == "chaos" { chaos = LoadEngine.Chaos(workerKillEveryMs: 2000, daemonKillEveryMs: 15_000) }
    default:
      // Saturation: open loop, the rate rising by half each step until the system falls behind.
      saturation = true
      var r = try rateText.map(LoadOptions.rate) ?? 100
      for _ in 0..<14 {
        phases.append(LoadEngine.Phase(shape: .rate(r), durationMs: stepMs ?? 8000, label: "\(Int(r))/s"))
        r *= 1.5
      }
    }
    if rateText != nil && (profile == "smoke" || profile == "ramp") {
      throw CLIError.usage("--rate is for fixed, soak, chaos and saturation; \(profile) runs agents", usage)
    }

    let bench = try Bench(ctx, workers: o.workers)
    defer { bench.close() }
    let engine = try LoadEngine(bench: bench, options: o)
    let stamp = Timestamp.rfc3339(ms: Clock.wallMs()).filter { $0.isNumber }.prefix(14)
    let runID = "\(profile)-\(stamp)"
    ctx.err("cortex bench \(profile): \(phases.count) step(s) on \(o.workers) workers, daemon pid \(bench.pid), run \(runID)\n")
    var extra: [(String, JSON)] = []
    if saturation {
      extra.append(("knee", runSaturation(engine, phases)))
    } else {
      engine.run(phases, chaos: chaos)
    }
    if let chaos {
      extra.append(
        (
          "chaos",
          .object([
            ("worker_kill_every_ms", .int(chaos.workerKillEveryMs)), ("daemon_kill_every_ms", .int(chaos.daemonKillEveryMs)),
            ("events", .array(engine.chaosEvents.map { .string($0) })),
          ])
        ))
    }
    let facts = Evidence.readLog(bench.ctx.paths)
    let budget = (try? Client(bench.ctx)).flatMap { try? $0.request(.object([("op", .string("budget"))])) }?["budget"] ?? .null
    let binding = Evidence.binding(bench.ctx.paths, executable: ctx.executable)
    let summary = Evidence.summary(
      runID: runID, profile: profile, engine: engine, facts: facts, budget: budget, options: o, extra: extra, binding: binding)
    let files = try Evidence.write(
      runID: runID, outDir: FileSystem.absolute(out), summary: summary, csv: engine.csv,
      title: "cortex bench \(profile) — \(o.workers) workers")
    let tasks = summary["tasks"] ?? .null
    let lat = summary["latency_ms"] ?? .null
    func q(_ k: String, _ p: String) -> String { lat[k]?[p]?.double.map { String($0) } ?? "-" }
    ctx.err(
      "\n"
        + table(
          ["METRIC", "OBSERVED"],
          [
            [
              "accepted / completed / failed / lost",
              "\(tasks["accepted"]?.int ?? 0) / \(tasks["completed"]?.int ?? 0) / \(tasks["failed"]?.int ?? 0) / \(tasks["lost"]?.int ?? 0)",
            ],
            ["completion %", String(summary["completion_pct"]?.double ?? 0)],
            ["submit ack p50 / p99 ms", "\(q("submit_ack", "p50")) / \(q("submit_ack", "p99"))"],
            ["dispatch p95 ms", q("dispatch", "p95")],
            ["end to end p50 / p99 ms", "\(q("end_to_end", "p50")) / \(q("end_to_end", "p99"))"],
            ["throughput mean /s", String(summary["throughput_per_s"]?["mean"]?.double ?? 0)],
            ["max concurrent", String(summary["max_concurrent_observed"]?.int ?? 0)],
          ]) + files.map { "wrote \($0)\n" }.joined())
    ctx.out(files[0] + "\n")
    return 0
  }

  /// Runs rising rates until completions fall below 90 % of the offered rate, or the p99 stays
  /// above three times the first step's (and above 50 ms) for two steps in a row (one noisy step is
  /// not a knee); then up to two more steps to show the shape past the knee.
  static func runSaturation(_ engine: LoadEngine, _ phases: [LoadEngine.Phase]) -> JSON {
    var baseP99: Double? = nil
    var knee: (rate: Double, reason: String)? = nil
    var past: [JSON] = []
    var steps: [JSON] = []
    var lastGood: Double? = nil
    var goodBeforeStreak: Double? = nil
    var streak: [JSON] = []
    var extraSteps = 0
    for p in phases {
      let before = engine.completed + engine.failed
      let e2eBefore = engine.e2eMs.count
      engine.run([p], drainMs: 0)
      guard case .rate(let r) = p.shape else { continue }
      let done = engine.completed + engine.failed - before
      let got = Double(done) / (Double(p.durationMs) / 1000)
      let lats = engine.e2eMs[e2eBefore...].sorted()
      let p99 = lats.isEmpty ? 0 : lats[min(lats.count - 1, Int(Double(lats.count) * 0.99))]
      if baseP99 == nil { baseP99 = max(p99, 1) }
      let step = JSON.object([
        ("offered_per_s", .double(Evidence.r3(r))), ("completed_per_s", .double(Evidence.r3(got))),
        ("refused_so_far", .int(Int64(engine.refused))), ("not_sent_so_far", .int(Int64(engine.unsent))),
        ("e2e_p99_ms", .double(Evidence.r3(p99))), ("in_flight_at_end", .int(Int64(engine.inFlight))),
      ])
      steps.append(step)
      if knee != nil {
        past.append(step)
        extraSteps += 1
        if extraSteps >= 2 { break }
        continue
      }
      if got < 0.9 * r {
        knee = (lastGood ?? r, "completions fell to \(Int(got))/s at an offered \(Int(r))/s")
        past = streak + [step]
      } else if let b = baseP99, p99 > 3 * b && p99 > 50 {
        if streak.isEmpty { goodBeforeStreak = lastGood }
        streak.append(step)
        if streak.count >= 2 {
          knee = (
            goodBeforeStreak ?? r,
            "p99 stayed above \(Int(3 * b)) ms from \(Int(streak[0]["offered_per_s"]?.double ?? r))/s (first step: \(Int(b)) ms)"
          )
          past = streak
        }
      } else {
        streak = []
        lastGood = r
      }
    }
    engine.run([], drainMs: 60_000)
    return .object([
      ("rate_per_s", knee.map { .double(Evidence.r3($0.rate)) } ?? .null),
      ("reason", .string(knee?.reason ?? "no knee within the steps run; the highest rate held")),
      ("highest_rate_held_per_s", lastGood.map { .double(Evidence.r3($0)) } ?? .null), ("past_knee", .array(past)),
      ("steps", .array(steps)),
    ])
  }
}
