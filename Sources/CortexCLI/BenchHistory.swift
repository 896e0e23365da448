import CortexCore
import CortexDaemon
import Posix

/// `cortex bench history`: writes a coordination directory holding the history of many tasks
/// without running a daemon, for start-up and retention benchmarks (ten million tasks through a
/// daemon would take hours). Every event is decided by the real scheduler, fed as a daemon feeds
/// it for synthetic 0 ms tasks on 20 workers, and encoded by the log's own encoder into segments
/// that are sealed as the daemon seals them (size, CRC32C, seqs and times in
/// `events/manifest.json`), with `finished-tasks.bin` and the snapshots at the end. `ACTIVE` tasks
/// are left unfinished: 20 running (long), the rest queued. A daemon started on the result
/// cannot tell it from its own; `cortex doctor` checks every line.
enum BenchHistory {
  static let usage =
    "cortex bench history --tasks N [--active N] [--days D] [--segment-bytes B] [--keep-all] --dir DIR"

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let total = try args.intOption("--tasks", min: 1, max: 100_000_000) ?? 1_000_000
    let active = try args.intOption("--active", min: 20, max: 1_000_000) ?? 10_000
    let days = Double(try args.intOption("--days", min: 0, max: 36_500) ?? 60)
    let segmentBytes = try args.intOption("--segment-bytes", min: 4096, max: 1 << 40) ?? Config().logSegmentBytes
    let keepAll = args.flag("--keep-all")
    let words = try args.positionals()
    guard words == ["history"] else { throw CLIError.usage("unexpected arguments", usage) }
    guard total > active else { throw CLIError.usage("--tasks must be more than --active", usage) }
    let p = ctx.paths
    if !((try? FileSystem.list(p.events)) ?? []).isEmpty {
      throw CLIError(ExitCode.failure, "\(p.events) is not empty: give --dir a new directory")
    }
    var config: Config
    do throws(StartupError) {
      _ = try Daemon.initialize(paths: p, workers: 20, force: true)
      config = try Daemon.loadConfig(paths: p)
    } catch {
      throw CLIError(ExitCode.failure, "cannot prepare \(p.root): \(error)")
    }
    config.workers = 20
    // As `cortex bench` does: room for the batches, and a budget ten million tasks do not exhaust.
    config.maxQueue = max(config.maxQueue, active + 1000)
    config.tokenBudgetTotal = max(config.tokenBudgetTotal, 1 << 42)
    config.maxQueueWaitS = 30 * 86_400
    config.logSegmentBytes = segmentBytes
    if keepAll { config.retention = .keepEverything }
    do throws(SpecError) {
      // The same check the daemon applies when it reads config.json.
      try config.retention.fit(segmentBytes: segmentBytes, logBytesGiven: false)
    } catch {
      throw CLIError(ExitCode.usage, "\(error)")
    }
    let started = Clock.monotonicMs()
    let out: Generated
    do throws(PosixError) {
      try FileSystem.writeAtomically(p.config, Array((config.json().pretty() + "\n").utf8))
      out = try generate(p, config: config, finished: total - active, active: active, spanMs: Int64(days * 86_400_000))
    } catch {
      throw CLIError(ExitCode.failure, "cannot write \(p.root): \(error)")
    }
    let v = JSON.object([
      ("profile", .string("history")), ("tasks", .int(Int64(total))), ("active", .int(Int64(active))),
      ("events", .int(Int64(out.lastSeq))), ("segments", .int(Int64(out.segments))), ("log_bytes", .int(Int64(out.bytes))),
      ("seconds", .double(Double(Clock.monotonicMs() - started) / 1000)), ("dir", .string(p.root)),
    ])
    ctx.out(v.encoded() + "\n")
    return 0
  }

  struct Generated {
    var lastSeq: UInt64
    var segments: Int
    var bytes: Int
  }

  /// Segments as the log writer rotates them, each sealed as the lifecycle seals it.
  struct Sink {
    let paths: Paths
    let segmentBytes: Int
    var index = 1
    var buffer: [UInt8] = []
    var first: (seq: UInt64, ms: Int64)? = nil
    var last: (seq: UInt64, ms: Int64) = (0, 0)
    var lines = 0
    var manifest = Manifest()
    var bytes = 0

    mutating func append(_ line: [UInt8], seq: UInt64, ms: Int64) throws(PosixError) {
      if !buffer.isEmpty && buffer.count + line.count > segmentBytes { try seal() }
      if first == nil { first = (seq, ms) }
      buffer.append(contentsOf: line)
      last = (seq, ms)
      lines += 1
    }

    mutating func seal() throws(PosixError) {
      try write()
      manifest.segments.append(
        Manifest.Segment(
          index: index, bytes: buffer.count, crc32c: FastCRC32C.checksum(buffer), firstSeq: first!.seq, lastSeq: last.seq,
          firstMs: first!.ms, lastMs: last.ms, lines: lines))
      index += 1
      buffer.removeAll(keepingCapacity: true)
      first = nil
      lines = 0
    }

    mutating func write() throws(PosixError) {
      let fd = try FileDescriptor.open(paths.events + "/" + LogSegments.name(index), [.writeOnly, .create, .truncate])
      defer { fd.close() }
      try fd.writeAll(buffer)
      bytes += buffer.count
    }
  }

  static func generate(_ p: Paths, config: Config, finished: Int, active: Int, spanMs: Int64) throws(PosixError) -> Generated {
    let records = try FinishedRecordFile(path: p.finishedRecords)
    var sink = Sink(paths: p, segmentBytes: config.logSegmentBytes)
    var seq: UInt64 = 0
    var w = JSONWriter(capacity: 1024)
    var tsCache: (ms: Int64, text: String) = (-1, "")
    let end = Clock.wallMs()
    let begin = end - spanMs
    var now = begin
    var pending: [(task: Int, record: FinishedRecord)] = []
    var running: [Int: Int] = [:]  // worker → task

    func take(_ out: inout [Action]) throws(PosixError) {
      for a in out {
        switch a {
        case .log(let e):
          seq += 1
          if tsCache.ms != now { tsCache = (now, Timestamp.rfc3339(ms: now)) }
          w.bytes.removeAll(keepingCapacity: true)
          e.encode(seq: seq, ts: tsCache.text, into: &w)
          w.bytes.append(10)
          try sink.append(w.bytes, seq: seq, ms: now)
          if let n = e.task, let st = TaskState(rawValue: String(e.type.dropFirst(5))), e.type.hasPrefix("task."), st.isTerminal {
            pending.append((n, FinishedRecord(state: st, exitCode: 0, endedMs: now, hadDirectory: false)))
          }
        case .send(let worker, .run(let n, _, _, _, _, _)): running[worker] = n
        default: break
        }
      }
      out.removeAll(keepingCapacity: true)
      if pending.count >= 65_536 {
        try records.write(pending)
        pending.removeAll(keepingCapacity: true)
      }
    }

    var out: [Action] = []
    out.append(.log(Event("daemon.started", reason: "fresh", detail: "history written by cortex bench history")))
    try take(&out)
    // The finished tasks: the six events the scheduler decides for a 0 ms synthetic task
    // (submitted, assigned, budget.reserved, started, budget.released, succeeded), written from
    // byte templates with each task's own seq, time, id and worker (a hundred times faster than
    // feeding the scheduler, which makes the same lines).
    var line: [UInt8] = []
    line.reserveCapacity(512)
    func text(_ s: String) { line.append(contentsOf: s.utf8) }
    func number(_ v: Int) { line.append(contentsOf: String(v).utf8) }
    for n in 1...max(1, finished) where finished > 0 {
      now = begin + Int64(Double(spanMs) * Double(n) / Double(finished + active))
      if tsCache.ms != now { tsCache = (now, Timestamp.rfc3339(ms: now)) }
      let id = TaskID.format(n)
      let worker = WorkerID.format(n % config.workers + 1)
      let available = config.tokenBudgetTotal - 3 * n
      for k in 0..<6 {
        seq += 1
        line.removeAll(keepingCapacity: true)
        text("{\"seq\":")
        number(Int(seq))
        text(",\"ts\":\"" + tsCache.text + "\",\"type\":\"")
        switch k {
        case 0:
          text("task.submitted\",\"task_id\":\"\(id)\",\"priority\":\"medium\",\"token_budget\":3,\"max_attempts\":1,")
          text("\"spec\":{\"priority\":\"medium\",\"synthetic\":{\"duration_ms\":0,\"tokens\":3,\"error_rate\":0}}}")
        case 1: text("task.assigned\",\"task_id\":\"\(id)\",\"worker_id\":\"\(worker)\",\"attempt\":1}")
        case 2:
          text("budget.reserved\",\"task_id\":\"\(id)\",\"attempt\":1,\"tokens\":3,\"available\":")
          number(available)
          text("}")
        case 3: text("task.started\",\"task_id\":\"\(id)\",\"worker_id\":\"\(worker)\",\"attempt\":1}")
        case 4:
          text("budget.released\",\"task_id\":\"\(id)\",\"attempt\":1,\"tokens\":3,\"used\":3,\"available\":")
          number(available)
          text("}")
        default:
          text("task.succeeded\",\"task_id\":\"\(id)\",\"worker_id\":\"\(worker)\",\"attempt\":1,")
          text("\"exit_code\":0,\"tokens_used\":3,\"duration_ms\":0}")
        }
        line.append(10)
        try sink.append(line, seq: seq, ms: now)
      }
      pending.append((n, FinishedRecord(state: .succeeded, exitCode: 0, endedMs: now, hadDirectory: false)))
      if pending.count >= 65_536 {
        try records.write(pending)
        pending.removeAll(keepingCapacity: true)
      }
    }
    // The scheduler takes over with the state those events leave (as a snapshot would give it).
    var s = Scheduler(config: config, seed: 7)
    let base = JSON.object([
      ("seq", .int(Int64(seq))), ("next_task", .int(Int64(finished + 1))), ("tokens_used", .int(Int64(3 * finished))),
      (
        "estimates",
        .object([("synthetic", .object([("count", .int(Int64(finished))), ("ewma_duration_ms", .int(0)), ("ewma_tokens", .int(3))]))])
      ),
      ("tasks", .array([])), ("finished", .object(finished > 0 ? [("succeeded", .string("1-\(finished)"))] : [])),
    ])
    do { _ = try s.restore(snapshot: base) } catch { preconditionFailure("a snapshot built here does not restore: \(error)") }
    s.start(now: now, into: &out)
    for slot in 1...config.workers {
      s.handle(.workerSpawned(slot, pid: Int32(100 + slot)), now: now, into: &out)
      s.handle(.worker(slot, .ready(pid: Int32(100 + slot))), now: now, into: &out)
    }
    try take(&out)
    var spec = TaskSpec()
    spec.synthetic = TaskSpec.Synthetic(durationMs: 0, tokens: 3)
    let chunk = 500
    // The live state: 20 long tasks running, the rest queued behind them.
    now = end
    var long = TaskSpec()
    long.synthetic = TaskSpec.Synthetic(durationMs: 3_600_000, tokens: 3)
    var low = spec
    low.synthetic = TaskSpec.Synthetic(durationMs: 10, tokens: 3)
    low.priority = .low
    s.handle(.submit(1, Array(repeating: long, count: 20)), now: now, into: &out)
    try take(&out)
    for (worker, task) in running { s.handle(.worker(worker, .started(task: task, pid: 0, atMs: now)), now: now, into: &out) }
    try take(&out)
    var left = active - 20
    while left > 0 {
      let n = min(chunk, left)
      s.handle(.submit(1, Array(repeating: low, count: n)), now: now, into: &out)
      try take(&out)
      left -= n
    }
    try sink.write()
    try records.write(pending)
    try records.sync()
    records.close()
    var m = sink.manifest
    m.recordsFromSeq = 1
    try FileSystem.writeAtomically(p.manifest, m.encoded())
    // The snapshot of the end state, twice (current and previous), as a daemon leaves them.
    var queue = s.snapshotView().queueSnapshot(seq: seq, nowMs: now).object ?? []
    let at: JSON = .object([
      ("segment", .string(LogSegments.name(sink.index))), ("offset", .int(Int64(sink.buffer.count))),
      ("crc32c", .string(Manifest.hex(FastCRC32C.checksum(sink.buffer)))),
    ])
    queue.insert(("log", at), at: 2)
    let bytes = Array((JSON.object(queue).pretty() + "\n").utf8)
    try FileSystem.writeAtomically(p.taskQueuePrevious, bytes)
    try FileSystem.writeAtomically(p.taskQueue, bytes)
    try FileSystem.writeAtomically(p.tokenBudget, Array((s.budgetSnapshot(seq: seq, nowMs: now).pretty() + "\n").utf8))
    try FileSystem.writeAtomically(p.workerPool, Array((s.workersSnapshot(seq: seq, nowMs: now).pretty() + "\n").utf8))
    return Generated(lastSeq: seq, segments: sink.index, bytes: sink.bytes)
  }
}
