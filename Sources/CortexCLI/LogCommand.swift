import CortexCore
import CortexDaemon
import Posix

/// The hot state's next task number when task `n` has not been given out yet, else nil. The hot
/// state follows the log within 20 ms: a task submitted a moment ago (its answer out, the file not
/// yet rewritten; `tail --task` right after `submit --wait` failed once in CI) is looked for again
/// once, 60 ms later, before it is called unknown.
func notGivenOut(_ n: Int, _ paths: Paths) -> Int? {
  guard let hot = try? DaemonControl.readHotState(paths), n >= hot.nextTask else { return nil }
  sleepMs(60)
  guard let again = try? DaemonControl.readHotState(paths), n >= again.nextTask else { return nil }
  return again.nextTask
}

/// `cortex log ID [--follow]`: the task's output.log; following ends when the task is terminal.
enum LogCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let follow = args.flag("--follow", "-f")
    let ids = try args.positionals()
    guard ids.count == 1 else { throw CLIError.usage("give one task id like task-000012", args.usage) }
    // 65 with the daemon's words, as show, wait, cancel and the other commands that take an id.
    guard let n = TaskID.parse(ids[0]) else {
      throw CLIError(ExitCode.invalidSpec, "id: \(quoted(ids[0])) is not a task id like task-000012")
    }
    let dir = ctx.paths.taskDir(n)
    let path = dir + "/output.log"
    if !FileSystem.isDirectory(ctx.paths.root) {
      // No directory at all: the task is not missing, the directory is (a typo in --dir, or the
      // wrong working directory).
      throw CLIError(
        ExitCode.failure,
        ctx.lookup?.source == .fallback
          ? ctx.startAdvice
          : ctx.lookup?.namedDirectoryProblem() ?? "no coordination directory at \(ctx.paths.root) (run cortex init, then cortex start)")
    }
    if !FileSystem.isDirectory(dir) {
      // Synthetic tasks run inside their worker and have no directory by design: say so.
      let id = TaskID.format(n)
      if let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("show")), ("id", .string(id))])) {
        let t = try Client.check(v)["task"]
        if t?["type"]?.string == "synthetic" || t?["spec"]?["synthetic"] != nil {
          ctx.err("cortex: \(id) is a synthetic task: it runs inside its worker and writes no output (see cortex show \(id))\n")
          return 0
        }
        if let removed = t?["retention"]?.string, removed.contains("its files were removed") {
          throw CLIError(ExitCode.failure, "\(id) has no output any more: \(removed)")
        }
        // Cluster mode: a task this node does not hold is shown from the cluster's record,
        // with the node that runs or ran it; its output is on that node (following it here
        // would wait for its end and print nothing).
        if let elsewhere = elsewhere(id, t, ctx) { throw elsewhere }
        if t?["node"] == nil, t?["state"]?.string == "queued", !follow {
          throw CLIError(ExitCode.failure, "\(id) has no output yet: it is queued in the cluster and no node has started it")
        }
      }
      // No daemon answered: a number not given out yet names no task (65, as tail --task says);
      // followed, it waited a minute for output that could never come.
      if StatusCommand.clusterNode(ctx.paths) == nil, let next = notGivenOut(n, ctx.paths) {
        throw CLIError(ExitCode.invalidSpec, "id: " + TaskID.unknown(n, next: next))
      }
      if !follow {
        throw CLIError(
          ExitCode.failure,
          "\(id) has no output: \(dir) does not exist (synthetic tasks never have one; a command task's appears when it is submitted)")
      }
    }
    var offset = 0
    var outputGone = false
    func drain() -> Bool {
      guard let fd = try? FileDescriptor.open(path, .readOnly) else { return false }
      defer { fd.close() }
      try? fd.seek(to: offset)
      var got = false
      var buf: [UInt8] = []
      while let k = try? fd.read(appendingTo: &buf, max: 1 << 16), k > 0 {
        do throws(PosixError) { try FileDescriptor.standardOutput.writeAll(buf) } catch { outputGone = true }
        offset += k
        buf.removeAll(keepingCapacity: true)
        got = true
      }
      return got
    }
    _ = drain()
    if !follow {
      if !FileSystem.exists(path) {
        // A task that ended before it ran (cancelled while queued) will never have any: "(yet)"
        // promised output that never comes.
        let shown = (try? Client(ctx)).flatMap { try? $0.request(.object([("op", .string("show")), ("id", .string(ids[0]))])) }
        let state = shown?["task"]?["state"]?.string
        if let state, TaskState(rawValue: state)?.isTerminal == true {
          ctx.err("cortex: \(ids[0]) has no output: it ended \(state) before it ran\n")
        } else {
          ctx.err("cortex: \(ids[0]) has no output yet\n")
        }
      }
      return 0
    }
    var lastCheck: Int64 = 0
    // Since when no daemon has answered, and since when nothing new was written (SPEC §14: a
    // task goes on in its worker while no daemon runs, during `cortex restart` or after a crash).
    var unanswered: Int64? = nil
    var lastOutput = Clock.monotonicMs()
    while true {
      let got = drain()
      // The reader of stdout has gone (`cortex log -f ID | head`): nothing more can be shown.
      if outputGone || (!got && FileDescriptor.standardOutput.peerClosed) { return 0 }
      let now = Clock.monotonicMs()
      if got { lastOutput = now }
      if !got && now - lastCheck >= 200 {
        lastCheck = now
        guard let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("show")), ("id", .string(ids[0]))])) else {
          // No daemon: the task may still be running in its worker, so keep following; give up
          // only when neither a daemon nor new output has shown up for a while.
          let since = unanswered ?? now
          unanswered = since
          if now - since > Client.rewaitWindowMs && now - lastOutput > Client.rewaitWindowMs {
            throw CLIError(
              ExitCode.notRunning,
              "no daemon answered for \(Client.rewaitWindowMs / 1000) s and \(ids[0]) wrote nothing new, so stopped following it; "
                + "it may still be running (its worker keeps it for orphan_timeout_s): \(ctx.startAdvice), then cortex log -f \(ids[0])")
          }
          sleepMs(50)
          continue
        }
        unanswered = nil
        // A task followed while queued in the cluster that another node took.
        if !FileSystem.isDirectory(dir), let elsewhere = elsewhere(ids[0], v["task"], ctx) { throw elsewhere }
        if let st = v["task"]?["state"]?.string, TaskState(rawValue: st)?.isTerminal == true {
          _ = drain()
          // Ended before it ran (cancelled while queued): followed, it ended saying nothing.
          if !FileSystem.exists(path) { ctx.err("cortex: \(ids[0]) has no output: it ended \(st) before it ran\n") }
          return 0
        }
      }
      if !got { sleepMs(50) }
    }
  }
}

extension LogCommand {
  /// The refusal for a task another node runs or ran (the cluster's record names a node, and
  /// this node has no directory for it), or nil. `show` names this node too for a task it holds.
  static func elsewhere(_ id: String, _ t: JSON?, _ ctx: Context) -> CLIError? {
    guard let node = t?["node"]?.string, t?["state"]?.string != "queued" else { return nil }
    if let me = StatusCommand.clusterNode(ctx.paths), node == (me ?? Host.name) { return nil }
    return CLIError(
      ExitCode.failure,
      "\(id) \(t?["state"]?.string == "running" ? "runs" : "ran") on node \(node): its output is in that node's directory (cortex log \(id) there, or the task's page in this node's web view, which reads it from that node)"
    )
  }
}

/// `cortex tail`: reads the event segments directly (no daemon needed) and follows across segments.
/// `-n N` prints only the last N matching events (found by reading segments from the newest
/// back); following starts with the last 20 unless `-n` says otherwise.
enum TailCommand {
  static let followLines = 20

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let follow = args.flag("-f", "--follow")
    // Repeatable, any one matching: given twice, only the last counted, so `--type 'task.*'
    // --type 'hook.*'` showed the hooks alone and said nothing of the first.
    let typeGlobs = try args.options(["--type"])
    // `--type "$UNSET"` matched no event, silently (list --type '' is refused the same way).
    if typeGlobs.contains("") {
      throw CLIError.usage("--type needs an event type or a glob like 'task.*', not an empty string", args.usage)
    }
    var tasks: Set<String> = []
    for given in try args.options(["--task"]) {
      // As the log names it: `task-3` (which show, log and wait take) matched no event before.
      // 65, as every command says of an id that names no task (README, "Exit codes").
      guard let n = TaskID.parse(given) else {
        throw CLIError(ExitCode.invalidSpec, "--task: \(quoted(given)) is not a task id like task-000012")
      }
      tasks.insert(TaskID.format(n))
    }
    var sinceMs: Int64? = nil
    if let s = try args.option("--since") {
      guard let d = DurationText.parseMs(s) else { throw CLIError.usage("--since needs a duration like 10m, not \(quoted(s))", args.usage) }
      sinceMs = Clock.wallMs() - d
    }
    let last = try args.intOption("-n", "--lines", min: 0, max: 100_000_000) ?? (follow ? followLines : nil)
    try args.noPositionals()
    if !FileSystem.isDirectory(ctx.paths.events) {
      throw CLIError(
        ExitCode.failure,
        ctx.lookup?.source == .fallback
          ? ctx.startAdvice
          : ctx.lookup?.namedDirectoryProblem() ?? "no event log in \(ctx.paths.root) (run cortex init, then cortex start)")
    }

    // A task number not given out yet matches nothing, ever: say so (tail printed nothing and
    // exited 0, and `tail -f` waited for ever).
    let clusterNode = tasks.isEmpty ? nil : StatusCommand.clusterNode(ctx.paths)
    for task in tasks.sorted() {
      if let me = clusterNode {
        // The ids are the cluster's, not this node's (its hot state knows only what it claimed).
        if let note = try clusterNote(task, node: me ?? Host.name, ctx) { ctx.err(note) }
      } else if let n = TaskID.parse(task), let next = notGivenOut(n, ctx.paths) {
        throw CLIError(ExitCode.invalidSpec, "id: " + TaskID.unknown(n, next: next))
      }
    }

    func matches(_ v: JSON) -> Bool {
      if !tasks.isEmpty, !tasks.contains(v["task_id"]?.string ?? "") { return false }
      if !typeGlobs.isEmpty, !typeGlobs.contains(where: { glob($0, v["type"]?.string ?? "") }) { return false }
      if let sinceMs, let ts = v["ts"]?.string.flatMap(Timestamp.parse), ts < sinceMs { return false }
      return true
    }
    /// Writes one event; false once stdout is gone (`cortex tail -f | head -1`), which ends it.
    func emit(_ line: ArraySlice<UInt8>, _ v: JSON) -> Bool {
      var b: [UInt8]
      if ctx.json {
        b = Array(line)
        b.append(10)
      } else {
        b = Array((pretty(v, ctx) + "\n").utf8)
      }
      do throws(PosixError) { try FileDescriptor.standardOutput.writeAll(b) } catch { return false }
      return true
    }

    let segments = LogSegments.indexes((try? FileSystem.list(ctx.paths.events)) ?? [])
    if let sinceMs, let note = retainedNote(ctx.paths, segments: segments, sinceMs: sinceMs) { ctx.err(note) }
    var segment = segments.first ?? 1
    var offset = 0
    if let last {
      // The newest `last` matches, reading whole segments from the newest back; then follow from
      // the end of the last complete line.
      var found: [([UInt8], JSON)] = []
      segment = segments.last ?? 1
      for idx in segments.reversed() {
        let bytes = ((try? FileSystem.read(ctx.paths.events + "/" + LogSegments.name(idx))) ?? nil) ?? []
        let end = (bytes.lastIndex(of: 10) ?? -1) + 1
        if idx == segment { offset = end }
        if found.count >= last { break }
        var here: [([UInt8], JSON)] = []
        for line in bytes[..<end].split(separator: 10) {
          if let v = try? JSON.parse(line), matches(v) {
            here.append((Array(line), v))
            if here.count > last { here.removeFirst(here.count - last) }
          }
        }
        found = here.suffix(last - found.count) + found
      }
      for (l, v) in found where !emit(l[...], v) { return 0 }
      if !follow { return 0 }
    }
    var partial: [UInt8] = []
    // The last seq read, and where the follower stood when retention removed the segments it
    // had not read yet (it says so at the next event it finds).
    var lastSeq: Int64 = 0
    var skippedAfter: Int64? = nil
    while true {
      let path = ctx.paths.events + "/" + LogSegments.name(segment)
      var grew = false
      if let fd = try? FileDescriptor.open(path, .readOnly) {
        try? fd.seek(to: offset)
        var buf: [UInt8] = []
        while let k = try? fd.read(appendingTo: &buf, max: 1 << 20), k > 0 { offset += k }
        fd.close()
        if !buf.isEmpty {
          grew = true
          partial.append(contentsOf: buf)
          var start = 0
          while let nl = partial[start...].firstIndex(of: 10) {
            let line = partial[start..<nl]
            start = nl + 1
            guard let v = try? JSON.parse(line) else { continue }
            let seq = v["seq"]?.int ?? 0
            if let after = skippedAfter, after > 0, seq > after + 1 {
              ctx.err(
                "cortex: events seq \(after + 1)–\(seq - 1) were removed by retention (retention.log_bytes / log_days in config.json) before tail read them\n"
              )
            }
            skippedAfter = nil
            lastSeq = max(lastSeq, seq)
            if matches(v), !emit(line, v) { return 0 }
          }
          partial.removeFirst(start)
        }
      }
      let next = ctx.paths.events + "/" + LogSegments.name(segment + 1)
      if !grew && FileSystem.exists(next) {
        segment += 1
        offset = 0
        partial.removeAll()
        continue
      }
      // Retention removed this segment and the next ones while the follower was behind (its
      // reader slow, or stopped): it waited for ever for a next segment that would never come.
      // It goes on from the oldest segment left.
      if !grew && !FileSystem.exists(path),
        let later = LogSegments.indexes((try? FileSystem.list(ctx.paths.events)) ?? []).first(where: { $0 > segment })
      {
        segment = later
        offset = 0
        partial.removeAll()
        skippedAfter = lastSeq
        continue
      }
      if !grew && !follow { return 0 }
      if !grew {
        // Nothing new: stop following once the reader of stdout has gone, not at the next event.
        if FileDescriptor.standardOutput.peerClosed { return 0 }
        sleepMs(100)
      }
    }
  }

  /// Where the retained log begins, when `--since` asks for older events that retention removed.
  static func retainedNote(_ paths: Paths, segments: [Int], sinceMs: Int64) -> String? {
    let manifest = ((try? FileSystem.read(paths.manifest)) ?? nil).flatMap { try? Manifest.decode($0) }
    if let r = manifest?.removedThrough {
      guard sinceMs <= r.lastMs else { return nil }
      return
        "cortex: the log through seq \(r.lastSeq) (events until \(Timestamp.rfc3339(ms: r.lastMs))) was removed by retention (retention.log_days / log_bytes in config.json); the retained log begins at seq \(r.lastSeq + 1)\n"
    }
    guard let first = segments.first, first > 1 else { return nil }
    return "cortex: the log begins at events/\(LogSegments.name(first)); earlier segments were removed\n"
  }

  /// `*` matches any run of characters; everything else literally ("task.*", "*.failed").
  static func glob(_ pattern: String, _ s: String) -> Bool {
    let p = Array(pattern.utf8)
    let t = Array(s.utf8)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
      if pi < p.count && (p[pi] == t[ti] || p[pi] == UInt8(ascii: "?")) {
        pi += 1
        ti += 1
      } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
        star = pi
        mark = ti
        pi += 1
      } else if star >= 0 {
        pi = star + 1
        mark += 1
        ti = mark
      } else {
        return false
      }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
  }

  static func pretty(_ v: JSON, _ ctx: Context) -> String {
    let ts = v["ts"]?.string ?? ""
    let time = ts.count >= 23 ? String(ts.dropFirst(11).prefix(12)) : ts
    let type = v["type"]?.string ?? "?"
    var s = ctx.dim(time) + " "
    // Cluster mode: every line names the node that made the decision.
    if let n = v["node"]?.string { s += "[" + n + "] " }
    s += ctx.bold(type.padding(16))
    if let t = v["task_id"]?.string { s += " " + t }
    if let w = v["worker_id"]?.string { s += " " + w }
    if let a = v["attempt"]?.int, a > 1 { s += " attempt=\(a)" }
    if let r = v["reason"]?.string { s += " reason=" + r }
    for k in ["exit_code", "signal", "tokens_used", "duration_ms", "pid"] {
      if let x = v[k]?.int { s += " \(k)=\(x)" }
    }
    // A detail may quote what a task reported (its progress message): one line, no escapes.
    if let d = v["detail"]?.string { s += " — " + visible(d) }
    return s
  }
}

extension String {
  func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

extension LogCommand {
  static let help = CommandHelp(
    "log", abstract: "a task's output", usage: "cortex log ID [--follow]",
    details: "The task's output.log (its stdout and stderr together). Synthetic tasks write none.",
    flags: [.flag("-f", "--follow", help: "keep printing new output until the task finishes")], operands: .taskID,
    examples: [("cortex log -f task-000007", "follow a running task's output")])
}

extension TailCommand {
  static let help = CommandHelp(
    "tail", abstract: "the decision log, pretty or --json",
    usage: "cortex tail [-f] [--type GLOB]... [--task ID]... [--since DUR] [-n N]",
    details: """
      Reads events/*.jsonl directly (no daemon needed). Every decision is there with its reason; with \
      --json the lines are printed as written, for jq. A follower that falls behind retention (a slow \
      reader) goes on from the oldest segment left and says on stderr which events it could not show. \
      In cluster mode the log is this node's: --task of a task another node ran says which node's log \
      has its decisions.
      """,
    flags: [
      .flag("-f", "--follow", help: "keep printing new events, across segments"),
      .option("--type", value: "GLOB", help: "only event types matching GLOB, e.g. 'task.*' (repeatable: any of them)"),
      .option("--task", value: "ID", help: "only this task's events (repeatable: any of them)", completes: .taskID),
      .option("--since", value: "DUR", help: "only events of the last DUR (10m, 2h)"),
      .option("-n", "--lines", value: "N", help: "only the last N matching events", default: "all; 20 with --follow"),
    ],
    examples: [
      ("cortex tail -f --type 'task.*'", "task decisions as they happen"),
      ("cortex --json tail --task task-000012 | jq .reason", "why a task went where it went"),
    ])
}
