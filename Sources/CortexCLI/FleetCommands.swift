import CortexCore
import Posix

/// `cortex pause [GROUP]`, `cortex resume [GROUP]`: nothing new starts (in the group, or
/// anywhere); running tasks go on. `resume` without a group resumes everything paused.
enum PauseCommand {
  static let pauseUsage = "cortex pause [GROUP]"
  static let resumeUsage = "cortex resume [GROUP]"

  static func pause(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 { try run(&args, ctx, op: "pause") }
  static func resume(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 { try run(&args, ctx, op: "resume") }

  static func run(_ args: inout Args, _ ctx: Context, op: String) throws(CLIError) -> Int32 {
    let p = try args.positionals()
    guard p.count <= 1 else { throw CLIError.usage("give at most one group", args.usage) }
    var req: [(String, JSON)] = [("op", .string(op))]
    if let g = p.first { req.append(("group", .string(g))) }
    let client = try Client(ctx)
    // Pausing a group nobody has named yet is allowed (hold it before its tasks come), but is
    // more often a typo: the groups known before the pause tell which.
    var known: [String]? = nil
    if op == "pause", let g = p.first, !ctx.json {
      let groups = try? Client.check(try client.request(.object([("op", .string("groups"))])))
      known = groups?["groups"]?.array?.compactMap { $0["name"]?.string }
      // In cluster mode a group this node never saw may be the cluster's (another node's tasks).
      if known?.contains(g) == false, GroupCommand.clusterKnows(ctx, group: g) == true { known = nil }
    }
    let v = try Client.check(try client.request(.object(req)))
    if ctx.json {
      ctx.printJSON(v)
      return 0
    }
    let names = v["changed"]?.array?.compactMap(\.string) ?? []
    let changed = !names.isEmpty
    let what = p.first.map { "group \($0)" } ?? (op == "pause" ? "the queue" : resumed(names))
    let said: String
    if changed {
      said = "\(what) \(op == "pause" ? "paused" : "resumed")"
    } else if op == "pause" {
      said = "\(what) was already paused"
    } else {
      said = p.first == nil ? "nothing was paused" : "\(what) was not paused"
    }
    ctx.err("cortex: \(said)\n")
    // A group resumed under a paused queue still starts nothing: `cortex pause`, later
    // `cortex resume api`, and the api tasks sat queued with "resumed" the last word.
    if op == "resume", let g = p.first,
      (try? Client.check(try client.request(.object([("op", .string("groups"))]))))?["paused"]?.bool == true
    {
      ctx.err("cortex: the whole queue is still paused, so group \(g) starts nothing yet (cortex resume, with no group, resumes it)\n")
    }
    if let g = p.first, let known, !known.contains(g) {
      let near = Suggest.nearest(g, among: known).map { "did you mean \(quoted($0))? " } ?? ""
      ctx.err(
        "cortex: no task or setting has named group \(g) yet; \(near)cortex group lists the groups (cortex resume \(g) undoes this)\n")
    }
    return 0
  }

  /// What a `resume` of everything resumed, by name (`*` is the queue): "the queue and groups
  /// batch, llm" (in cluster mode, every group paused in the cluster).
  static func resumed(_ changed: [String]) -> String {
    let groups = changed.filter { $0 != "*" }
    let named = groups.isEmpty ? nil : "group\(groups.count == 1 ? "" : "s") \(groups.joined(separator: ", "))"
    return [changed.contains("*") ? "the queue" : nil, named].compactMap { $0 }.joined(separator: " and ")
  }
}

/// `cortex group [list]`, `cortex group set NAME --parallel N`
enum GroupCommand {
  static let usage = "cortex group [list] | cortex group set NAME --parallel N"

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let parallel = try args.intOption("--parallel", min: 0, max: 1_000_000)
    let p = try args.positionals()
    let client = try Client(ctx)
    switch p.first {
    case nil, "list":
      guard p.count <= 1, parallel == nil else { throw CLIError.usage("group list takes no arguments", usage) }
      let v = try Client.check(try client.request(.object([("op", .string("groups"))])))
      // In cluster mode the table counts this node's tasks; the cluster's come from PostgreSQL.
      let cluster = clusterGroups(ctx)
      if ctx.json {
        guard let cluster, case .object(var o) = v else {
          ctx.printJSON(v)
          return 0
        }
        switch cluster {
        case .success(let groups): o.append(("cluster_groups", .array(groups.map { $0.json() })))
        case .failure(let e): o.append(("cluster_groups_error", .string(e.description)))
        }
        ctx.printJSON(.object(o))
        return 0
      }
      if v["paused"]?.bool == true { ctx.out("the whole queue is PAUSED (cortex resume)\n") }
      ctx.out(groupTable(v["groups"]?.array ?? []))
      switch cluster {
      case nil: break
      case .success(let groups) where groups.isEmpty:
        ctx.out("the counts above are this node's; the cluster pauses or limits no group\n")
      case .success(let groups):
        ctx.out("the counts above are this node's; the cluster's: " + groups.map(\.text).joined(separator: "; ") + "\n")
      case .failure(let e):
        ctx.err("cortex: the counts above are this node's; the cluster's cannot be read: \(e)\n")
      }
      return 0
    case "set":
      guard p.count == 2 else { throw CLIError.usage("give one group name", usage) }
      guard let parallel else { throw CLIError.usage("group set needs --parallel N (0 = no limit)", usage) }
      let v = try Client.check(
        try client.request(
          .object([("op", .string("group_set")), ("group", .string(p[1])), ("parallel", .int(Int64(parallel)))])))
      if ctx.json {
        ctx.printJSON(v)
      } else {
        ctx.err("cortex: group \(p[1]): parallel \(parallel == 0 ? "no limit" : String(parallel))\n")
      }
      return 0
    default:
      throw CLIError.usage("unknown group command \(quoted(p[0]))", usage)
    }
  }

  static func groupTable(_ groups: [JSON]) -> String {
    let rows = groups.map { g -> [String] in
      let par = g["parallel"]?.int ?? 0
      var rate = "-"
      if let r = g["rate"] {
        var parts: [String] = []
        if let a = r["starts_per_min_allowed"]?.double {
          parts.append("\(Numbers.text(a))/\(Numbers.text(r["starts_per_min_limit"]?.double ?? a)) starts/min")
        }
        if let t = r["tokens_per_min_limit"]?.int { parts.append("\(t) tokens/min") }
        if let n = r["rate_limited"]?.int, n > 0 { parts.append("\(n) rate limited") }
        rate = parts.joined(separator: ", ")
      }
      return [
        g["name"]?.string ?? "", g["paused"]?.bool == true ? "paused" : "running",
        "\(g["running"]?.int ?? 0)/\(par == 0 ? "-" : String(par))", String(g["queued"]?.int ?? 0), String(g["started"]?.int ?? 0), rate,
      ]
    }
    return table(["GROUP", "STATE", "RUNNING", "QUEUED", "STARTED", "RATE"], rows)
  }
}

/// `cortex retry [-p] [ID...] [--all-failed]`: each finished task submitted again as a new task
/// (`retry_of` names the old one); prints the new ids.
enum RetryCommand {
  static let usage = "cortex retry [-p] ID... [--all-failed] | cortex retry [-p] --all-failed"

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let idsOnly = args.flag("-p")
    let all = args.flag("--all-failed")
    let ids = try args.positionals()
    if ids.isEmpty && !all { throw CLIError.usage("give task ids, or --all-failed", usage) }
    var req: [(String, JSON)] = [("op", .string("retry"))]
    if !ids.isEmpty { req.append(("ids", .array(ids.map { .string($0) }))) }
    if all { req.append(("all_failed", .bool(true))) }
    let v = try ask(ctx, .object(req))
    let new = v["ids"]?.array?.compactMap(\.string) ?? []
    let old = v["retried"]?.array?.compactMap(\.string) ?? []
    let skipped = v["skipped"]?.array ?? []
    let withoutSpec = v["without_spec"]?.int ?? 0
    if ctx.json && !idsOnly {
      ctx.printJSON(v)
    } else if idsOnly || new.isEmpty {
      if !new.isEmpty { ctx.out(new.joined(separator: "\n") + "\n") }
      if new.isEmpty && skipped.isEmpty && withoutSpec == 0 {
        ctx.err("cortex: nothing to retry: no failed or timed-out task that is not retried already\n")
      }
    } else {
      for (i, n) in new.enumerated() { ctx.out("\(n)\(i < old.count ? "  (retry of \(old[i]))" : "")\n") }
    }
    // Failures --all-failed found but cannot retry (secret values no longer kept, spec.json gone):
    // named every time, so none is left behind silently.
    if !(ctx.json && !idsOnly) {
      for s in skipped { ctx.err("cortex: not retried: \(s["why"]?.string ?? s["id"]?.string ?? "")\n") }
      if withoutSpec > 0 {
        ctx.err(
          "cortex: not retried: \(withoutSpec) earlier failure\(withoutSpec == 1 ? "" : "s") with no spec kept (synthetic tasks, or task directories removed by retention or cortex clean)\n"
        )
      }
    }
    return 0
  }
}

extension RetryCommand {
  /// Sends the retry. A daemon that goes away after it has the request (stopped, `daemon_stopped`;
  /// or killed, the connection closed) may or may not have submitted the new tasks: the error
  /// says so and where to look, instead of "closed the connection before answering" alone. Not
  /// asked again: a retry is a new task each time.
  static func ask(_ ctx: Context, _ request: JSON) throws(CLIError) -> JSON {
    let client = try Client(ctx)
    do throws(CLIError) {
      return try Client.check(try client.request(request))
    } catch  where error.code == ExitCode.notRunning && (error.answer == nil || error.answer?["reason"]?.string == "daemon_stopped") {
      throw CLIError(
        ExitCode.notRunning,
        "\(error.answer == nil ? error.description : "the daemon stopped (cortex stop, or SIGTERM) before it answered") "
          + "while the retry was under way: whether it submitted the new tasks is not known; once a daemon runs (\(ctx.startAdvice)), "
          + "cortex list shows them (cortex show of each names the task it retries), and cortex retry --all-failed retries only failures not retried already",
        answer: error.answer)
    }
  }
}

/// `cortex edit ID [--priority P] [--group G] [--label K=V]... [--timeout DUR] [--env K=V]...
/// [--shell STR | -- CMD ARGS]`: changes a queued task; logged with before and after.
enum EditCommand {
  static let usage =
    "cortex edit ID [--priority P] [--group G] [--label K=V]... [--timeout DUR] [--env K=V]... [--shell STR | -- CMD [ARGS...]]"

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    var set: [(String, JSON)] = []
    if let p = try args.option("--priority") { set.append(("priority", .string(p))) }
    if let g = try args.option("--group") { set.append(("group", .string(g))) }
    if let t = try args.option("--timeout") { set.append(("timeout_s", .double(try SubmitCommand.timeoutSeconds(t)))) }
    let labels = try SubmitCommand.pairs(try args.options(["--label"]), "labels")
    if !labels.isEmpty { set.append(("labels", .object(labels))) }
    let env = try SubmitCommand.pairs(try args.options(["--env"]), "env")
    if !env.isEmpty { set.append(("env", .object(env))) }
    if let s = try args.option("--shell") { set.append(("shell", .string(s))) }
    let argv = args.afterDashDash
    if !argv.isEmpty { set.append(("command", .array(argv.map { .string($0) }))) }
    let ids = try args.positionals()
    guard ids.count == 1 else { throw CLIError.usage("give one task id", usage) }
    if set.isEmpty { throw CLIError.usage("nothing to change", usage) }
    let v = try Client.check(
      try Client(ctx).request(.object([("op", .string("edit")), ("id", .string(ids[0])), ("set", .object(set))])))
    // Named as the daemon names it (`task-6` is task-000006), as cancel does.
    let id = TaskID.parse(ids[0]).map(TaskID.format) ?? ids[0]
    // The fields whose values changed, as the daemon found them (an edit to the values a task
    // already has changes nothing and is not logged).
    let changed = v["changed"]?.array?.compactMap(\.string) ?? set.map(\.0)
    if ctx.json {
      ctx.printJSON(v["task"] ?? v)
    } else if changed.isEmpty {
      ctx.err("cortex: \(id) unchanged: it already has \(set.count == 1 ? "that value" : "those values")\n")
    } else {
      ctx.err("cortex: \(id) changed: \(changed.joined(separator: ", "))\n")
    }
    return 0
  }
}

/// The groups as the daemon last wrote them to `groups.json` (no request to the daemon), for
/// `cortex status` and `cortex top`.
enum GroupsFile {
  static func read(_ paths: Paths) -> JSON? {
    guard let bytes = (try? FileSystem.read(paths.groups)) ?? nil else { return nil }
    return try? JSON.parse(bytes)
  }

  /// The node's groups, with (in cluster mode) `running` and `queued` of each group the cluster
  /// pauses or limits replaced by the whole cluster's (`cluster_groups`, as the daemon last read
  /// them): set against the cluster's limit, this node's own count misleads ("api 0/2" on an
  /// idle node while another runs two). Also the names of the groups so counted.
  static func groups(_ v: JSON) -> (groups: [JSON], clusterCounted: [String]) {
    var groups = v["groups"]?.array ?? []
    guard let cluster = v["cluster_groups"]?.array else { return (groups, []) }
    var counted: [String] = []
    for c in cluster {
      guard let name = c["name"]?.string else { continue }
      counted.append(name)
      let counts: [(String, JSON)] = [("running", c["running"] ?? .int(0)), ("queued", c["queued"] ?? .int(0))]
      if let i = groups.firstIndex(where: { $0["name"]?.string == name }), case .object(var o) = groups[i] {
        o = o.filter { $0.0 != "running" && $0.0 != "queued" } + counts
        groups[i] = .object(o)
      } else {
        groups.append(
          .object([("name", .string(name)), ("paused", c["paused"] ?? .bool(false)), ("parallel", c["parallel"] ?? .int(0))] + counts))
      }
    }
    return (groups, counted)
  }

  /// Lines for people: nothing when only the default group exists with no limit and nothing is
  /// paused. `clusterUnreachable`: the node cannot reach PostgreSQL (the cluster's counts are as
  /// last read).
  static func summary(_ v: JSON?, clusterUnreachable: Bool = false) -> String {
    guard let v else { return "" }
    let (groups, counted) = Self.groups(v)
    let paused = v["queue_paused"]?.bool == true
    let interesting = groups.contains { g in
      g["name"]?.string != FleetNames.defaultGroup || (g["parallel"]?.int ?? 0) > 0 || g["paused"]?.bool == true || g["rate"] != nil
    }
    var s = ""
    if paused { s += "paused     the whole queue: nothing new starts (cortex resume)\n" }
    if interesting {
      s += "\n" + GroupCommand.groupTable(groups)
      if v["cluster_groups"] != nil {
        s +=
          counted.isEmpty
          ? "the counts above are this node's; the cluster pauses or limits no group\n"
          : "RUNNING and QUEUED of \(counted.joined(separator: ", ")) are the whole cluster's (the groups it pauses or limits)"
            + (clusterUnreachable ? ", as last read before PostgreSQL became unreachable" : "") + "; the rest is this node's\n"
      }
    }
    return s
  }

  /// One line for `cortex top`.
  static func line(_ v: JSON?) -> String {
    guard let v else { return "" }
    let groups = Self.groups(v).groups.filter { g in
      g["name"]?.string != FleetNames.defaultGroup || (g["parallel"]?.int ?? 0) > 0 || g["paused"]?.bool == true
    }
    var parts: [String] = []
    if v["queue_paused"]?.bool == true { parts.append("QUEUE PAUSED") }
    for g in groups.prefix(8) {
      let par = g["parallel"]?.int ?? 0
      var p = "\(g["name"]?.string ?? "") \(g["running"]?.int ?? 0)/\(par == 0 ? "-" : String(par)) q\(g["queued"]?.int ?? 0)"
      if g["paused"]?.bool == true { p += " paused" }
      if let a = g["rate"]?["starts_per_min_allowed"]?.double { p += " \(Numbers.text(a))/min" }
      parts.append(p)
    }
    if groups.count > 8 { parts.append("+\(groups.count - 8) more") }
    return parts.isEmpty ? "" : "groups    " + parts.joined(separator: "  ") + "\n"
  }
}

extension PauseCommand {
  static let pauseHelp = CommandHelp(
    "pause", abstract: "start nothing new (in one group, or anywhere); running tasks go on", usage: pauseUsage,
    details:
      "A logged decision: it survives a restart or kill -9. Tasks still queue while paused. In cluster mode it acts on the whole cluster: no node takes a new task (of the group).",
    operands: .group, examples: [("cortex pause", "hold the whole queue"), ("cortex pause batch", "hold only the group batch")])
  static let resumeHelp = CommandHelp(
    "resume", abstract: "start tasks again (one group, or everything paused)", usage: resumeUsage,
    details:
      "Without a group, the queue and every paused group resume. A group resumed while the whole queue is paused starts nothing yet (it says so). In cluster mode it resumes the whole cluster.",
    operands: .group, examples: [("cortex resume batch", "let the group batch start tasks again")])
}

extension GroupCommand {
  static let help = CommandHelp(
    "group", abstract: "groups: list them, or set a group's parallel limit", usage: usage,
    details:
      "A group's parallel limit is the most of its tasks running at once (0: no limit). Set live here, or under \"groups\" in config.json; a kill -HUP reloads the file's limits. In cluster mode a limit set here holds for the whole cluster (config.json's limits only seed groups the cluster does not know yet); the table counts this node's tasks, and a line after it the cluster's (--json: cluster_groups).",
    flags: [.option("--parallel", value: "N", help: "with set: the most of the group's tasks running at once (0 = no limit)")],
    operandWords: ["list", "set"], secondOperand: ["set": .group],
    examples: [("cortex group", "every group, its limits and what runs"), ("cortex group set batch --parallel 4", "at most 4 at once")])
}

extension RetryCommand {
  static let help = CommandHelp(
    "retry", abstract: "submit finished tasks again as new tasks (retry_of); prints the new ids", usage: usage,
    details:
      "Each new task has the old one's spec (and secrets) and names it in retry_of; the old task is left as it ended. "
      + "A task that ended before the daemon last started is retried from its tasks/<id>/spec.json; if its spec had "
      + "secret values, they are no longer kept and it is refused (exit 65): submit it again with them.",
    flags: [
      .flag("-p", help: "print only the new ids"),
      .flag(
        "--all-failed",
        help:
          "every failed or timed-out task not retried already (also from before a restart), beside any ids named; those that cannot be are named on stderr"
      ),
    ], operands: .taskID,
    examples: [("cortex retry task-000007", "run it again as a new task"), ("cortex retry -p --all-failed", "every failure, ids only")])
}

extension EditCommand {
  static let help = CommandHelp(
    "edit", abstract: "change a queued task (priority, group, labels, timeout, command, env)", usage: usage,
    details:
      "Only a queued task can be edited (in cluster mode: one no node has claimed yet, from any node). The change is logged as task.edited with before and after (secrets redacted).",
    flags: [
      .option("--priority", value: "P", help: "new priority", choices: ["critical", "high", "medium", "low"]),
      .option("--group", value: "G", help: "move it to this group", completes: .group),
      .option("--label", value: "K=V", help: "set a label (repeatable)"),
      .option("--timeout", value: "DUR", help: "new timeout, like 30s, 5m or 1h"),
      .option("--env", value: "K=V", help: "set an environment variable (repeatable)"),
      .option("--shell", value: "STR", help: "replace what it runs with a shell command line"),
    ], operands: .taskID,
    examples: [("cortex edit task-000009 --priority high", "move it up"), ("cortex edit task-000009 -- make test", "run another command")])
}

extension CancelCommand {
  static let killHelp = CommandHelp(
    "kill", abstract: "cancel running tasks (the same as cancel)", usage: "cortex kill ID...",
    details: "The name people reach for: exactly `cortex cancel`.", operands: .taskID,
    examples: [("cortex kill task-000003", "stop it; returns once its processes are gone")])
}
