import CortexCore
import Posix

/// `cortex demo`: Cortex's main job in one command. Starts a daemon with its worker pool in a
/// fresh directory, submits a few hundred mixed tasks (synthetic agents, shell commands, several
/// priorities, retries, a dependency chain and a few that fail on purpose), shows live progress
/// from the hot state, prints a summary taken from the decision log, and stops cleanly.
enum DemoCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let count = try args.intOption("--tasks", min: 10, max: 100_000) ?? 300
    let workers = try args.intOption("--workers", min: 1, max: 1024) ?? 20
    let seed = UInt64(try args.intOption("--seed", min: 0, max: Int.max) ?? 7)
    try args.noPositionals()

    // A fresh directory unless --dir was given explicitly and is empty of a running daemon.
    var paths = ctx.paths
    if !ctx.directoryNamed {
      do { paths = Paths(root: try FileSystem.makeTemporaryDirectory(prefix: "cortex-demo-")) } catch {
        throw CLIError(ExitCode.failure, "cannot make a temporary directory: \(error)")
      }
    }
    let dctx = Context(paths: paths, json: ctx.json, color: ctx.color, executable: ctx.executable)
    ctx.err(ctx.bold("Cortex demo") + ": \(count) tasks on \(workers) workers in \(paths.root)\n")

    let started = Clock.monotonicMs()
    let ping = try DaemonControl.start(dctx, workers: workers, timeoutS: 60)
    let readyMs = Clock.monotonicMs() - started
    ctx.err("daemon pid \(ping["pid"]?.int ?? 0) ready with \(ping["workers_ready"]?.int ?? 0) workers in \(readyMs) ms\n")

    var ok = false
    defer { if !ok { _ = try? DaemonControl.stop(dctx, timeoutS: 5) } }

    let workload = Workload.make(count: count, seed: seed)
    let client = try Client(dctx)
    let submitStart = Clock.monotonicMs()
    var ids: [String] = []
    // The chain first, then the rest in batches of 50 (each batch is one durable group commit).
    let chain = try Client.check(try client.request(submitRequest(workload.chainHead)))
    let headID = chain["ids"]?.array?.first?.string ?? ""
    ids.append(headID)
    var rest = workload.tasks
    for i in rest.indices where rest[i].dependsOnHead { rest[i].spec.append(("depends_on", .array([.string(headID)]))) }
    for batch in stride(from: 0, to: rest.count, by: 50) {
      let slice = rest[batch..<min(rest.count, batch + 50)].map { JSON.object($0.spec) }
      let answer = try Client.check(try client.request(.object([("op", .string("submit")), ("tasks", .array(slice))])))
      ids += answer["ids"]?.array?.compactMap(\.string) ?? []
    }
    let submitMs = Clock.monotonicMs() - submitStart

    // Live progress from hot-state.mmap (no request to the daemon).
    let total = ids.count
    let tty = FileDescriptor.standardError.isTerminal
    var lastLine = Int64(0)
    while true {
      let now = Clock.monotonicMs()
      guard let v = try? DaemonControl.hotState(paths) else {
        sleepMs(50)
        continue
      }
      let c = v.counts
      let done = (c[.succeeded] ?? 0) + (c[.failed] ?? 0) + (c[.cancelled] ?? 0) + (c[.timedOut] ?? 0)
      if tty || now - lastLine >= 1000 || done >= total {
        lastLine = now
        let width = 30
        let filled = total == 0 ? width : done * width / total
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let secs = Double(max(1, now - submitStart)) / 1000
        let line =
          "[\(bar)] \(done)/\(total) done · \(c[.running] ?? 0) running · \(c[.queued] ?? 0) queued · "
          + "\(c[.failed] ?? 0) failed · \(Int(Double(done) / secs)) tasks/s · \(v.tokensUsed) tokens"
        ctx.err(tty ? "\r\u{1B}[K" + line : line + "\n")
      }
      if done >= total { break }
      sleepMs(100)
    }
    if tty { ctx.err("\n") }
    let finishMs = Clock.monotonicMs() - submitStart

    // The definitive answer per task comes from the daemon.
    let waited = try Client.check(try client.request(.object([("op", .string("wait")), ("ids", .array(ids.map { .string($0) }))])))
    var byState: [String: Int] = [:]
    for t in waited["tasks"]?.array ?? [] { byState[t["state"]?.string ?? "unknown", default: 0] += 1 }
    let budget = try Client.check(try client.request(.object([("op", .string("budget"))])))["budget"] ?? .null

    let (pid, _) = try DaemonControl.stop(dctx, timeoutS: 10)
    ok = true
    let leftovers = Processes.belonging(toDirectory: paths.root).map(\.pid)

    // Latencies from the decision log.
    let stats = LogStats.read(paths)
    var s = "\n" + ctx.bold("Summary") + "\n"
    s += "tasks       \(total) submitted in \(submitMs) ms; all reached a terminal state in \(formatMs(finishMs))\n"
    s += "outcome     \(byState["succeeded"] ?? 0) succeeded, \(byState["failed"] ?? 0) failed, "
    s += "\(byState["cancelled"] ?? 0) cancelled, \(byState["timed_out"] ?? 0) timed out\n"
    s += "throughput  \(Int(Double(total) / (Double(max(1, finishMs)) / 1000))) tasks/s end to end on \(workers) workers\n"
    if let q = stats.queueWaitP50, let q99 = stats.queueWaitP99 {
      s += "queue wait  p50 \(q) ms, p99 \(q99) ms (submitted → started, includes waiting for a free worker)\n"
    }
    s += "retries     \(stats.retries) (synthetic 429s and flaky commands retried with backoff)\n"
    s += "tokens      \(budget["used"]?.int ?? 0) used of \(budget["total"]?.int ?? 0); never below zero\n"
    s += "log         \(stats.events) events, seq 1…\(stats.lastSeq), every line valid JSON: \(stats.allValid ? "yes" : "NO")\n"
    s +=
      "daemon      pid \(pid) stopped; processes left behind: \(leftovers.isEmpty ? "none" : leftovers.map(String.init).joined(separator: ", "))\n"
    s += "\n" + ctx.bold("Files") + " in \(paths.root)\n"
    s += "  events/00000001.jsonl        the decision log (one JSON object per line)\n"
    s += "  task-queue.json, worker-pool.json, token-budget.json   snapshots\n"
    s += "  hot-state.mmap               live state; try: cortex --dir \(paths.root) status\n"
    s += "  tasks/<id>/                  spec.json, output.log, result.json of each command task\n"
    s += "\n" + ctx.bold("Try") + "\n"
    s += "  jq -r 'select(.type==\"task.failed\") | [.task_id, .reason, .detail] | @tsv' \(paths.root)/events/*.jsonl\n"
    s +=
      "  jq -s 'map(select(.type|startswith(\"task.\"))) | group_by(.type) | map({(.[0].type): length}) | add' \(paths.root)/events/*.jsonl\n"
    s += "  jq 'select(.task_id==\"\(headID)\")' \(paths.root)/events/*.jsonl\n"
    s += "\nRemove it with: rm -rf \(paths.root)\n"
    ctx.out(s)
    return stats.allValid && leftovers.isEmpty && byState.values.reduce(0, +) == total ? 0 : 1
  }

  static func submitRequest(_ spec: [(String, JSON)]) -> JSON {
    .object([("op", .string("submit")), ("tasks", .array([.object(spec)]))])
  }

  /// The demo's mix of tasks, deterministic for a seed.
  struct Workload {
    struct Item {
      var spec: [(String, JSON)]
      var dependsOnHead: Bool
    }
    var chainHead: [(String, JSON)]
    var tasks: [Item]

    static func make(count: Int, seed: UInt64) -> Workload {
      var rng = SplitMix64(seed: seed)
      let agentTypes = ["scan", "review", "analysis", "documentation", "fix", "test"]
      let priorities = ["low", "medium", "medium", "medium", "high", "critical"]
      var items: [Item] = []
      let head: [(String, JSON)] = [
        ("shell", .string("echo building; sleep 0.2; echo built")), ("priority", .string("high")),
        ("labels", .object([("demo", .string("chain"))])),
      ]
      for i in 1..<count {
        let priority = priorities[Int(rng.below(Int64(priorities.count)))]
        var spec: [(String, JSON)] = [("priority", .string(priority)), ("labels", .object([("demo", .string("mix"))]))]
        switch i % 10 {
        case 0...4:
          // A synthetic agent: latency and token use vary; some hit simulated 429s and retry.
          let type = agentTypes[Int(rng.below(Int64(agentTypes.count)))]
          let ms = 10 + rng.below(150)
          let tokens = 200 + rng.below(2500)
          let errorRate = i % 7 == 0 ? 0.3 : 0.0
          spec += [
            ("type", .string(type)),
            ("synthetic", .object([("duration_ms", .int(ms)), ("tokens", .int(tokens)), ("error_rate", .double(errorRate))])),
            ("max_attempts", .int(3)),
          ]
        case 5, 6:
          spec.append(("command", .array([.string("true")])))
        case 7:
          spec.append(("shell", .string("echo task \(i) on $CORTEX_WORKER_ID; sleep 0.0\(1 + rng.below(9))")))
        case 8:
          spec.append(("shell", .string("echo checking \(i); sleep 0.05")))
          items.append(Item(spec: spec, dependsOnHead: true))
          continue
        default:
          // Fails on purpose now and then: a non-zero exit, retried once.
          let fails = i % 30 == 9
          spec += [("shell", .string(fails ? "echo 'something broke' >&2; exit 3" : "ls / > /dev/null")), ("max_attempts", .int(2))]
        }
        items.append(Item(spec: spec, dependsOnHead: false))
      }
      return Workload(chainHead: head, tasks: items)
    }
  }
}

/// Counts and latencies read back from the decision log files.
struct LogStats {
  var events = 0
  var lastSeq: Int64 = 0
  var allValid = true
  var retries = 0
  var queueWaitP50: Int64?
  var queueWaitP99: Int64?

  static func read(_ paths: Paths) -> LogStats {
    var s = LogStats()
    var submitted: [String: Int64] = [:]
    var waits: [Int64] = []
    let names = ((try? FileSystem.list(paths.events)) ?? []).sorted()
    for name in names where name.hasSuffix(".jsonl") {
      guard let bytes = (try? FileSystem.read(paths.events + "/" + name)) ?? nil else { continue }
      for line in bytes.split(separator: 10) {
        guard let v = try? JSON.parse(line) else {
          s.allValid = false
          continue
        }
        s.events += 1
        s.lastSeq = max(s.lastSeq, v["seq"]?.int ?? 0)
        let ts = v["ts"]?.string.flatMap(Timestamp.parse) ?? 0
        let id = v["task_id"]?.string ?? ""
        switch v["type"]?.string {
        case "task.submitted": submitted[id] = ts
        case "task.started":
          if let t0 = submitted.removeValue(forKey: id) { waits.append(ts - t0) }
        case "task.retrying": s.retries += 1
        default: break
        }
      }
    }
    waits.sort()
    if !waits.isEmpty {
      s.queueWaitP50 = waits[waits.count / 2]
      s.queueWaitP99 = waits[min(waits.count - 1, waits.count * 99 / 100)]
    }
    return s
  }
}

extension DemoCommand {
  static let help = CommandHelp(
    "demo", abstract: "run the daemon with its pool on a demo workload and summarize",
    usage: "cortex demo [--tasks N] [--workers N] [--seed N]",
    details: "Works in a fresh temporary directory unless --dir or $CORTEX_DIR names one, and prints where it is.",
    flags: [
      .option("--tasks", value: "N", help: "how many tasks (10-100000)", default: "300"),
      .option("--workers", value: "N", help: "pool size (1-1024)", default: "20"),
      .option("--seed", value: "N", help: "seed of the workload's random choices", default: "7"),
    ],
    examples: [
      ("cortex demo", "300 tasks on 20 workers in a temporary directory"),
      ("cortex demo --tasks 1000 --workers 8", "more tasks, fewer workers"),
    ])
}
