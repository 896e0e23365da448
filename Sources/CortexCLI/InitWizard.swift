import CortexCore
import Posix

/// `cortex init` as the reference vision's five-minute start (issue 17 item 1). It finds agent CLIs
/// on PATH and API-key variables in the environment (by name: a key's value is never written
/// anywhere — tasks inherit it from whoever submits them), proposes a pool size from the
/// machine, writes `config.json`, starts the daemon and ends with the status and the dashboard.
///
/// In a terminal it asks, one question a line, Enter taking the default in brackets. With `--yes`,
/// or without a terminal, it takes every default without asking and starts the daemon; only
/// `--no-start` writes the files alone (for scripts that edit config.json before `cortex start`).
enum InitWizard {
  /// What was found on this machine.
  struct Findings {
    var agents: [(AgentKind, String)] = []
    var keys: [String] = []
    var cores = 1
    var memoryMB = 0

    /// Pool size: agents mostly wait on their provider, so a few per core, but each agent CLI
    /// holds a few hundred MiB; between 2 and the vision's 20.
    var proposedWorkers: Int {
      let byMemory = memoryMB > 0 ? memoryMB / 512 : 20
      return max(2, min(20, min(cores * 4, byMemory)))
    }
  }

  static func find() -> Findings {
    var f = Findings()
    let path = (Environment.get("PATH") ?? "/usr/bin:/bin").split(separator: ":").map(String.init)
    for kind in AgentKind.detectable {
      guard let exe = kind.executable else { continue }
      if let dir = path.first(where: { isExecutable($0 + "/" + exe) }) { f.agents.append((kind, dir + "/" + exe)) }
    }
    var names: [String] = []
    for kind in AgentKind.detectable { names += kind.keyVariables.filter { !names.contains($0) } }
    f.keys = names.filter { !(Environment.get($0) ?? "").isEmpty }
    if let stat = (try? FileSystem.read("/proc/stat")) ?? nil {
      let cpus = String(decoding: stat, as: UTF8.self).split(separator: "\n").filter {
        $0.hasPrefix("cpu") && $0.dropFirst(3).first?.isNumber == true
      }
      f.cores = max(1, cpus.count)
    }
    if let mem = (try? FileSystem.read("/proc/meminfo")) ?? nil {
      for line in String(decoding: mem, as: UTF8.self).split(separator: "\n") where line.hasPrefix("MemTotal:") {
        f.memoryMB = (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
      }
    }
    return f
  }

  static func isExecutable(_ p: String) -> Bool {
    FileSystem.exists(p) && !FileSystem.isDirectory(p) && ((FileSystem.permissions(p) ?? 0) & 0o111) != 0
  }

  /// The choices made: by the person at the terminal, or the defaults.
  struct Choices {
    var agent: AgentKind?
    var workers: Int
    var start: Bool
  }

  /// Says what was found and asks (or, with `ask` false, takes the defaults).
  static func choose(_ f: Findings, _ ctx: Context, ask: Bool, workers: Int?, start: Bool) -> Choices {
    let ok = ctx.color ? "\u{1B}[32m✓\u{1B}[0m" : "✓"
    let no = ctx.color ? "\u{1B}[33m!\u{1B}[0m" : "!"
    if f.agents.isEmpty {
      ctx.err("\(no) no agent CLI on PATH; typed tasks need one: \(AgentKind.installSteps)\n")
    } else {
      for (k, p) in f.agents { ctx.err("\(ok) agent CLI found: \(k.rawValue) (\(p))\n") }
    }
    if f.keys.isEmpty {
      ctx.err(
        "\(no) no API key in the environment (\(AgentKind.claude.keyVariables[0]), \(AgentKind.codex.keyVariables[0])); an agent may still use its own login\n"
      )
    } else {
      ctx.err(
        "\(ok) API key detected from environment: \(f.keys.joined(separator: ", ")) (its value stays there: tasks inherit it, no file holds it)\n"
      )
    }
    var c = Choices(agent: f.agents.first?.0, workers: workers ?? f.proposedWorkers, start: start)
    guard ask else {
      keyNote(c.agent, f, ctx)
      return c
    }
    let names = f.agents.map(\.0.rawValue) + ["none"]
    // An agent CLI not found here may be named too (to be installed before the first task); not
    // `jsonl`, which has no program of its own: every typed task would be refused.
    let agents = AgentKind.detectable.map(\.rawValue) + ["none"]
    if let a = question(
      "Agent that runs typed tasks (\(names.joined(separator: ", ")))", default: c.agent?.rawValue ?? "none", ctx,
      expected: "one of \(agents.joined(separator: ", "))", among: agents, { agents.contains($0) })
    {
      c.agent = AgentKind(rawValue: a)
      if let k = c.agent, !f.agents.contains(where: { $0.0 == k }) {
        ctx.err("  \(no) \(a) is not on PATH here; install it before the first task (\(k.install))\n")
      }
      keyNote(c.agent, f, ctx)
    }
    if workers == nil,
      let w = question(
        "Worker pool size (\(f.cores) cores, \(f.memoryMB / 1024) GiB here)", default: String(c.workers), ctx,
        expected: "a whole number from 1 to 1024", { (Int($0) ?? 0) >= 1 && (Int($0) ?? 0) <= 1024 })
    {
      c.workers = Int(w) ?? c.workers
    }
    if start,
      let s = question(
        "Start the daemon now (y/n)", default: "y", ctx, expected: "y or n", { ["y", "n", "yes", "no"].contains($0.lowercased()) })
    {
      c.start = s.lowercased().hasPrefix("y")
    }
    return c
  }

  /// The chosen agent's own key variables are unset while another agent's are (the "API key
  /// detected" line reads as this agent's): it says which ones it reads.
  static func keyNote(_ agent: AgentKind?, _ f: Findings, _ ctx: Context) {
    guard let agent, !f.keys.isEmpty, !agent.keyVariables.isEmpty, !agent.keyVariables.contains(where: f.keys.contains) else { return }
    let no = ctx.color ? "\u{1B}[33m!\u{1B}[0m" : "!"
    ctx.err(
      "  \(no) \(agent.rawValue) reads \(agent.keyVariables.joined(separator: " or ")), not set here (\(f.keys.joined(separator: ", ")) is another agent's); it may still use its own login\n"
    )
  }

  /// Asks until the answer is valid, saying what is `expected` after a wrong one (and, `among`
  /// the answers, the one a typo most likely meant); Enter (or end of input) takes the default.
  static func question(
    _ q: String, default d: String, _ ctx: Context, expected: String, among: [String] = [], _ valid: (String) -> Bool
  ) -> String? {
    for _ in 0..<5 {
      ctx.err("\(q) [\(d)]: ")
      guard let line = readLine() else {
        ctx.err("\n")
        return d
      }
      let a = line.trimmingSpaces
      if a.isEmpty { return d }
      if valid(a) { return a }
      ctx.err("  \(quoted(a)) is not \(expected)\(Suggest.nearest(a, among: among).map { "; did you mean \($0)?" } ?? "")\n")
    }
    return d
  }

  /// One line from stdin, without its newline; nil at end of input.
  static func readLine() -> String? {
    var line: [UInt8] = []
    while true {
      var b: [UInt8] = []
      guard let n = try? FileDescriptor.standardInput.read(appendingTo: &b, max: 1), n == 1 else {
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
      }
      if b[0] == 10 { return String(decoding: line, as: UTF8.self) }
      line.append(b[0])
    }
  }

  /// The least token budget a worker type gets when an agent runs it.
  static let agentBudget = 100_000

  /// Writes the choices into config.json (the daemon checks it as it will read it).
  static func write(_ c: Choices, _ ctx: Context) throws(CLIError) {
    let cfgBytes = (try? FileSystem.read(ctx.paths.config)) ?? nil
    guard let bytes = cfgBytes, let v = try? JSON.parse(bytes), var cfg = try? Config.decode(v) else {
      throw CLIError(ExitCode.failure, "cannot read \(ctx.paths.config)")
    }
    cfg.workers = c.workers
    cfg.agent = c.agent
    if c.agent != nil {
      // One agent run spends tens of thousands of tokens (its system prompt alone is cached anew):
      // the older types' budgets, sized for scripts, would stop every run. And an agent CLI mostly
      // waits on its provider: asking for idle cores would hold it back on a busy machine.
      for i in cfg.workerTypes.indices where cfg.workerTypes[i].1.command == nil && cfg.workerTypes[i].1.shell == nil {
        cfg.workerTypes[i].1.tokenBudget = max(cfg.workerTypes[i].1.tokenBudget, agentBudget)
        cfg.workerTypes[i].1.cpu = 0
      }
    }
    do throws(PosixError) {
      try FileSystem.writeAtomically(ctx.paths.config, Array((cfg.json().pretty() + "\n").utf8))
    } catch {
      throw CLIError(ExitCode.failure, "cannot write \(ctx.paths.config): \(error)")
    }
  }
}

extension String {
  fileprivate var trimmingSpaces: String {
    var s = Substring(self)
    while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
    while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
    return String(s)
  }
}

extension InitWizard {
  /// The wizard after the directory exists: choices (`answers`, when asked before it was made),
  /// config.json, the daemon, the status. `kept`: what changed in a config.json that was kept
  /// (`--cluster`), nil when nothing did.
  static func run(
    _ ctx: Context, ask: Bool, answers: Choices? = nil, wrote: Bool, kept: String? = nil, workers: Int?, start: Bool
  ) throws(CLIError) {
    let ok = ctx.color ? "\u{1B}[32m✓\u{1B}[0m" : "✓"
    if wrote {
      let c = answers ?? choose(find(), ctx, ask: ask, workers: workers, start: start)
      try write(c, ctx)
      ctx.err("\(ok) config.json written: \(c.workers) workers, agent \(c.agent?.rawValue ?? "none") (\(ctx.paths.config))\n")
      // Answered n: the wizard ended on the config line, with no word on what comes next.
      if !c.start {
        ctx.err("the daemon is not started; \(ctx.startAdvice)\n")
        return
      }
    } else {
      ctx.err("\(ok) \(ctx.paths.root) is already initialized (\(kept ?? "config.json kept"); --force rewrites it)\n")
      if !start { return }
    }
    if let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("ping"))])) {
      ctx.err("\(ok) daemon already running (pid \(v["pid"]?.int ?? 0))\n")
      // init --force rewrote config.json (the remedy the no-agent refusal names): the daemon
      // must read it now, or the next task is refused for the agent just configured.
      if wrote || kept != nil { try reload(ctx, ping: v) }
    } else {
      // A kept config.json's size given with --workers: the size `cortex scale` kept is not it.
      let v = try DaemonControl.start(ctx, workers: wrote ? nil : workers, timeoutS: 60)
      ctx.err("\(ok) daemon started (pid \(v["pid"]?.int ?? 0))\n")
      ctx.err("\(ok) worker pool initialized (\(v["workers_ready"]?.int ?? 0) workers)\n")
    }
    // With --json, stdout holds init's one answer (InitCommand); the status is for people.
    if !ctx.json {
      var none = Args([], usage: "")
      _ = try? StatusCommand.run(&none, ctx)
    }
    if let web = WebAddress.read(ctx.paths) { ctx.err("\(ok) dashboard available at \(web)\n") }
    // With no agent configured that typed task is refused (65, naming what to install, above):
    // the next step offered is one that runs.
    let config = (try? FileSystem.read(ctx.paths.config)).flatMap { $0 }.flatMap { try? JSON.parse($0) }
    if config?["agent"]?.string == nil {
      // "see above" pointed at nothing when config.json was kept, and at "agent CLI found:
      // claude" when `none` was chosen: say what to do in either case.
      let why =
        find().agents.first.map { "; for typed tasks cortex init --force configures \($0.0.rawValue), found on PATH" }
        ?? "; a typed task needs an agent CLI on PATH, then cortex init --force"
      ctx.err("next: cortex task create -- make test   (a command\(why))\n")
    } else {
      ctx.err("next: cortex task create --type development --description \"Add README.md\"\n")
    }
  }
}

extension InitWizard {
  /// Has the running daemon re-read config.json (SIGHUP) and waits until it has, so the next
  /// command sees the new agent and budgets. The pool size changes only through `cortex scale`.
  static func reload(_ ctx: Context, ping before: JSON) throws(CLIError) {
    let ok = ctx.color ? "\u{1B}[32m✓\u{1B}[0m" : "✓"
    guard let pid = before["pid"]?.int.flatMap({ Int32(exactly: $0) }), pid > 1 else {
      throw CLIError(ExitCode.failure, "the daemon did not say its pid; run kill -HUP on it to load the new config.json")
    }
    guard Processes.signal(pid, Signal.hup) else {
      throw CLIError(ExitCode.failure, "cannot signal the daemon (pid \(pid)) to load the new config.json: it may have just exited")
    }
    // A daemon from before this answer had the count (an upgrade not yet restarted) reads it all the same.
    guard let reloads = before["config_reloads"]?.int else {
      ctx.err("\(ok) daemon sent SIGHUP to re-read config.json (see cortex tail for daemon.reloaded)\n")
      return
    }
    let deadline = Clock.monotonicMs() + 10_000
    while Clock.monotonicMs() < deadline {
      guard let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("ping"))])), (v["config_reloads"]?.int ?? 0) > reloads
      else {
        sleepMs(10)
        continue
      }
      if let e = v["config_error"]?.string {
        throw CLIError(ExitCode.failure, "the running daemon kept its old config: \(e)")
      }
      ctx.err("\(ok) daemon reloaded config.json\n")
      let config = (try? FileSystem.read(ctx.paths.config)).flatMap { $0 }.flatMap { try? JSON.parse($0) }
      if let want = config?["workers"]?.int, let pool = v["workers"]?.int, want != pool {
        ctx.err("  its pool stays at \(pool) workers; cortex scale \(want) makes it \(want)\n")
      }
      // Cluster mode: a node does not change its name or database while it runs.
      if v["cluster_changed"]?.bool == true {
        let now = v["cluster_node"]?.string.map { "node \($0)" } ?? "a single host"
        ctx.err("  \"cluster\" is read at start only: this daemon stays \(now) until cortex stop, then cortex start\n")
      }
      return
    }
    throw CLIError(
      ExitCode.failure, "the daemon (pid \(pid)) did not confirm it read the new config.json within 10 s; see \(ctx.paths.daemonLog)")
  }
}
