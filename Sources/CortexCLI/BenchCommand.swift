import CortexCore
import CortexDaemon
import Posix

/// `cortex bench PROFILE`: measures a real daemon started in a fresh temporary directory (or the
/// one given with --dir, which must not be running). Prints the observed values as one JSON object
/// on stdout and a short table on stderr. Scripts under `scripts/` repeat it and commit medians.
enum BenchCommand {
  static let usage = """
    cortex bench smoke|ramp|fixed|soak|saturation|chaos [--agents N|LO..HI] [--rate R/s] [--duration D] [--step D]
                        [--latency 50ms|uniform=LO..HI|p50=D,p99=D] [--tokens N] [--error-rate X] [--error-budget-rate X]
                        [--no-retries] [--workers N] [--kind synthetic|exec] [--out DIR]
           cortex bench throughput|submit-latency|dispatch-latency|agents|decision|decision-groups|provider|cancel|budget [--tasks N] [--workers N]
                        [--kind exec|synthetic] [--samples N] [--agents N] [--task-ms MS] [--duration S] [--seed N]
           cortex bench history --tasks N [--active N] [--days D] [--segment-bytes B] [--keep-all] --dir DIR
    """

  static let profiles = [
    "throughput", "submit-latency", "dispatch-latency", "agents", "decision", "cancel", "budget", "decision-groups", "provider",
  ]

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    if let first = args.words.first(where: { !$0.hasPrefix("-") }), LoadProfiles.names.contains(first) {
      return try LoadProfiles.run(&args, ctx)
    }
    if args.words.first(where: { !$0.hasPrefix("-") }) == "history" { return try BenchHistory.run(&args, ctx) }
    let workers = try args.intOption("--workers", min: 1, max: 1024) ?? 20
    let tasks = try args.intOption("--tasks", min: 1, max: 10_000_000)
    let samples = try args.intOption("--samples", min: 1, max: 1_000_000) ?? 200
    let agents = try args.intOption("--agents", min: 1, max: 10_000) ?? 100
    let taskMs = try args.intOption("--task-ms", min: 0, max: 3_600_000) ?? 50
    let duration = try args.intOption("--duration", min: 1, max: 86_400) ?? 10
    let kind = try args.option("--kind") ?? "exec"
    let seed = try args.intOption("--seed", min: 1, max: 1_000_000) ?? 1
    guard kind == "exec" || kind == "synthetic" else {
      throw CLIError.usage("--kind must be exec or synthetic, not \(quoted(kind))", usage)
    }
    let words = try args.positionals()
    let known = (LoadProfiles.names + profiles).joined(separator: ", ")
    guard let profile = words.first else { throw CLIError.usage("name a profile: \(known)", usage) }
    guard profiles.contains(profile) else { throw CLIError.usage("unknown profile \(quoted(profile)) (known: \(known))", usage) }
    if words.count > 1 { throw CLIError.usage("unexpected argument \(quoted(words[1]))", usage) }

    if profile == "decision-groups" || profile == "provider" {
      let v = Bench.fleetProfile(profile, tasks: tasks, agents: agents, duration: duration, seed: UInt64(seed))
      ctx.out(v.encoded() + "\n")
      return 0
    }
    if profile == "decision" {
      let v = JSON.object([("profile", .string(profile))] + Bench.decisionCost(queued: tasks ?? 10_000))
      ctx.out(v.encoded() + "\n")
      return 0
    }
    let bench = try Bench(ctx, workers: workers)
    defer { bench.close() }
    var result: [(String, JSON)] = [("profile", .string(profile)), ("workers", .int(Int64(workers)))]
    switch profile {
    case "throughput": result += try bench.throughput(kind: kind, count: tasks ?? (kind == "exec" ? 2000 : 20000))
    case "submit-latency": result += try bench.submitLatency(samples: samples)
    case "dispatch-latency": result += try bench.dispatchLatency(samples: samples)
    case "cancel": result += try bench.cancelLatency(samples: min(samples, 1000))
    case "budget": result += try bench.budgetAccuracy(count: tasks ?? 10_000)
    default: result += try bench.agents(agents, taskMs: taskMs, durationS: duration)
    }
    result += bench.daemonUsage()
    let v = JSON.object(result)
    ctx.out(v.encoded() + "\n")
    var rows: [[String]] = []
    for (k, val) in result where k != "profile" {
      rows.append([k, val.double.map { $0 == $0.rounded() ? String(Int64($0)) : String(Double(Int($0 * 100)) / 100) } ?? val.encoded()])
    }
    ctx.err(table(["METRIC", "OBSERVED"], rows))
    return 0
  }
}

/// One benchmark run against one daemon.
final class Bench {
  let ctx: Context
  var pid: Int32
  let ownsDirectory: Bool

  init(_ outer: Context, workers: Int) throws(CLIError) {
    var root = outer.paths.root
    // A fresh directory unless one was named (--dir, $CORTEX_DIR): never a project's own, found by walking up.
    ownsDirectory = !outer.directoryNamed
    if ownsDirectory {
      do { root = try FileSystem.makeTemporaryDirectory(prefix: "cortex-bench-") } catch {
        throw CLIError(ExitCode.failure, "cannot make a temporary directory: \(error)")
      }
    }
    ctx = Context(paths: Paths(root: root), json: true, color: false, executable: outer.executable)
    // A benchmark measures the machinery, not admission: the queue limit is raised (and said so).
    do throws(StartupError) {
      _ = try Daemon.initialize(paths: ctx.paths, workers: workers, force: false)
      var config = try Daemon.loadConfig(paths: ctx.paths)
      config.maxQueue = max(config.maxQueue, 1_000_000)
      config.maxQueueWaitS = max(config.maxQueueWaitS, 86_400)
      // Long runs would spend the default 10M tokens; the budget's arithmetic is still checked.
      config.tokenBudgetTotal = max(config.tokenBudgetTotal, 1 << 42)
      try? FileSystem.writeAtomically(ctx.paths.config, Array((config.json().pretty() + "\n").utf8))
    } catch {
      throw CLIError(ExitCode.failure, "cannot prepare \(root): \(error)")
    }
    let ping = try DaemonControl.start(ctx, workers: workers, timeoutS: 120)
    pid = Int32(ping["pid"]?.int ?? 0)
    watchForInterrupt()
  }

  /// Ctrl-C, SIGTERM or SIGHUP during a run: stop the daemon this run started (and its workers),
  /// remove the directory it made, and exit 130. An interrupted benchmark leaves nothing running.
  private var interruptWatcher: BackgroundQueue?
  private func watchForInterrupt() {
    guard let pipe = try? makePipe(), let watcher = try? BackgroundQueue() else { return }
    for s in [Signal.int, Signal.term, Signal.hup] { try? Signal.deliver(s, to: pipe.write) }
    interruptWatcher = watcher
    let ctx = ctx
    let removeDirectory = ownsDirectory && Environment.get("CORTEX_BENCH_KEEP") == nil
    watcher.async {
      while !pipe.read.waitReadable(timeoutMs: 1000) {}
      ctx.err("\ncortex bench: interrupted; stopping the daemon in \(ctx.paths.root)\n")
      _ = try? DaemonControl.stop(ctx, timeoutS: 10)
      if removeDirectory { FileSystem.removeTree(ctx.paths.root) }
      Processes.exitImmediately(130)
    }
  }

  func close() {
    _ = try? DaemonControl.stop(ctx, timeoutS: 10)
    if ownsDirectory && Environment.get("CORTEX_BENCH_KEEP") == nil { FileSystem.removeTree(ctx.paths.root) }
  }

  static func spec(kind: String, ms: Int = 0) -> JSON {
    kind == "exec"
      ? .object([("command", .array([.string("true")]))])
      : .object([("synthetic", .object([("duration_ms", .int(Int64(ms)))]))])
  }

  /// N tasks submitted as one durable batch; time from the submit to the last terminal event.
  func throughput(kind: String, count: Int) throws(CLIError) -> [(String, JSON)] {
    let client = try Client(ctx)
    let specs = JSON.array(Array(repeating: Bench.spec(kind: kind), count: count))
    let t0 = Clock.monotonicNs()
    let ack = try Client.check(try client.request(.object([("op", .string("submit")), ("tasks", specs)])))
    let t1 = Clock.monotonicNs()
    let ids = ack["ids"]?.array ?? []
    let done = try Client.check(try client.request(.object([("op", .string("wait")), ("ids", .array(ids))])))
    let t2 = Clock.monotonicNs()
    let succeeded = (done["tasks"]?.array ?? []).filter { $0["state"]?.string == "succeeded" }.count
    let secs = Double(t2 - t0) / 1e9
    return [
      ("kind", .string(kind)), ("tasks", .int(Int64(count))), ("succeeded", .int(Int64(succeeded))),
      ("batch_ack_ms", .double(Double(t1 - t0) / 1e6)), ("seconds", .double(secs)),
      ("tasks_per_s", .double(Double(count) / secs)),
    ]
  }

  /// `cortex submit --synthetic 0` as a new process each time, acknowledged durably.
  func submitLatency(samples: Int) throws(CLIError) -> [(String, JSON)] {
    var ms: [Double] = []
    let devnull: FileDescriptor
    do { devnull = try FileDescriptor.open("/dev/null", .readWrite) } catch { throw CLIError(ExitCode.failure, "\(error)") }
    defer { devnull.close() }
    for _ in 0..<samples {
      let t0 = Clock.monotonicNs()
      let pid: Int32
      do {
        pid = try Processes.spawn(
          [ctx.executable, "--dir", ctx.paths.root, "submit", "--synthetic", "0"], environment: Environment.all(), stdin: devnull,
          stdout: devnull, stderr: devnull, newProcessGroup: false)
      } catch { throw CLIError(ExitCode.failure, "cannot run cortex submit: \(error)") }
      let status = Processes.wait(pid)
      ms.append(Double(Clock.monotonicNs() - t0) / 1e6)
      guard status == .exited(0) else { throw CLIError(ExitCode.failure, "cortex submit failed: \(String(describing: status))") }
    }
    return [("submit_samples", .int(Int64(samples)))] + Bench.quantiles("submit_ms", ms)
  }

  /// With the pool idle: submit one synthetic 0 ms task over an open connection, and time the
  /// durable acknowledgement and the whole round trip to its terminal event (an upper bound of
  /// submit → started).
  func dispatchLatency(samples: Int) throws(CLIError) -> [(String, JSON)] {
    let client = try Client(ctx)
    var ack: [Double] = []
    var roundTrip: [Double] = []
    for _ in 0..<samples {
      let t0 = Clock.monotonicNs()
      let a = try Client.check(
        try client.request(.object([("op", .string("submit")), ("tasks", .array([Bench.spec(kind: "synthetic")]))])))
      let t1 = Clock.monotonicNs()
      _ = try Client.check(try client.request(.object([("op", .string("wait")), ("ids", a["ids"] ?? .array([]))])))
      let t2 = Clock.monotonicNs()
      ack.append(Double(t1 - t0) / 1e6)
      roundTrip.append(Double(t2 - t0) / 1e6)
    }
    return [("dispatch_samples", .int(Int64(samples)))] + Bench.quantiles("ack_ms", ack)
      + Bench.quantiles("submit_to_done_ms", roundTrip)
  }

  /// Closed loop: `n` agents, each submitting one synthetic task of `taskMs` and waiting for it,
  /// for `durationS`. Coordination latency = round trip − task duration.
  func agents(_ n: Int, taskMs: Int, durationS: Int) throws(CLIError) -> [(String, JSON)] {
    var clients: [Client] = []
    for _ in 0..<n { clients.append(try Client(ctx)) }
    var inFlight: [Int: (id: JSON, t0: Int64)] = [:]
    var ackMs: [Double] = []
    var overheadMs: [Double] = []
    var completed = 0
    var failed = 0
    let end = Clock.monotonicNs() + Int64(durationS) * 1_000_000_000
    let spec = JSON.array([Bench.spec(kind: "synthetic", ms: taskMs)])
    // Each agent alternates submit and wait on its own connection; requests are pipelined across
    // agents by sending all, then reading each answer.
    while Clock.monotonicNs() < end {
      for (i, c) in clients.enumerated() where inFlight[i] == nil {
        let t0 = Clock.monotonicNs()
        try c.send(.object([("op", .string("submit")), ("tasks", spec)]))
        let a = try Client.check(try c.receive())
        ackMs.append(Double(Clock.monotonicNs() - t0) / 1e6)
        inFlight[i] = (a["ids"] ?? .array([]), t0)
        try c.send(.object([("op", .string("wait")), ("ids", a["ids"] ?? .array([]))]))
      }
      for (i, c) in clients.enumerated() {
        guard let f = inFlight[i] else { continue }
        let r = try Client.check(try c.receive())
        let total = Double(Clock.monotonicNs() - f.t0) / 1e6
        overheadMs.append(max(0, total - Double(taskMs)))
        if r["tasks"]?.array?.first?["state"]?.string == "succeeded" { completed += 1 } else { failed += 1 }
        inFlight[i] = nil
      }
    }
    // Assigned → started from the log (millisecond timestamps).
    var assigned: [String: Int64] = [:]
    var startDelay: [Double] = []
    for i in LogSegments.indexes((try? FileSystem.list(ctx.paths.events)) ?? []) {
      let bytes = ((try? FileSystem.read(ctx.paths.events + "/" + LogSegments.name(i))) ?? nil) ?? []
      _ = LogSegments.scan(bytes) { v in
        guard let id = v["task_id"]?.string, let ts = v["ts"]?.string.flatMap(Timestamp.parse) else { return }
        switch v["type"]?.string {
        case "task.assigned": assigned[id] = ts
        case "task.started": if let a = assigned.removeValue(forKey: id) { startDelay.append(Double(ts - a)) }
        default: break
        }
      }
    }
    return [
      ("agents", .int(Int64(n))), ("task_ms", .int(Int64(taskMs))), ("completed", .int(Int64(completed))),
      ("failed", .int(Int64(failed))), ("tasks_per_s", .double(Double(completed) / Double(durationS))),
    ] + Bench.quantiles("ack_ms", ackMs) + Bench.quantiles("assigned_to_started_ms", startDelay)
      + Bench.quantiles("round_trip_overhead_ms", overheadMs)
  }

  /// Resident memory (MiB) and open descriptors of a process, when readable.
  static func usage(_ pid: Int32) -> (rss: Double?, fds: Int?, threads: Int?) {
    var rss: Double? = nil
    var threads: Int? = nil
    if let status = (try? FileSystem.read("/proc/\(pid)/status")) ?? nil {
      for line in String(decoding: status, as: UTF8.self).split(separator: "\n") {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count >= 2 else { continue }
        if parts[0] == "VmRSS:", let kb = Double(parts[1]) { rss = kb / 1024 }
        if parts[0] == "Threads:" { threads = Int(parts[1]) }
      }
    }
    let fds = (try? FileSystem.list("/proc/\(pid)/fd"))?.count
    return (rss, fds, threads)
  }

  /// The daemon's resident memory, threads and open fds now.
  func daemonUsage() -> [(String, JSON)] {
    var out: [(String, JSON)] = []
    if let status = (try? FileSystem.read("/proc/\(pid)/status")) ?? nil {
      for line in String(decoding: status, as: UTF8.self).split(separator: "\n") {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if parts.first == "VmRSS:", parts.count >= 2, let kb = Int64(parts[1]) {
          out.append(("daemon_rss_mib", .double(Double(kb) / 1024)))
        }
        if parts.first == "Threads:", parts.count >= 2, let n = Int64(parts[1]) { out.append(("daemon_threads", .int(n))) }
      }
    }
    if let fds = try? FileSystem.list("/proc/\(pid)/fd") { out.append(("daemon_fds", .int(Int64(fds.count)))) }
    return out
  }

  static func quantiles(_ name: String, _ values: [Double]) -> [(String, JSON)] {
    guard !values.isEmpty else { return [] }
    let s = values.sorted()
    func q(_ p: Double) -> Double { s[min(s.count - 1, Int(Double(s.count) * p))] }
    return [
      (name + "_p50", .double(q(0.5))), (name + "_p95", .double(q(0.95))), (name + "_p99", .double(q(0.99))),
      (name + "_max", .double(s.last!)),
    ]
  }
}

extension BenchCommand {
  static let help = CommandHelp(
    "bench", abstract: "measure Cortex against a real daemon", usage: usage,
    details: """
      Starts a daemon in a fresh temporary directory (unless --dir or $CORTEX_DIR names one), measures, \
      prints the observed values as one JSON object on stdout and a table on stderr. The load profiles \
      (smoke, ramp, fixed, soak, saturation, chaos) write a summary, a CSV and an SVG chart under --out.
      """,
    flags: [
      .option("--workers", value: "N", help: "pool size (1-1024)", default: "20"),
      .option("--tasks", value: "N", help: "tasks for throughput, budget and decision", default: "2000 exec, 20000 synthetic"),
      .option("--samples", value: "N", help: "samples for the latency profiles", default: "200"),
      .option("--agents", value: "N|LO..HI", help: "synthetic agents (a range ramps)", default: "100"),
      .option("--task-ms", value: "MS", help: "each agent task's duration (agents profile)", default: "50"),
      .option(
        "--duration", value: "D", help: "how long to run (seconds for agents; 30s, 5m for the load profiles)", default: "the profile's"),
      .option(
        "--kind", value: "KIND", help: "what the tasks are", default: "exec; synthetic for the load profiles",
        choices: ["exec", "synthetic"]),
      .option("--rate", value: "R/s", help: "open loop: a fixed arrival rate instead of agents (fixed, soak, chaos, saturation)"),
      .option("--seed", value: "N", help: "random seed of the decision-groups and provider profiles", default: "1"),
      .option("--step", value: "D", help: "length of each step of ramp and saturation"),
      .option("--latency", value: "SPEC", help: "synthetic task latency: 50ms, uniform=LO..HI or p50=D,p99=D", default: "50ms"),
      .option("--tokens", value: "N", help: "tokens per synthetic task", default: "100"),
      .option("--error-rate", value: "X", help: "fraction of synthetic task attempts that fail with an injected 429 (0-1)", default: "0"),
      .option("--error-budget-rate", value: "X", help: "the failure rate the summary's error-budget verdict allows (0-1)", default: "0"),
      .flag("--no-retries", help: "one attempt per task"),
      .option("--out", value: "DIR", help: "where the load profiles write their evidence", default: "docs/bench", completes: .directory),
      .option("--active", value: "N", help: "history: tasks left unfinished (20 running, the rest queued)", default: "10000"),
      .option("--days", value: "D", help: "history: the days the tasks' end times are spread over", default: "60"),
      .option("--segment-bytes", value: "B", help: "history: the log's segment size", default: "the config's"),
      .flag("--keep-all", help: "history: keep every segment (no retention pass at the end)"),
    ],
    operandWords: LoadProfiles.names + profiles + ["history"],
    examples: [
      ("cortex bench throughput --tasks 2000", "2,000 `true` tasks through 20 workers"),
      ("cortex bench ramp --agents 8..200 --step 5s", "a short ramp with its chart"),
    ], parsedIn: ["CortexCLI/Load/LoadProfiles.swift", "CortexCLI/BenchHistory.swift"])
}
