import CortexCore
import Posix

/// Turns a load run into evidence (SPEC §10): `<run-id>.summary.json` with observed values only
/// and the binding, `<run-id>.ramp.csv`, and `<run-id>.svg`.
enum Evidence {
  static func quantiles(_ values: [Double]) -> JSON {
    guard !values.isEmpty else { return .null }
    let s = values.sorted()
    func q(_ p: Double) -> Double { s[min(s.count - 1, Int(Double(s.count) * p))] }
    return .object([
      ("p50", .double(r3(q(0.5)))), ("p95", .double(r3(q(0.95)))), ("p99", .double(r3(q(0.99)))), ("max", .double(r3(s.last!))),
      ("count", .int(Int64(s.count))),
    ])
  }

  static func r3(_ d: Double) -> Double { d.isFinite && abs(d) < 1e12 ? Double(Int64((d * 1000).rounded())) / 1000 : d }

  /// What the decision log says about the run's tasks.
  struct LogFacts {
    var queueWait: [Double] = []
    var dispatch: [Double] = []
    var terminal: [String: String] = [:]
    var tokensReported: Int64 = 0
    var budgetEvents = 0
    var budgetNegative = 0
    var seqOK = true
  }

  static func readLog(_ paths: Paths) -> LogFacts {
    var f = LogFacts()
    var submitted: [String: Int64] = [:]
    var assigned: [String: Int64] = [:]
    var lastSeq: Int64 = 0
    for i in LogSegments.indexes((try? FileSystem.list(paths.events)) ?? []) {
      let bytes = ((try? FileSystem.read(paths.events + "/" + LogSegments.name(i))) ?? nil) ?? []
      _ = LogSegments.scan(bytes) { v in
        let seq = v["seq"]?.int ?? 0
        if seq <= lastSeq { f.seqOK = false }
        lastSeq = seq
        guard let type = v["type"]?.string else { return }
        if type.hasPrefix("budget.") {
          f.budgetEvents += 1
          if (v["available"]?.int ?? 0) < 0 { f.budgetNegative += 1 }
        }
        guard let id = v["task_id"]?.string, let ts = v["ts"]?.string.flatMap(Timestamp.parse) else { return }
        switch type {
        case "task.submitted": submitted[id] = ts
        case "task.assigned": assigned[id] = ts
        case "task.started":
          if let a = assigned.removeValue(forKey: id) { f.dispatch.append(Double(ts - a)) }
          if let s = submitted.removeValue(forKey: id) { f.queueWait.append(Double(ts - s)) }
        case "task.retrying":
          // An attempt that is retried was charged too: its use is on the retry event.
          f.tokensReported += v["tokens_used"]?.int ?? 0
        default:
          if TaskState.terminalEventTypes.contains(type) {
            f.terminal[id] = String(type.dropFirst(5))
            f.tokensReported += v["tokens_used"]?.int ?? 0
          }
        }
      }
    }
    return f
  }

  /// git SHA, binary and config sha256, cores, memory, kernel.
  static func binding(_ paths: Paths, executable: String) -> JSON {
    let bin = ((try? FileSystem.read(executable)) ?? nil).map(SHA256.hex) ?? "unreadable"
    let cfg = ((try? FileSystem.read(paths.config)) ?? nil).map(SHA256.hex) ?? "unreadable"
    let stat = ((try? FileSystem.read("/proc/stat")) ?? nil) ?? []
    let cores = stat.split(separator: 10).filter { $0.starts(with: Array("cpu".utf8)) && $0.count > 3 && $0[$0.startIndex + 3] != 32 }.count
    var memGiB = 0.0
    if let m = (try? FileSystem.read("/proc/meminfo")) ?? nil {
      for line in String(decoding: m, as: UTF8.self).split(separator: "\n") where line.hasPrefix("MemTotal:") {
        memGiB = (Double(line.split(separator: " ")[1]) ?? 0) / 1024 / 1024
      }
    }
    let kernel = String(decoding: ((try? FileSystem.read("/proc/sys/kernel/osrelease")) ?? nil) ?? [], as: UTF8.self).trimmedLine
    return .object([
      ("git_sha", .string(gitSHA() ?? "unknown")), ("binary_sha256", .string(bin)), ("config_sha256", .string(cfg)),
      ("cores", .int(Int64(cores))), ("memory_gib", .double(r3(memGiB))), ("kernel", .string(kernel)),
    ])
  }

  static func gitSHA() -> String? {
    guard let tmp = try? FileSystem.makeTemporaryDirectory(prefix: "cortex-git-") else { return nil }
    defer { FileSystem.removeTree(tmp) }
    guard let out = try? FileDescriptor.open(tmp + "/out", [.writeOnly, .create]),
      let devnull = try? FileDescriptor.open("/dev/null", .readWrite)
    else { return nil }
    defer { devnull.close() }
    let pid = try? Processes.spawn(
      ["git", "rev-parse", "--short", "HEAD"], environment: Environment.all(), stdin: devnull, stdout: out, stderr: devnull,
      newProcessGroup: false)
    out.close()
    guard let pid, Processes.wait(pid) == .exited(0) else { return nil }
    let sha = String(decoding: ((try? FileSystem.read(tmp + "/out")) ?? nil) ?? [], as: UTF8.self).trimmedLine
    return sha.isEmpty ? nil : sha
  }

  /// Resource series over the run: first, last, min, max, and the least-squares slope per hour
  /// after the first 10 % of the run (start-up allocation is not a leak), and over all samples.
  static func series(_ samples: [LoadEngine.Sample], _ key: (LoadEngine.Sample) -> Double?) -> JSON {
    let pts = samples.compactMap { s in key(s).map { (s.t, $0) } }
    guard let first = pts.first, let last = pts.last else { return .null }
    func slope(_ p: [(Double, Double)]) -> Double {
      guard p.count > 1 else { return 0 }
      let n = Double(p.count)
      let mx = p.reduce(0) { $0 + $1.0 } / n, my = p.reduce(0) { $0 + $1.1 } / n
      let sxx = p.reduce(0) { $0 + ($1.0 - mx) * ($1.0 - mx) }
      let sxy = p.reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
      return sxx > 0 ? sxy / sxx * 3600 : 0
    }
    let warm = first.0 + (last.0 - first.0) * 0.1
    return .object([
      ("first", .double(r3(first.1))), ("last", .double(r3(last.1))), ("min", .double(r3(pts.map(\.1).min()!))),
      ("max", .double(r3(pts.map(\.1).max()!))), ("slope_per_hour", .double(r3(slope(pts.filter { $0.0 >= warm })))),
      ("slope_per_hour_all", .double(r3(slope(pts)))), ("samples", .int(Int64(pts.count))),
    ])
  }

  static func summary(
    runID: String, profile: String, engine: LoadEngine, facts: LogFacts, budget: JSON, options: LoadOptions,
    extra: [(String, JSON)], binding: JSON
  ) -> JSON {
    let lost = engine.acked.filter { facts.terminal[$0] == nil }.count
    let finished = engine.completed + engine.failed
    let durationS = engine.elapsedS()
    let failureRate = finished == 0 ? 0 : Double(engine.failed) / Double(finished)
    let tput = engine.samples.map(\.throughput)
    let used = budget["used"]?.int ?? -1
    return .object(
      [
        ("run_id", .string(runID)), ("profile", .string(profile)),
        ("started", .string(Timestamp.rfc3339(ms: Clock.wallMs() - Int64(durationS * 1000)))), ("duration_s", .double(r3(durationS))),
        ("options", options.json),
        (
          "tasks",
          .object([
            ("submitted", .int(Int64(engine.submitted))), ("accepted", .int(Int64(engine.accepted))),
            ("refused", .int(Int64(engine.refused))), ("completed", .int(Int64(engine.completed))),
            ("failed", .int(Int64(engine.failed))), ("lost", .int(Int64(lost))),
            ("unacknowledged", .int(Int64(engine.unacknowledged))),
            ("not_sent_client_cap", .int(Int64(engine.unsent))),
          ])
        ),
        ("completion_pct", .double(engine.accepted == 0 ? 0 : r3(Double(engine.completed) / Double(engine.accepted) * 100))),
        (
          "latency_ms",
          .object([
            ("submit_ack", quantiles(engine.ackMs)), ("queue_wait", quantiles(facts.queueWait)),
            ("dispatch", quantiles(facts.dispatch)), ("end_to_end", quantiles(engine.e2eMs)),
          ])
        ),
        (
          "throughput_per_s",
          .object([
            ("mean", .double(r3(Double(finished) / max(0.001, durationS)))), ("max_sample", .double(r3(tput.max() ?? 0))),
          ])
        ),
        ("max_concurrent_observed", .int(Int64(engine.maxConcurrent))),
        (
          "resources",
          .object([
            ("daemon_rss_mib", series(engine.samples) { $0.daemonRSS }), ("worker_rss_mib", series(engine.samples) { $0.workerRSS }),
            ("daemon_fds", series(engine.samples) { $0.daemonFDs.map(Double.init) }),
            ("daemon_threads", series(engine.samples) { $0.daemonThreads.map(Double.init) }),
            ("zombies_seen", .int(Int64(engine.zombiesSeen))),
            ("zombies_transient", .int(Int64(engine.transientZombies))),
          ])
        ),
        (
          "budget",
          .object([
            ("total", budget["total"] ?? .null), ("reserved", budget["reserved"] ?? .null), ("used", budget["used"] ?? .null),
            ("available", budget["available"] ?? .null), ("tokens_reported", .int(facts.tokensReported)),
            ("used_equals_reported", .bool(used == facts.tokensReported)),
            ("events", .int(Int64(facts.budgetEvents))), ("events_negative", .int(Int64(facts.budgetNegative))),
          ])
        ),
        (
          "error_budget",
          .object([
            ("rate_allowed", .double(options.errorBudgetRate)), ("rate_observed", .double(r3(failureRate))),
            ("verdict", .string(failureRate <= options.errorBudgetRate ? "pass" : "fail")),
          ])
        ),
        ("log_seq_strictly_increasing", .bool(facts.seqOK)),
      ] + extra + [("binding", binding)])
  }

  static let chartPanels: [SVGChart.Panel] = [
    SVGChart.Panel(
      "Throughput and in-flight", unit: "tasks/s · tasks",
      [SVGChart.Series("throughput_per_s", "completed/s", "#1f77b4"), SVGChart.Series("in_flight", "in flight", "#ff7f0e")]),
    SVGChart.Panel(
      "End-to-end latency", unit: "ms",
      [SVGChart.Series("e2e_p50_ms", "p50", "#2ca02c"), SVGChart.Series("e2e_p99_ms", "p99", "#d62728")]),
    SVGChart.Panel("Completion", unit: "% of accepted", [SVGChart.Series("completion_pct", "completed %", "#9467bd")]),
    SVGChart.Panel(
      "Memory", unit: "MiB",
      [SVGChart.Series("daemon_rss_mib", "daemon RSS", "#8c564b"), SVGChart.Series("worker_rss_mib", "workers RSS (sum)", "#7f7f7f")]),
  ]

  /// Writes the three files; returns their paths.
  static func write(runID: String, outDir: String, summary: JSON, csv: String, title: String) throws(CLIError) -> [String] {
    let base = outDir + "/" + runID
    let svg = SVGChart.render(title: title, rows: SVGChart.parseCSV(csv), x: "t_s", xLabel: "seconds", panels: chartPanels)
    do {
      try FileSystem.makeDirectories(outDir, mode: 0o755)
      try FileSystem.writeAtomically(base + ".summary.json", Array((summary.pretty() + "\n").utf8), mode: 0o644)
      try FileSystem.writeAtomically(base + ".ramp.csv", Array(csv.utf8), mode: 0o644)
      try FileSystem.writeAtomically(base + ".svg", Array(svg.utf8), mode: 0o644)
    } catch {
      throw CLIError(ExitCode.failure, "cannot write the evidence under \(outDir): \(error)")
    }
    return [base + ".summary.json", base + ".ramp.csv", base + ".svg"]
  }
}

extension String {
  var trimmedLine: String {
    var s = Substring(self)
    while let l = s.last, l.isWhitespace { s.removeLast() }
    while let f = s.first, f.isWhitespace { s.removeFirst() }
    return String(s)
  }
}
