import CortexCore
import Posix

/// `cortex submit` (alias `cortex task create`): builds task specs from flags or a JSONL batch.
/// The daemon validates every field; flags that cannot even be read are refused here (exit 64/65).
enum SubmitCommand {
  static let usage = """
    cortex submit [--shell STR | --synthetic MS[:TOKENS] | --type T --description D] [--priority P] [--group G]
                         [--tokens N] [--timeout DUR] [--retries N] [--after ID,...] [--label K=V] [--env K=V]
                         [--cwd DIR] [--no-env] [--idempotency-key K] [--sla DUR | --sla-deadline TIME] [--from FILE|-] [--wait] [-p] [-- CMD [ARGS...]]
    """

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let announce = args.flag("-v", "--verbose") || SubmitAnswer.invokedAsTaskCreate
    let wait = args.flag("--wait")
    let idsOnly = args.flag("-p")
    let from = try args.option("--from")
    let inheritEnv = !args.flag("--no-env")
    var spec: [(String, JSON)] = []
    func put(_ k: String, _ v: JSON) { spec.append((k, v)) }
    if let s = try args.option("--shell") { put("shell", .string(s)) }
    if let s = try args.option("--synthetic") { put("synthetic", try synthetic(s)) }
    if let t = try args.option("--type") { put("type", .string(t)) }
    if let d = try args.option("--description", "-d") {
      // Empty, it was routed anyway and became an agent's empty prompt (tokens spent on nothing).
      if d.allSatisfy(\.isWhitespace) {
        throw CLIError.usage("--description needs text that says what the task is, not \(quoted(d))", usage)
      }
      put("description", .string(d))
    }
    if let p = try args.option("--priority") { put("priority", .string(p)) }
    if let g = try args.option("--group") { put("group", .string(g)) }
    if let t = try args.option("--tokens") {
      guard let n = Int64(t) else { throw CLIError(ExitCode.invalidSpec, "token_budget: must be a whole number, not \(quoted(t))") }
      put("token_budget", .int(n))
    }
    if let t = try args.option("--timeout") { put("timeout_s", .double(try timeoutSeconds(t))) }
    if let r = try args.option("--retries") {
      guard let n = Int64(r), n >= 0, n <= 99 else {
        throw CLIError(ExitCode.invalidSpec, "max_attempts: --retries must be a whole number from 0 to 99, not \(quoted(r))")
      }
      put("max_attempts", .int(n + 1))
    }
    // "task-000001, task-000002" (a space after the comma) names two tasks, as without it.
    let afterGiven = try args.options(["--after"])
    let after = afterGiven.flatMap { $0.split(separator: ",") }
      .map { String($0.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }.filter { !$0.isEmpty }
    // `--after "$ID"` with ID unset would otherwise run the task at once, waiting for nothing.
    if let empty = afterGiven.first(where: { !$0.contains { $0 != "," && $0 != " " } }) {
      throw CLIError(ExitCode.invalidSpec, "depends_on: --after \(quoted(empty)) names no task; give task ids like task-000012")
    }
    if !after.isEmpty { put("depends_on", .array(after.map { .string($0) })) }
    let labels = try pairs(try args.options(["--label"]), "labels")
    if !labels.isEmpty { put("labels", .object(labels)) }
    let env = try pairs(try args.options(["--env"]), "env")
    if !env.isEmpty { put("env", .object(env)) }
    if let k = try args.option("--idempotency-key") { put("idempotency_key", .string(k)) }
    if let d = try args.option("--sla") {
      guard let ms = DurationText.parseMs(d) else {
        throw CLIError(ExitCode.invalidSpec, "sla_deadline: --sla \(quoted(d)) is not a duration like 30s, 5m or 1h")
      }
      put("sla_deadline", .string(Timestamp.rfc3339(ms: Clock.wallMs() + ms)))
    }
    if let d = try args.option("--sla-deadline") { put("sla_deadline", .string(d)) }
    let cwd = try args.option("--cwd")
    let argv = args.afterDashDash
    try commandNeedsDashDash(args.words, argv)
    try args.noPositionals()
    if !argv.isEmpty { put("command", .array(argv.map { .string($0) })) }
    if from == nil, let d = spec.first(where: { $0.0 == "description" })?.1.string,
      !spec.contains(where: { ["type", "command", "shell", "synthetic"].contains($0.0) })
    {
      let decision = try SubmitRouting.route(d, ctx)
      ctx.err(SubmitRouting.line(decision))
      put("type", .string(decision.type))
      put("routed", RouteNote(decision).json())
    }

    var specs: [JSON] = []
    var lines: [Int] = []
    var single: [UInt8]? = nil
    if let from {
      if !argv.isEmpty { throw CLIError.usage("give either --from or a command, not both", usage) }
      try batchTakesNoSpecFlags(spec)
      (specs, lines) = try readBatch(from)
      var dir: String?? = nil
      func directory() throws(CLIError) -> String? {
        if dir == nil { dir = .some(try workingDirectory(cwd)) }
        return dir!
      }
      // A --cwd given is checked whether or not a line needs it; the working directory only when one does.
      if cwd != nil { _ = try directory() }
      specs = try specs.map { (s) throws(CLIError) in try withDirectory(s, directory) }
      if inheritEnv { specs = specs.map(withCallerEnvironment) }
    } else {
      let runsSomething = spec.contains { ["command", "shell"].contains($0.0) } || spec.contains { $0.0 == "type" }
      if runsSomething, let dir = try workingDirectory(cwd) { put("cwd", .string(dir)) }
      single = request(spec, inheritEnv: inheritEnv)
    }

    let client = try Client(ctx)
    let answer: JSON
    do {
      if let single {
        try client.send(encoded: single)
        answer = try Client.check(try client.receive())
      } else {
        answer = try Client.check(try submitBatch(specs, on: client))
      }
    } catch {
      if error.code == ExitCode.notRunning && (error.answer == nil || error.answer?["reason"]?.string == "daemon_stopped") {
        // Connected, then the daemon went away before it answered (`cortex restart`, a crash),
        // or stopped first (`daemon_stopped`: in cluster mode, before the database answered):
        // the submit may or may not be on record. Say so, and how to repeat it safely; not
        // "refused", which says it was not accepted.
        let what = single == nil ? "the \(specs.count) tasks were" : "the task was"
        let stopped = error.answer != nil
        throw CLIError(
          error.code,
          (stopped ? "the daemon stopped (cortex stop, or SIGTERM) before it answered (daemon_stopped)" : error.description)
            + ": whether \(what) accepted is not known ("
            + (stopped ? "\(ctx.startAdvice), then cortex list shows what it has" : "cortex list shows what the daemon has") + "); "
            + (single == nil ? "a batch whose lines carry an idempotency_key" : "a submit with --idempotency-key K") + " is safe to repeat")
      }
      let error = SubmitRouting.withAgentOnPath(error)
      // The daemon names the spec by its position; a --from file's reader wants the line too.
      // A batch of one task is answered as a one-task submit, without a position: it is line 1's.
      let position = error.answer?["position"]?.int ?? (lines.count == 1 && error.answer?["field"] != nil ? 1 : nil)
      guard let from, let p = position, p >= 1, p <= lines.count else { throw error }
      throw CLIError(error.code, "\(from == "-" ? "stdin" : from) line \(lines[Int(p) - 1]): \(error.description)", answer: error.answer)
    }
    let ids = answer["ids"]?.array?.compactMap(\.string) ?? []
    let answerLines = announce && !idsOnly && !ctx.json && ids.count == 1
    if !wait {
      if ctx.json && !idsOnly { ctx.printJSON(answer) } else { ctx.out(idLines(ids)) }
      if answerLines { ctx.err(SubmitAnswer.lines(ctx, client, ids[0])) }
      return 0
    }
    if !ctx.json || idsOnly { ctx.out(idLines(ids)) }
    if answerLines { ctx.err(SubmitAnswer.lines(ctx, client, ids[0])) } else { SubmitAnswer.notePauses(ctx, client, ids) }
    let done = try Client.waitSurvivingRestarts(ctx, client, ids)
    if ctx.json { ctx.printJSON(done) }
    return WaitCommand.exitCode(done, ctx, quiet: ctx.json)
  }

  /// One id per line (a lone newline for none). Not `joined(separator:)`: its generic code looks
  /// an associated type up at run time, which cost an eighth of a `cortex submit`'s instructions.
  static func idLines(_ ids: [String]) -> String {
    if ids.isEmpty { return "\n" }
    var s = ""
    for id in ids {
      s += id
      s += "\n"
    }
    return s
  }

  /// A command or shell task runs with the submitter's environment (as Pueue does), under the
  /// spec's own `env`, which wins. Secret values among it are kept out of the log by the daemon
  /// (SPEC §9). Synthetic tasks run nothing and get none; `--no-env` turns it off.
  static func withCallerEnvironment(_ spec: JSON) -> JSON {
    guard var o = spec.object, spec["synthetic"] == nil || spec["synthetic"]?.isNull == true else { return spec }
    var own = spec["env"]?.object ?? []
    let given = own.map(\.0)
    for (name, value) in Environment.pairs() where inherited(name) && !given.contains(name) {
      own.append((name, .string(value)))
    }
    if own.isEmpty { return spec }
    o.removeAll { $0.0 == "env" }
    o.append(("env", .object(own)))
    return .object(o)
  }

  /// The request of a one-task submit, encoded straight to bytes: the same text as
  /// `{"op":"submit","tasks":[withCallerEnvironment(.object(spec))]}` encoded, but the caller's
  /// environment goes from environ(7) into the request without a String or a `JSON` value made
  /// (and freed) per variable, which were a third of a `cortex submit`'s instructions.
  static func request(_ spec: [(String, JSON)], inheritEnv: Bool) -> [UInt8] {
    let synthetic = spec.first { $0.0 == "synthetic" }.map { !$0.1.isNull } ?? false
    let withEnv = inheritEnv && !synthetic
    var w = JSONWriter(capacity: 8192)
    w.beginObject()
    w.field("op", "submit")
    w.key("tasks")
    w.beginArray()
    w.beginObject()
    var own: [(String, JSON)] = []
    for (k, v) in spec {
      if withEnv && k == "env" {
        if own.isEmpty { own = v.object ?? [] }
        continue
      }
      w.key(k)
      w.value(v)
    }
    if withEnv {
      // The spec's own `env` (from --env) first; an inherited variable it names is left out.
      var open = !own.isEmpty
      if open {
        w.key("env")
        w.beginObject()
        for (k, v) in own {
          w.key(k)
          w.value(v)
        }
      }
      let given = own.map { Array($0.0.utf8) }
      Environment.forEachPair { name, value in
        guard inherited(name) else { return }
        if !given.isEmpty && given.contains(where: { $0.elementsEqual(name) }) { return }
        if !open {
          w.key("env")
          w.beginObject()
          open = true
        }
        w.key(utf8: name)
        w.string(utf8: value)
      }
      if open { w.endObject() }
    }
    w.endObject()
    w.endArray()
    w.endObject()
    return w.bytes
  }

  /// A variable a task inherits: a plain name (letters, digits, `_`), not the shell's own
  /// bookkeeping (`_`, `PWD`, `OLDPWD`, `SHLVL`) and not Cortex's (`CORTEX_*`). Checked on bytes:
  /// it runs for every variable of every submit.
  static func inherited(_ name: String) -> Bool {
    var name = name
    return name.withUTF8 { inherited($0) }
  }

  static func inherited(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
    guard let f = utf8.first, f == 95 || (f >= 65 && f <= 90) || (f >= 97 && f <= 122) else { return false }
    guard utf8.allSatisfy({ $0 == 95 || ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) }) else {
      return false
    }
    if utf8.starts(with: "CORTEX_".utf8) { return false }
    switch utf8.count {
    case 1: return f != 95
    case 3: return !utf8.elementsEqual("PWD".utf8)
    case 5: return !utf8.elementsEqual("SHLVL".utf8)
    case 6: return !utf8.elementsEqual("OLDPWD".utf8)
    default: return true
    }
  }

  /// Largest request line the CLI sends; the daemon's limit (`max_request_bytes`) is far above it.
  static let partBytes = 1 << 20

  /// Sends the batch in parts of at most `partBytes` (a part holds at least one spec): every
  /// part but the last says `"more": true` (and every part the batch's `"count"`) and is answered
  /// `{"ok":true,"held":N}`; the last is
  /// answered for the whole batch, which the daemon admits or refuses as one. Returns that
  /// answer, or the first refusal.
  static func submitBatch(_ specs: [JSON], on client: Client) throws(CLIError) -> JSON {
    // One task (a shell loop's submit): one request, encoded once.
    if specs.count == 1 { return try client.request(.object([("op", .string("submit")), ("tasks", .array(specs))])) }
    var parts: [[JSON]] = [[]]
    var size = 0
    for s in specs {
      let n = s.encodedBytes().count + 1
      if !parts[parts.count - 1].isEmpty && size + n > partBytes {
        parts.append([])
        size = 0
      }
      parts[parts.count - 1].append(s)
      size += n
    }
    for (i, part) in parts.enumerated() {
      var req: [(String, JSON)] = [("op", .string("submit")), ("tasks", .array(part))]
      let last = i == parts.count - 1
      if !last { req.append(("more", .bool(true))) }
      if parts.count > 1 { req.append(("count", .int(Int64(specs.count)))) }
      let answer = try client.request(.object(req))
      if last || answer["ok"]?.bool != true { return answer }
    }
    return .null
  }

  /// "200" or "200:1200" (duration ms, tokens).
  static func synthetic(_ s: String) throws(CLIError) -> JSON {
    let parts = s.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count <= 2, let ms = Int64(parts[0]), ms >= 0 else {
      throw CLIError(ExitCode.invalidSpec, "synthetic: \(quoted(s)) is not MS or MS:TOKENS")
    }
    var o: [(String, JSON)] = [("duration_ms", .int(ms))]
    if parts.count == 2 {
      guard let t = Int64(parts[1]), t >= 0 else {
        throw CLIError(ExitCode.invalidSpec, "synthetic.tokens: \(quoted(parts[1])) is not a whole number of 0 or more")
      }
      o.append(("tokens", .int(t)))
    }
    return .object(o)
  }

  static func pairs(_ raw: [String], _ field: String) throws(CLIError) -> [(String, JSON)] {
    var out: [(String, JSON)] = []
    for r in raw {
      guard let eq = r.firstIndex(of: "="), eq != r.startIndex else {
        throw CLIError(ExitCode.invalidSpec, "\(field): \(quoted(r)) is not KEY=VALUE")
      }
      out.append((String(r[..<eq]), .string(String(r[r.index(after: eq)...]))))
    }
    return out
  }
}

extension SubmitCommand {
  /// `--timeout DUR` of submit and edit, in seconds. A positive duration under 1 ms (the unit
  /// timeouts are kept in) is refused as such: rounded, it would be reported as "not 0".
  static func timeoutSeconds(_ t: String) throws(CLIError) -> Double {
    guard let ms = DurationText.parseMs(t) else {
      throw CLIError(ExitCode.invalidSpec, "timeout_s: \(quoted(t)) is not a duration like 30s, 5m, 1h or 2h30m (at most 7d)")
    }
    if ms == 0 && t.contains(where: { ("1"..."9").contains($0) }) {
      throw CLIError(ExitCode.invalidSpec, "timeout_s: \(quoted(t)) is shorter than 1 ms, the shortest timeout")
    }
    return Double(ms) / 1000
  }
}

/// `cortex wait ID...`
enum WaitCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let ids = try args.positionals()
    if ids.isEmpty { throw CLIError.usage("give at least one task id", args.usage) }
    let client = try Client(ctx)
    SubmitAnswer.notePauses(ctx, client, ids)
    let done = try Client.waitSurvivingRestarts(ctx, client, ids)
    if ctx.json { ctx.printJSON(done) }
    return exitCode(done, ctx, quiet: ctx.json)
  }

  /// The one exit-code rule of `cortex wait` and `cortex submit --wait` (README, docs/design.md).
  /// One task: `code(of:)`. Several: 0 if all succeeded, else 1.
  static func exitCode(_ done: JSON, _ ctx: Context, quiet: Bool) -> Int32 {
    let tasks = done["tasks"]?.array ?? []
    var allOK = true
    for t in tasks {
      let id = t["id"]?.string ?? "?"
      let state = t["state"]?.string ?? "?"
      if state != "succeeded" { allOK = false }
      if !quiet {
        var line = "\(id) \(ctx.paint(state))"
        if let c = t["exit_code"]?.int, state != "succeeded" { line += " (exit code \(c))" }
        if let s = t["signal"]?.int, state != "succeeded" { line += " (signal \(s))" }
        // The sentence beside the word ("agent_not_found: codex not found on PATH; …"), as show
        // and log have it; a reason that is the exit code or the signal said above is not
        // repeated ("failed (exit code 1) (exit_code)").
        if let r = t["reason"]?.string, !["exit_code", "signal"].contains(r) {
          line += " (\(r)\(t["detail"]?.string.map { ": " + visible($0) } ?? ""))"
        }
        if let e = t["ended"]?.string { line += " (ended \(e))" }
        if let r = t["retention"]?.string { line += " (\(r))" }
        ctx.err(line + "\n")
      }
    }
    if tasks.count == 1 { return code(of: tasks[0]) }
    return allOK ? 0 : 1
  }

  /// A finished task as an exit code: 0 succeeded; 124 timed out (as timeout(1)); 130 cancelled
  /// (as an interrupted command), whether or not it had started; failed: 128+N when signal N
  /// killed it, else its own exit code, else 1 (it failed without one: poison, budget, spawn
  /// error); anything else 1.
  static func code(of t: JSON) -> Int32 {
    switch t["state"]?.string {
    case "succeeded": return 0
    case "timed_out": return 124
    case "cancelled": return 130
    case "failed":
      if let s = t["signal"]?.int, s > 0, s < 128 { return 128 + Int32(s) }
      if let c = t["exit_code"]?.int, c > 0, c < 256 { return Int32(c) }
      return 1
    default: return 1
    }
  }
}

extension SubmitCommand {
  static let help = CommandHelp(
    "submit", abstract: "submit tasks; prints their ids", usage: usage,
    details: """
      Prints each task's id once its task.submitted line is on disk (fsynced). A task runs a command \
      (the words after --), a shell string (--shell), a worker type's command template (--type with \
      --description; the template's {description} and {task_id} are filled, {{description}} and \
      {{task_id}} are those words in braces), or nothing at all (--synthetic: an agent that only takes \
      time and tokens). \
      Command and shell tasks run in the working directory and with the environment of the submitter \
      (secret values are kept out of the log). The daemon checks every field; a bad one exits 65 naming it. \
      `cortex task create` is the same command.
      """,
    flags: [
      .option("--shell", value: "STR", help: "run STR with /bin/sh -c"),
      .option("--synthetic", value: "MS[:TOKENS]", help: "a synthetic agent: takes MS milliseconds and TOKENS tokens, spawns nothing"),
      .option("--type", value: "T", help: "the worker type (its budget, timeout and command template)", completes: .workerType),
      .option("-d", "--description", value: "D", help: "what the task is for; a template's {description}"),
      .option("--priority", value: "P", help: "scheduling priority", default: "medium", choices: ["critical", "high", "medium", "low"]),
      .option("--tokens", value: "N", help: "token budget to reserve", default: "the type's token_budget"),
      .option("--timeout", value: "DUR", help: "kill the task after DUR (30s, 5m, 1h, 2h30m; at most 7d)", default: "the type's timeout"),
      .option(
        "--retries", value: "N", help: "attempts after the first when it fails (0-99)",
        default: "config.json's default_max_attempts less 1 (0)"),
      .option("--after", value: "ID,...", help: "run only after these tasks succeeded (repeatable)", completes: .taskID),
      .option("--label", value: "K=V", help: "a label kept with the task: cortex list --label K=V picks it out (repeatable)"),
      .option(
        "--group", value: "G", help: "the group it belongs to (its parallel and rate limits)", default: "the worker type's, else default",
        completes: .group),
      .option("--env", value: "K=V", help: "an environment variable for the task, over the inherited ones (repeatable)"),
      .option(
        "--cwd", value: "DIR", help: "the task's working directory (with --from: of each line without a cwd)",
        default: "the current directory", completes: .directory),
      .flag("--no-env", help: "do not pass the submitter's environment to the task"),
      .option(
        "--idempotency-key", value: "K",
        help:
          "a second submit with the same key returns the first task's id, until retention.task_days or cortex clean forgets that finished task's files (then it makes a new task)"
      ),
      .option(
        "--sla", value: "DUR",
        help: "must be done within DUR: refused at submit (75, sla_unmeetable) if the estimated wait and run take longer"),
      .option("--sla-deadline", value: "TIME", help: "must be done by this RFC 3339 time (as --sla)"),
      .option(
        "--from", value: "FILE",
        help: "a batch: one JSON task spec per line (- for stdin), admitted whole or not at all; the other task flags go in the lines",
        completes: .file),
      .flag("--wait", help: "wait for the task and exit with its code (124 timed out, 130 cancelled, 128+N killed by signal N)"),
      .flag("-p", help: "print only the ids (also with --json)"),
      .flag(
        "-v", "--verbose",
        help: "say on stderr which worker runs it (or its queue place and start estimate), how to follow it; default for task create"
      ),
    ],
    operands: .command,
    examples: [
      ("cortex submit -- make test", "run `make test` here; prints task-000001"),
      ("cortex submit --shell 'sleep 1; echo hi' --priority high --wait", "a shell task, waited for"),
      ("cortex submit --type review -d 'Check auth.py' -- ./review.sh auth.py", "a typed task with its budget and timeout"),
      ("cortex submit --from tasks.jsonl", "a batch, accepted whole or refused whole"),
      ("for f in *.png; do cortex submit -p -- optipng \"$f\"; done", "one task per file from a shell loop"),
    ])
}

extension WaitCommand {
  static let help = CommandHelp(
    "wait", abstract: "wait for tasks; exit 0 only if all succeeded", usage: "cortex wait ID...",
    details: """
      Blocks until every task is finished and prints each one's state on stderr. One task: its own \
      exit code (124 timed out, 130 cancelled, 128+N killed by signal N). Several: 0 if all succeeded, else 1. \
      An id that names no task: 65 at once, naming it (as every command that takes ids). In cluster mode the end is read from PostgreSQL: while this node cannot reach it, wait says so on stderr \
      and goes on waiting.
      """,
    operands: .taskID, examples: [("cortex wait task-000001 task-000002", "both, then exit 0 if both succeeded")])
}
