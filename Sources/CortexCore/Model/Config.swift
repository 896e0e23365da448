/// `config.json`: pool size, limits, budgets and worker types. `cortex init` writes the defaults;
/// the daemon reads it at start. Unknown keys are errors, so a typo never silently does nothing.
public struct Config: Equatable, Sendable {
  public struct WorkerType: Equatable, Sendable {
    public var tokenBudget: Int
    public var timeoutS: Double
    public var memoryMB: Int
    public var cpu: Double
    /// argv template; `{description}` and `{task_id}` are replaced per task.
    public var command: [String]?
    /// shell template, same placeholders.
    public var shell: String?
    /// The group its tasks join when they name none (SPEC §15).
    public var group: String?
    public var rate: RateConfig?
    public var onFinish: String?
    /// Runs this agent CLI (its argv unless `command` says otherwise) and reads its output (issue 17).
    public var agent: AgentKind?
    public init(tokenBudget: Int, timeoutS: Double, memoryMB: Int, cpu: Double, command: [String]? = nil, shell: String? = nil) {
      self.tokenBudget = tokenBudget
      self.timeoutS = timeoutS
      self.memoryMB = memoryMB
      self.cpu = cpu
      self.command = command
      self.shell = shell
    }
  }

  public var workers = 20
  public var maxQueue = 500
  public var maxQueueWaitS = 1800.0
  public var heartbeatIntervalS = 5.0
  public var heartbeatMisses = 3
  public var snapshotIntervalS = 10.0
  public var killGraceS = 5.0
  /// How long a worker whose daemon is gone keeps its task for a new daemon to adopt it, before
  /// it kills the task's group and exits (SPEC §14).
  public var orphanTimeoutS = 300.0
  public var logSegmentBytes = 64 * 1024 * 1024
  public var reserveCritical = 0
  public var tokenBudgetTotal = 10_000_000
  public var defaultMaxAttempts = 1
  public var retryBackoffBaseMs = 500
  public var retryBackoffMaxMs = 60_000
  public var restartWindowS = 60.0
  public var maxRestartsInWindow = 5
  public var maxSpecBytes = TaskSpec.maxEncodedSize
  /// Longest a durable write may wait for company before its fsync (group commit), in ms.
  public var syncIntervalMs = 20
  /// Control-socket connections served at once; a few more are reserved for `ping` and `stop`.
  public var maxClients = 1024
  /// A connection with no request in this long, and no answer owed, is closed.
  public var clientIdleTimeoutS = 60.0
  /// The longest request line (one JSON request); see `requestLineLimit`.
  public var maxRequestBytes = 8 << 20
  /// Unprocessed request bytes held for all connections together; see `clientInputLimit`.
  public var maxClientInputBytes = 48 << 20
  public var workerTypes: [(String, WorkerType)] = Config.defaultWorkerTypes
  /// Cluster mode (SPEC §11); nil for the single-host daemon.
  public var cluster: ClusterSettings?
  /// Groups with their limits (SPEC §15); a group a task names that is not here has no limit.
  public var groups: [(String, GroupConfig)] = []
  /// A shell command the daemon runs when any task finishes (see `HookRunner`).
  public var onFinish: String?
  /// How long a hook may run before its process group is killed.
  public var hookTimeoutS = 30.0
  /// `task create` without `--type` (issue 17); nil means the built-in rules.
  public var routing: RoutingRules?
  /// The web view and HTTP API (SPEC §12).
  public var web = WebSettings()
  /// How long the log and task files are kept, and outputs' size limit (SPEC §13).
  public var retention = RetentionSettings()
  /// The agent CLI that runs a typed task whose type has no `command`, `shell` or `agent` of its
  /// own; `cortex init` writes the one it found on PATH. Nil: such a task is refused (exit 65).
  public var agent: AgentKind?

  public init() {}

  public static func == (a: Config, b: Config) -> Bool { a.json() == b.json() }

  /// Budgets from the reference vision: scanners are cheap, implementers expensive.
  public static let defaultWorkerTypes: [(String, WorkerType)] = [
    ("scan", WorkerType(tokenBudget: 5_000, timeoutS: 900, memoryMB: 256, cpu: 0.5)),
    ("fix", WorkerType(tokenBudget: 8_000, timeoutS: 1800, memoryMB: 512, cpu: 1)),
    ("analysis", WorkerType(tokenBudget: 6_000, timeoutS: 1200, memoryMB: 512, cpu: 0.5)),
    ("implementation", WorkerType(tokenBudget: 10_000, timeoutS: 2700, memoryMB: 1024, cpu: 1)),
    ("test", WorkerType(tokenBudget: 6_000, timeoutS: 1800, memoryMB: 1024, cpu: 1)),
    ("review", WorkerType(tokenBudget: 5_000, timeoutS: 900, memoryMB: 256, cpu: 0.5)),
    ("pr", WorkerType(tokenBudget: 3_000, timeoutS: 600, memoryMB: 256, cpu: 0.25)),
    ("documentation", WorkerType(tokenBudget: 4_000, timeoutS: 900, memoryMB: 256, cpu: 0.25)),
    // The reference vision's master agents (issue 17): they run the configured agent CLI, which
    // mostly waits on its provider, so they ask for memory (what an agent CLI holds), not idle CPU.
    ("development", WorkerType(tokenBudget: 200_000, timeoutS: 2700, memoryMB: 1024, cpu: 0)),
    ("security", WorkerType(tokenBudget: 100_000, timeoutS: 1800, memoryMB: 512, cpu: 0)),
    ("inventory", WorkerType(tokenBudget: 50_000, timeoutS: 900, memoryMB: 256, cpu: 0)),
    ("cicd", WorkerType(tokenBudget: 100_000, timeoutS: 1800, memoryMB: 512, cpu: 0)),
  ]

  public func group(_ name: String) -> GroupConfig? {
    for (n, g) in groups where n == name { return g }
    return nil
  }

  /// The group a task runs in: its own (`group`), its worker type's, or `default`.
  public func groupName(group: String?, type: String?) -> String {
    if let group { return group }
    if let type, let g = workerType(type)?.group { return g }
    return FleetNames.defaultGroup
  }

  public func workerType(_ name: String) -> WorkerType? {
    for (n, t) in workerTypes where n == name { return t }
    return nil
  }

  public func json() -> JSON {
    var o: [(String, JSON)] = [
      ("workers", .int(Int64(workers))),
      ("max_queue", .int(Int64(maxQueue))),
      ("max_queue_wait_s", .double(maxQueueWaitS)),
      ("heartbeat_interval_s", .double(heartbeatIntervalS)),
      ("heartbeat_misses", .int(Int64(heartbeatMisses))),
      ("snapshot_interval_s", .double(snapshotIntervalS)),
      ("kill_grace_s", .double(killGraceS)),
      ("orphan_timeout_s", .double(orphanTimeoutS)),
      ("log_segment_bytes", .int(Int64(logSegmentBytes))),
      ("reserve_critical", .int(Int64(reserveCritical))),
      ("token_budget_total", .int(Int64(tokenBudgetTotal))),
      ("default_max_attempts", .int(Int64(defaultMaxAttempts))),
      ("retry_backoff_base_ms", .int(Int64(retryBackoffBaseMs))),
      ("retry_backoff_max_ms", .int(Int64(retryBackoffMaxMs))),
      ("restart_window_s", .double(restartWindowS)),
      ("max_restarts_in_window", .int(Int64(maxRestartsInWindow))),
      ("max_spec_bytes", .int(Int64(maxSpecBytes))),
      ("sync_interval_ms", .int(Int64(syncIntervalMs))),
      ("max_clients", .int(Int64(maxClients))),
      ("client_idle_timeout_s", .double(clientIdleTimeoutS)),
      ("max_request_bytes", .int(Int64(maxRequestBytes))),
      ("max_client_input_bytes", .int(Int64(maxClientInputBytes))),
    ]
    o.append(("retention", retention.json()))
    if let cluster { o.append(("cluster", cluster.json())) }
    if let onFinish { o.append(("on_finish", .string(onFinish))) }
    if hookTimeoutS != 30 { o.append(("hook_timeout_s", .double(hookTimeoutS))) }
    if !groups.isEmpty { o.append(("groups", .object(groups.map { ($0.0, $0.1.json()) }))) }
    if let routing { o.append(("routing", routing.json())) }
    if let agent { o.append(("agent", .string(agent.rawValue))) }
    o.append(("web", web.json()))
    o.append(
      (
        "worker_types",
        .object(
          workerTypes.map { (name, t) in
            var o: [(String, JSON)] = [
              ("token_budget", .int(Int64(t.tokenBudget))), ("timeout_s", .double(t.timeoutS)),
              ("memory_mb", .int(Int64(t.memoryMB))), ("cpu", .double(t.cpu)),
            ]
            if let c = t.command { o.append(("command", .array(c.map { .string($0) }))) }
            if let s = t.shell { o.append(("shell", .string(s))) }
            if let g = t.group { o.append(("group", .string(g))) }
            if let r = t.rate { o.append(("rate", r.json())) }
            if let h = t.onFinish { o.append(("on_finish", .string(h))) }
            if let a = t.agent { o.append(("agent", .string(a.rawValue))) }
            return (name, .object(o))
          })
      ))
    return .object(o)
  }

  /// Every top-level setting `decode` takes: those `json()` writes, and the optional ones.
  public static var settingNames: [String] {
    (Config().json().object ?? []).map(\.0) + ["cluster", "groups", "on_finish", "hook_timeout_s", "routing", "agent"]
  }

  public static func decode(_ v: JSON) throws(SpecError) -> Config {
    guard let pairs = v.object else { throw SpecError("config", "must be a JSON object") }
    var c = Config()
    typealias S = TaskSpec
    for (k, val) in pairs {
      switch k {
      case "workers": c.workers = try S.int(k, val, min: 1, max: 1024)
      case "max_queue": c.maxQueue = try S.int(k, val, min: 1, max: 10_000_000)
      case "max_queue_wait_s": c.maxQueueWaitS = try positive(k, val, max: 30 * 86_400)
      case "heartbeat_interval_s": c.heartbeatIntervalS = try positive(k, val, max: 3600)
      case "heartbeat_misses": c.heartbeatMisses = try S.int(k, val, min: 1, max: 100)
      case "snapshot_interval_s": c.snapshotIntervalS = try positive(k, val, max: 86_400)
      case "kill_grace_s": c.killGraceS = try positive(k, val, max: 3600)
      case "orphan_timeout_s": c.orphanTimeoutS = try positive(k, val, max: 7 * 86_400)
      case "log_segment_bytes": c.logSegmentBytes = try S.int(k, val, min: 4096, max: 1 << 40)
      case "reserve_critical": c.reserveCritical = try S.int(k, val, min: 0, max: 1023)
      case "token_budget_total": c.tokenBudgetTotal = try S.int(k, val, min: 0, max: 1 << 50)
      case "default_max_attempts": c.defaultMaxAttempts = try S.int(k, val, min: 1, max: 100)
      case "retry_backoff_base_ms": c.retryBackoffBaseMs = try S.int(k, val, min: 0, max: 3_600_000)
      case "retry_backoff_max_ms": c.retryBackoffMaxMs = try S.int(k, val, min: 0, max: 86_400_000)
      case "restart_window_s": c.restartWindowS = try positive(k, val, max: 86_400)
      case "max_restarts_in_window": c.maxRestartsInWindow = try S.int(k, val, min: 1, max: 10_000)
      case "max_spec_bytes": c.maxSpecBytes = try S.int(k, val, min: 256, max: 16 << 20)
      case "sync_interval_ms": c.syncIntervalMs = try S.int(k, val, min: 0, max: 10_000)
      case "max_clients": c.maxClients = try S.int(k, val, min: 1, max: 65_536)
      case "client_idle_timeout_s": c.clientIdleTimeoutS = try positive(k, val, max: 86_400)
      case "max_request_bytes": c.maxRequestBytes = try S.int(k, val, min: 64 << 10, max: 1 << 30)
      case "max_client_input_bytes": c.maxClientInputBytes = try S.int(k, val, min: 1 << 20, max: 16 << 30)
      case "worker_types":
        guard let o = val.object else { throw SpecError(k, "must be an object of worker types") }
        c.workerTypes = []
        for (name, tv) in o {
          guard let to = tv.object else { throw SpecError("worker_types.\(name)", "must be an object") }
          var t = WorkerType(tokenBudget: 0, timeoutS: 3600, memoryMB: 0, cpu: 0)
          for (tk, tval) in to {
            let f = "worker_types.\(name).\(tk)"
            switch tk {
            case "token_budget": t.tokenBudget = try S.int(f, tval, min: 0, max: Numbers.maxTokens)
            case "timeout_s":
              t.timeoutS = try positive(f, tval, max: TaskSpec.maxTimeoutS)
              try TaskSpec.checkTimeout(f, t.timeoutS)
            case "memory_mb": t.memoryMB = try S.int(f, tval, min: 0, max: 1 << 30)
            case "cpu":
              t.cpu = try Numbers.double(f, tval, min: 0, max: 1024)
            case "command":
              guard let a = tval.array, !a.isEmpty, a.allSatisfy({ $0.string != nil }) else {
                throw SpecError(f, "must be a non-empty array of strings")
              }
              t.command = a.map { $0.string! }
              for arg in t.command ?? [] { try Self.checkPlaceholders(f, arg) }
            case "shell":
              let sh = try S.nonEmptyString(f, tval)
              try Self.checkPlaceholders(f, sh)
              if let quoted = Self.quotedPlaceholder(sh) {
                throw SpecError(f, "\(quoted) is inside quotes; write it bare: Cortex quotes every value for the shell itself")
              }
              t.shell = sh
            case "group": t.group = try FleetNames.checkGroup(f, try S.nonEmptyString(f, tval))
            case "rate": t.rate = try RateConfig.decode(f, tval)
            case "on_finish": t.onFinish = try FleetNames.hook(f, tval)
            case "agent": t.agent = try AgentKind.decode(f, tval)
            default: throw SpecError(f, "unknown field")
            }
          }
          // As a task spec's: one of them runs, and the other was dropped without a word.
          if t.command != nil && t.shell != nil {
            throw SpecError("worker_types.\(name)", "give only one of command or shell (its tasks run one of them)")
          }
          c.workerTypes.append((name, t))
        }
      case "cluster": c.cluster = try ClusterSettings.decode(val)
      case "groups": c.groups = try FleetNames.groups(k, val)
      case "on_finish": c.onFinish = try FleetNames.hook(k, val)
      case "hook_timeout_s": c.hookTimeoutS = try positive(k, val, max: 86_400)
      case "routing": c.routing = try RoutingRules.decode(val)
      case "web": c.web = try WebSettings.decode(val)
      case "retention": c.retention = try RetentionSettings.decode(val)
      case "agent": c.agent = try AgentKind.decode(k, val)
      default: throw SpecError(k, "unknown setting" + Suggest.hint(k, among: settingNames))
      }
    }
    try c.retention.fit(segmentBytes: c.logSegmentBytes, logBytesGiven: v["retention"]?["log_bytes"] != nil)
    if c.reserveCritical >= c.workers {
      throw SpecError("reserve_critical", "must be less than workers (\(c.workers))")
    }
    return c
  }

  /// A template's brace word that looks like a misspelt placeholder (Template.misspelt) is refused.
  static func checkPlaceholders(_ field: String, _ template: String) throws(SpecError) {
    if let (found, meant) = Template.misspelt(template) {
      throw SpecError(
        field,
        "\(found) is not a placeholder; did you mean \(meant)? (the placeholders are {description} and {task_id}; {{description}} and {{task_id}} are those words in braces; other braces stay as written)"
      )
    }
  }

  /// The first placeholder (Template) that a shell template puts inside '…' or "…" (where
  /// Cortex's own quoting of the value would be undone), or nil. Other braces are the shell's.
  static func quotedPlaceholder(_ template: String) -> String? {
    var quote: Character? = nil
    var i = template.startIndex
    while i < template.endIndex {
      let ch = template[i]
      if let q = quote {
        if ch == q { quote = nil }
      } else if ch == "'" || ch == "\"" {
        quote = ch
      } else if ch == "\\" {
        i = template.index(after: i)
        if i == template.endIndex { break }
      }
      if ch == "{" {
        switch Template.brace(template[i...]) {
        case .placeholder(_, let end):
          if quote != nil { return String(template[i..<end]) }
        case .escaped(_, let end):
          // Literal text (`{{description}}`), which quotes cannot change: skipped whole.
          i = end
          continue
        case nil: break
        }
      }
      i = template.index(after: i)
    }
    return nil
  }

  /// A finite number of seconds, more than 0 and at most `max`.
  static func positive(_ k: String, _ v: JSON, max: Double) throws(SpecError) -> Double {
    try Numbers.seconds(k, v, max: max)
  }

  /// The longest request line the daemon reads: `max_request_bytes`, but never too short for one
  /// task spec of `max_spec_bytes` with its envelope (the CLI sends big batches in parts of one
  /// or more specs, so no batch needs a longer line).
  public var requestLineLimit: Int { Swift.max(maxRequestBytes, maxSpecBytes + (64 << 10)) }

  /// Unprocessed request bytes (unfinished lines, unread requests, batch parts held) the daemon
  /// holds for all connections together: `max_client_input_bytes`, but never less than one line.
  public var clientInputLimit: Int { Swift.max(maxClientInputBytes, requestLineLimit) }
}
