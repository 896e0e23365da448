import CortexCore
import Posix

/// `cortex list`
enum ListCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    var req: [(String, JSON)] = [("op", .string("list"))]
    if let s = try args.option("--state") {
      // A filter, not a task spec: a state that does not exist is a usage error (64), here.
      guard Request.listStates.contains(s) else {
        throw CLIError.usage("--state must be one of \(Request.listStates.sorted().joined(separator: ", ")), not \(quoted(s))", args.usage)
      }
      req.append(("state", .string(s)))
    }
    if let t = try args.option("--type") {
      if t.isEmpty { throw CLIError.usage("--type needs a worker type, not an empty string", args.usage) }
      req.append(("type", .string(t)))
    }
    let group = try args.option("--group")
    // A filter that no task can match (`--group "my group"`) is a usage error, not an empty list.
    if let group {
      do throws(SpecError) { _ = try FleetNames.checkGroup("--group", group) } catch {
        throw CLIError.usage("\(error.field) \(error.message)", args.usage)
      }
    }
    // `--label K` (any value) or `--label K=V`, repeatable: every one must match.
    let labels = try args.options(["--label"]).map { (l) throws(CLIError) -> (String, String?) in
      let kv = l.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
      guard !kv[0].isEmpty else { throw CLIError.usage("--label needs KEY or KEY=VALUE, not \(quoted(l))", args.usage) }
      return (kv[0], kv.count > 1 ? kv[1] : nil)
    }
    let picked = group != nil || !labels.isEmpty
    let limit = try args.intOption("--limit", "-n", min: 1, max: 100_000_000) ?? 0
    // With --group or --label the daemon sends every task and they are picked here (for older
    // finished tasks, from their files).
    req.append(("limit", .int(Int64(picked ? 0 : limit))))
    try args.noPositionals()
    let v = try Client.check(try Client(ctx).request(.object(req)))
    var tasks = v["tasks"]?.array ?? []
    if !labels.isEmpty && tasks.contains(where: { $0["node"] != nil }) {
      throw CLIError(
        ExitCode.failure, "--label: the cluster's task list has no labels; the dashboard's task list filters this node's tasks by label")
    }
    if tasks.contains(where: { $0["compact"]?.bool == true }) {
      tasks = FinishedRows.fill(tasks, paths: ctx.paths, config: FinishedRows.config(ctx.paths))
    }
    if picked {
      if let group { tasks = tasks.filter { $0["group"]?.string == group } }
      for (k, want) in labels {
        tasks = tasks.filter { t in t["labels"]?[k]?.string.map { v in want == nil || v == want } ?? false }
      }
      if limit > 0 && tasks.count > limit { tasks = Array(tasks.suffix(limit)) }
    }
    if ctx.json {
      ctx.printJSON(.array(tasks))
      return 0
    }
    // In cluster mode every row names the node that holds or ran it.
    let nodes = tasks.contains { $0["node"] != nil }
    var rows = tasks.map { t -> [String] in
      var dur = ""
      if let s = t["started_ms"]?.int { dur = formatMs((t["ended_ms"]?.int ?? Clock.wallMs()) - s) }
      if let d = t["duration_ms"]?.int { dur = formatMs(d) }
      if t["compact"]?.bool == true && t["type"] == nil {
        // An older finished task whose files are gone: only its final state is kept.
        return [t["id"]?.string ?? "", ctx.paint(t["state"]?.string ?? ""), "", "", "-", "-", "", ""]
      }
      return [
        t["id"]?.string ?? "", ctx.paint(t["state"]?.string ?? ""), t["priority"]?.string ?? "", t["type"]?.string ?? "",
        String(t["attempt"]?.int ?? 1), t["worker_id"]?.string ?? "-", dur,
        String(visible(t["description"]?.string ?? note(t)).prefix(50)),
      ]
    }
    var header = ["ID", "STATE", "PRIORITY", "TYPE", "ATTEMPT", "WORKER", "TIME", "DESCRIPTION"]
    // A GROUP column once any task runs outside the default group.
    if tasks.contains(where: { ($0["group"]?.string ?? FleetNames.defaultGroup) != FleetNames.defaultGroup }) {
      header.insert("GROUP", at: 4)
      for (i, t) in tasks.enumerated() { rows[i].insert(t["group"]?.string ?? "-", at: 4) }
    }
    if nodes {
      header.insert("NODE", at: 2)
      for (i, t) in tasks.enumerated() { rows[i].insert(t["node"]?.string ?? "-", at: 2) }
    }
    ctx.out(table(header, rows))
    return 0
  }
}

extension ListCommand {
  /// What the DESCRIPTION column says of a task without a description: why it ended, in words
  /// ("exit code 3", not the reason word exit_code), else nothing.
  static func note(_ t: JSON) -> String {
    switch t["reason"]?.string {
    case "exit_code": return t["exit_code"]?.int.map { "exit code \($0)" } ?? ""
    case "signal": return t["signal"]?.int.map { "killed by signal \($0)" } ?? ""
    case let r?: return r
    case nil: return ""
    }
  }
}

/// `cortex show ID`
enum ShowCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let ids = try args.positionals()
    guard ids.count == 1 else { throw CLIError.usage("give one task id", args.usage) }
    let client = try Client(ctx)
    let v = try Client.check(try client.request(.object([("op", .string("show")), ("id", .string(ids[0]))])))
    guard let t = v["task"] else { return 1 }
    if ctx.json {
      ctx.printJSON(t)
      return 0
    }
    var s = ""
    func row(_ k: String, _ val: String?) { if let val { s += k + String(repeating: " ", count: max(1, 16 - k.count)) + val + "\n" } }
    row("id", t["id"]?.string)
    row("state", t["state"]?.string.map { ctx.paint($0) })
    // Asked to stop (logged as task.stopping), its process group signalled; it ends when it exits.
    row("stopping", t["stopping"]?.string.map { "\($0): its process group was told to stop; it ends when it exits" })
    row("reason", t["reason"]?.string)
    row("detail", t["detail"]?.string.map(visible))
    row("type", t["type"]?.string)
    row("priority", t["priority"]?.string)
    row("group", t["group"]?.string)
    row("retry of", t["retry_of"]?.string)
    row("description", t["description"]?.string.map(visible))
    if t["not_started"]?.bool == true {
      // Queued, no attempt begun (in cluster mode: no node has claimed it): "attempt 0 of 1"
      // read as a run that had begun, or one that never would.
      let allowed = t["max_attempts"]?.int.map { "; \($0) attempt\($0 == 1 ? "" : "s") allowed" } ?? ""
      row("attempt", "not started yet\(allowed)")
    } else if let a = t["attempt"]?.int {
      row("attempt", t["max_attempts"]?.int.map { "\(a) of \($0)" } ?? String(a))
    }
    row("node", t["node"]?.string)
    // Queued again for a retry, the task still carries its last attempt's worker, pid, exit code
    // and start: they read as the new attempt's (`state queued` beside `exit code 7`) unless named.
    let last = t["state"]?.string == "queued" && (t["attempt"]?.int ?? 1) > 1 ? "last " : ""
    row(last + "worker", t["worker_id"]?.string)
    row(last + "pid", t["pid"]?.int.map { String($0) })
    row(last + "exit code", t["exit_code"]?.int.map { String($0) })
    row(last + "signal", t["signal"]?.int.map { String($0) })
    if let b = t["token_budget"]?.int { row("tokens", "\(t["tokens_used"]?.int ?? 0) used of \(b) budgeted") }
    for (k, label) in [("submitted_ms", "submitted"), ("started_ms", last + "started"), ("ended_ms", "ended")] {
      row(label, t[k]?.int.map { Timestamp.rfc3339(ms: $0) })
    }
    for k in ["submitted", "started", "ended"] { row(k, t[k]?.string) }
    if let st = t["started_ms"]?.int, let en = t["ended_ms"]?.int { row("duration", formatMs(en - st)) }
    if let d = t["duration_ms"]?.int { row("duration", formatMs(d)) }
    if let p = t["queue_position"]?.int {
      let resume = SubmitAnswer.heldByPause(t, SubmitAnswer.pauses(client))
      let est =
        resume.map { "after \($0) (held by a pause)" }
        ?? t["held_by"]?.string
        ?? t["estimated_start_in_ms"]?.int.map { "in about " + formatMs($0) } ?? "unknown (no estimate yet)"
      row("queue", "position \(p); estimated start \(est)")
    } else if t["state"]?.string == "queued", let at = t["not_before_ms"]?.int, at > Clock.wallMs() {
      // Waiting out its retry backoff (or a provider's retry_after): not in the queue yet, so
      // it has no position; it showed no queue line at all, only the last attempt's exit code.
      let attempt = t["attempt"]?.int ?? 0
      let when = "\(Timestamp.rfc3339(ms: at)) (in \(formatMs(at - Clock.wallMs())))"
      row("queue", "waiting to retry: attempt \(attempt) joins the queue at \(when)")
    } else if let resume = SubmitAnswer.heldByPause(t, SubmitAnswer.pauses(client)) {
      // In cluster mode a queued task has no place in this node's queue; a pause may hold it.
      row("queue", "held by a pause: it starts after \(resume)")
    }
    row("waiting", waiting(t))
    row("progress", t["progress"]?.double.map { "\(Int($0 * 100))%" })
    row("message", t["message"]?.string.map(visible))
    row("directory", t["dir"]?.string)
    row("details", t["retention"]?.string)
    if let spec = t["spec"] { s += "spec\n" + spec.pretty().split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n" }
    ctx.out(s)
    return 0
  }
}

extension ShowCommand {
  /// Why a queued task is not dispatched, in words: the dependencies that hold it, each with its
  /// state (`dependencies: task-000001 (running)`), or, in cluster mode, that no node has claimed
  /// it yet; else the reason word as the daemon gives it.
  static func waiting(_ t: JSON) -> String? {
    if let held = t["waiting_on"]?.array, !held.isEmpty {
      let named = held.map { "\($0["id"]?.string ?? "?") (\($0["state"]?.string ?? "unknown"))" }
      return "dependencies: " + named.joined(separator: ", ")
    }
    if t["waiting"]?.string == "unclaimed" { return "to be claimed by a node (none has claimed it yet)" }
    return t["waiting"]?.string
  }
}

/// `cortex cancel ID...`
enum CancelCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    var seen = Set<String>()
    // As the daemon names them in its answer: `task-2` is task-000002 (each id's result was
    // looked up by the text typed, missed, and printed as "cancelled", even for an unknown task).
    let ids = try args.positionals().map { TaskID.parse($0).map(TaskID.format) ?? $0 }.filter { seen.insert($0).inserted }
    if ids.isEmpty { throw CLIError.usage("give at least one task id", args.usage) }
    // Asked again after a `cortex restart` or a new start: the cancel of a running task is logged
    // before its worker is told, so the next daemon finishes it and answers.
    let request = JSON.object([("op", .string("cancel")), ("ids", .array(ids.map { .string($0) }))])
    let v = try Client.askSurvivingRestarts(ctx, try Client(ctx), request, ids)
    let results = Dictionary((v["results"]?.object ?? []).map { ($0.0, $0.1.string) }, uniquingKeysWith: { $1 })
    let unknown = ids.filter { results[$0] == "unknown task" }
    // An id that names no task is bad input, 65, said as show, wait, log, retry, edit and tail
    // --task say it (README, "Exit codes"); the ids that do name one are still cancelled.
    var error: String? = nil
    if !unknown.isEmpty {
      let note = newestHint(ctx).map { " (\(TaskID.newest(next: $0)))" } ?? ""
      error = "id: unknown task \(unknown.joined(separator: ", "))\(note)"
    }
    if ctx.json {
      // An error says so on stdout under --json (README): it printed "ok":true.
      guard let error, var o = v.object else {
        ctx.printJSON(v)
        return 0
      }
      o.removeAll { $0.0 == "ok" }
      let head: [(String, JSON)] = [
        ("ok", .bool(false)), ("code", .int(Int64(ExitCode.invalidSpec))), ("field", .string("id")), ("error", .string(error)),
      ]
      ctx.printJSON(.object(head + o))
      ctx.err("cortex: \(CortexMain.shortened(error))\n")
      return ExitCode.invalidSpec
    }
    // Looked up in a table: through the answer's object, one search per id made cancelling
    // 15,000 ids take 9 s of the CLI's CPU (debug build).
    var text = ""
    for id in ids where results[id] != "unknown task" {
      let r = results[id].flatMap { $0 } ?? "cancelled"
      text += "\(id) \(r == "cancelling" ? "cancelled" : r)\n"
    }
    ctx.err(text)
    if let error { throw CLIError(ExitCode.invalidSpec, error) }
    return 0
  }

  /// The number the next task will get, from the hot state, for "(the newest is …)"; nil in
  /// cluster mode (this node's hot state knows only the tasks it claimed) or when unreadable.
  static func newestHint(_ ctx: Context) -> Int? {
    guard StatusCommand.clusterNode(ctx.paths) == nil, let hot = try? DaemonControl.readHotState(ctx.paths) else { return nil }
    return hot.nextTask
  }
}

/// `cortex workers`, `cortex budget`, `cortex scale N`
enum PoolCommands {
  static func workers(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    try args.noPositionals()
    let v = try Client.check(try Client(ctx).request(.object([("op", .string("workers"))])))
    guard let p = v["workers"] else { return 1 }
    if ctx.json {
      ctx.printJSON(p)
      return 0
    }
    let now = Clock.wallMs()
    let rows = (p["workers"]?.array ?? []).map { w -> [String] in
      [
        w["id"]?.string ?? "", w["state"]?.string ?? "", String(w["pid"]?.int ?? 0), w["task_id"]?.string ?? "-",
        String(w["tasks_done"]?.int ?? 0), String(w["restarts"]?.int ?? 0),
        formatMs(max(0, now - (w["last_seen_ms"]?.int ?? now))) + " ago",
      ]
    }
    ctx.out(table(["WORKER", "STATE", "PID", "TASK", "DONE", "RESTARTS", "LAST SEEN"], rows))
    return 0
  }

  static func budget(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    try args.noPositionals()
    if let code = try clusterBudget(ctx) { return code }
    let v = try Client.check(try Client(ctx).request(.object([("op", .string("budget"))])))
    guard let b = v["budget"] else { return 1 }
    if ctx.json {
      ctx.printJSON(b)
      return 0
    }
    var s = ""
    for k in ["total", "reserved", "used", "available"] {
      s += k + String(repeating: " ", count: 11 - k.count) + String(b[k]?.int ?? 0) + "\n"
    }
    let allocs = b["allocations"]?.array ?? []
    if !allocs.isEmpty {
      s +=
        "\n"
        + table(
          ["TASK", "RESERVED", "USED"],
          allocs.map { [$0["task_id"]?.string ?? "", String($0["reserved"]?.int ?? 0), String($0["used"]?.int ?? 0)] })
    }
    ctx.out(s)
    return 0
  }

  static func scale(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    // `cortex scale -1` is a size out of range, not an unknown option.
    let p = !args.words.isEmpty && args.words.allSatisfy({ Int($0) != nil }) ? args.words : try args.positionals()
    guard p.count == 1 else { throw CLIError.usage("give one pool size, 1 to 1024", args.usage) }
    guard let n = Int(p[0]), n >= 1, n <= 1024 else {
      throw CLIError.usage("the pool size must be a whole number from 1 to 1024, not \(quoted(p[0]))", args.usage)
    }
    let v = try Client.check(try Client(ctx).request(.object([("op", .string("scale")), ("workers", .int(Int64(n)))])))
    if ctx.json { ctx.printJSON(v) } else { ctx.err("cortex: pool size \(v["was"]?.int ?? 0) → \(n)\n") }
    return 0
  }
}

extension ListCommand {
  static let help = CommandHelp(
    "list", abstract: "list tasks", usage: "cortex list [--state S] [--type T] [--group G] [--label K[=V]]... [--limit N]",
    details: """
      Active tasks and finished ones, oldest first. Older finished tasks (those the daemon keeps as compact records after a \
      restart or retention) are filled in from their files, tasks/<id>/result.json and spec.json; once those are removed \
      (cortex clean) they show only their final state.
      """,
    flags: [
      .option(
        "--state", value: "S", help: "only tasks in this state (active: not finished yet; done: finished)",
        choices: TaskState.allCases.map(\.rawValue) + ["active", "done"]),
      .option("--type", value: "T", help: "only tasks of this worker type", completes: .workerType),
      .option("--group", value: "G", help: "only tasks of this group", completes: .group),
      .option("--label", value: "K[=V]", help: "only tasks with this label (any value without =V; repeatable: all must match)"),
      .option("-n", "--limit", value: "N", help: "at most the newest N", default: "all"),
    ],
    examples: [("cortex list --state failed", "what failed"), ("cortex --json list | jq -r '.[].id'", "ids for a script")])
}

extension ShowCommand {
  static let help = CommandHelp(
    "show", abstract: "a task's spec, state, attempts, worker, timings, tokens and estimate", usage: "cortex show ID",
    details: """
      A queued task that has not started says so (in cluster mode: until a node claims it), and what holds it: its place in \
      the queue and estimated start, a pause or limit, or the dependencies not yet succeeded, each with its state \
      (--json: not_started, waiting, waiting_on).
      """, operands: .taskID,
    examples: [("cortex show task-000012", "everything about one task")])
}

extension CancelCommand {
  static let help = CommandHelp(
    "cancel", abstract: "cancel tasks; returns once their process groups are gone", usage: "cortex cancel ID...",
    details:
      "A queued task is cancelled at once; a running one gets SIGTERM, then SIGKILL after kill_grace_s. An id that names no task exits 65 naming it (as every command that takes ids), after the others are cancelled. In cluster mode, on a node that cannot reach PostgreSQL: 75 (cluster_unavailable) at once; the cancel is kept and carried out once it answers.",
    operands: .taskID,
    examples: [("cortex cancel task-000003 task-000004", "both, waiting until their processes are gone")])
}

extension PoolCommands {
  static let workersHelp = CommandHelp(
    "workers", abstract: "the worker pool", usage: "cortex workers",
    details: "Each worker's state, pid, current task, tasks done, restarts and when it was last heard from.",
    examples: [("cortex workers", "who is busy with what"), ("cortex --json workers", "the same, as JSON")])
  static let budgetHelp = CommandHelp(
    "budget", abstract: "the token budget and its allocations", usage: "cortex budget",
    details:
      "Total, reserved, used and available tokens, and what each running task has reserved and used. In cluster mode the budget is the cluster's, read from PostgreSQL (with this node's tasks under it).",
    examples: [("cortex budget", "what is reserved and used, and by which task"), ("cortex --json budget", "the same, as JSON")])
  static let scaleHelp = CommandHelp(
    "scale", abstract: "resize the worker pool without a restart", usage: "cortex scale N",
    details: """
      Slots 1 to N are kept: idle workers above N leave at once, busy ones after their task. N is 1 to 1024. \
      The size is kept across cortex restart, cortex stop and start, and a crash, until the next cortex scale or a \
      cortex start --workers N (which sets it the same way); config.json's workers is the size until either is used.
      """,
    examples: [("cortex scale 40", "grow the pool to 40 workers")])
}
