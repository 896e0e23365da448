/// What to run: exactly the fields of SPEC §3. Decoded strictly: an unknown field, a wrong type
/// or an out-of-range value is a `SpecError` naming the field.
public struct TaskSpec: Equatable, Sendable {
  public struct Synthetic: Equatable, Sendable {
    public var durationMs: Int
    public var tokens: Int
    public var errorRate: Double
    public init(durationMs: Int, tokens: Int = 0, errorRate: Double = 0) {
      self.durationMs = durationMs
      self.tokens = tokens
      self.errorRate = errorRate
    }
  }

  public var type: String?
  public var description: String?
  public var priority: Priority = .medium
  public var command: [String]?
  public var shell: String?
  public var cwd: String?
  public var env: [(String, String)] = []
  public var synthetic: Synthetic?
  public var tokenBudget: Int?
  public var timeoutS: Double?
  public var maxAttempts: Int?
  public var dependsOn: [Int] = []
  /// `"#N"` in `depends_on`: the N-th task (from 1) of the same batch, which must come earlier in
  /// it. Admission turns these into task ids before anything is logged.
  public var dependsOnBatch: [Int] = []
  public var idempotencyKey: String?
  /// The time (ms since the epoch) by which the task must have finished; admission refuses it
  /// (`sla_unmeetable`) when the running estimates say it cannot.
  public var slaDeadlineMs: Int64?
  public var labels: [(String, String)] = []
  /// The group it runs in (SPEC §15); nil: its worker type's group, else `default`.
  public var group: String?
  /// The task this one was submitted again for (`cortex retry`).
  public var retryOf: Int?
  /// How the command's output is read (`claude`, `codex`, `aider`, `jsonl`): the worker runs it
  /// through that agent adapter (issue 17; docs/agents.md). Set from the worker type's `agent`.
  public var agent: AgentKind?
  /// Why the client chose `type` when the submitter gave only a description (`task.routed`).
  public var routed: RouteNote?

  public init() {}

  public static func == (a: TaskSpec, b: TaskSpec) -> Bool { a.json() == b.json() }

  /// The longest timeout a task may ask for (7 days).
  public static let maxTimeoutS = 7 * 86_400.0
  /// The shortest: 1 ms, the unit a timeout is kept in (`timeout_ms`). A smaller positive value
  /// would round to 0 ms, a timeout at the moment the task starts, so it is refused, not rounded.
  public static let minTimeoutS = 0.001
  /// The largest encoded spec accepted (bytes).
  public static let maxEncodedSize = 64 * 1024
  public static let fields: Set<String> = [
    "type", "description", "priority", "command", "shell", "cwd", "env", "synthetic", "token_budget",
    "timeout_s", "max_attempts", "depends_on", "idempotency_key", "labels", "sla_deadline", "group", "retry_of",
    "agent", "routed",
  ]

  /// Decodes and validates a spec object.
  public static func decode(_ v: JSON) throws(SpecError) -> TaskSpec {
    guard let pairs = v.object else { throw SpecError("spec", "must be a JSON object, not \(v.kindName)") }
    var s = TaskSpec()
    for (k, val) in pairs {
      if val.isNull { continue }
      switch k {
      case "type": s.type = try noNUL(k, try nonEmptyString(k, val))
      case "description": s.description = try noNUL(k, try string(k, val))
      case "priority":
        let p = try string(k, val)
        guard let pr = Priority(name: p) else {
          throw SpecError(k, "unknown priority \(quoted(p)) (use critical, high, medium or low)")
        }
        s.priority = pr
      case "command":
        guard let a = val.array else { throw SpecError(k, "must be an array of strings (argv)") }
        var argv: [String] = []
        for (i, e) in a.enumerated() {
          guard let str = e.string else { throw SpecError("\(k)[\(i)]", "must be a string") }
          try noNUL("\(k)[\(i)]", str)
          argv.append(str)
        }
        if argv.isEmpty { throw SpecError(k, "must not be empty") }
        if argv[0].isEmpty { throw SpecError("command[0]", "must not be empty") }
        s.command = argv
      case "shell": s.shell = try noNUL(k, try nonEmptyString(k, val))
      case "cwd":
        let c = try noNUL(k, try nonEmptyString(k, val))
        guard c.hasPrefix("/") else { throw SpecError(k, "must be an absolute path") }
        s.cwd = c
      case "env": s.env = try stringMap(k, val, keyCheck: true)
      case "labels": s.labels = try stringMap(k, val, keyCheck: false)
      case "synthetic":
        guard let o = val.object else { throw SpecError(k, "must be an object") }
        var syn = Synthetic(durationMs: 0)
        for (sk, sv) in o {
          switch sk {
          case "duration_ms": syn.durationMs = try int("synthetic.duration_ms", sv, min: 0, max: 86_400_000)
          case "tokens": syn.tokens = try int("synthetic.tokens", sv, min: 0, max: Numbers.maxTokens)
          case "error_rate":
            syn.errorRate = try Numbers.double("synthetic.error_rate", sv, min: 0, max: 1)
          default: throw SpecError("synthetic.\(sk)", "unknown field")
          }
        }
        s.synthetic = syn
      case "token_budget": s.tokenBudget = try int(k, val, min: 0, max: Numbers.maxTokens)
      case "timeout_s":
        // The 1 ms floor is admission's (`checkTimeout`): a spec logged before it still reads back.
        s.timeoutS = try Numbers.seconds(k, val, max: TaskSpec.maxTimeoutS)
      case "max_attempts": s.maxAttempts = try int(k, val, min: 1, max: 100)
      case "depends_on":
        guard let a = val.array else { throw SpecError(k, "must be an array of task ids") }
        // Repeats are dropped through sets: searching the list for each id was quadratic, and a
        // request of a few MB of ids held the daemon's loop for hours.
        var seen = Set(s.dependsOn)
        var seenBatch = Set(s.dependsOnBatch)
        for (i, e) in a.enumerated() {
          if let str = e.string, str.hasPrefix("#"), let pos = Int(str.dropFirst()), pos >= 1, pos <= 1_000_000 {
            if seenBatch.insert(pos).inserted { s.dependsOnBatch.append(pos) }
            continue
          }
          guard let str = e.string, let n = TaskID.parse(str) else {
            throw SpecError(
              "\(k)[\(i)]", "must be a task id like task-000012, or #N for the N-th task of the same batch, not \(Self.shownID(e))")
          }
          if seen.insert(n).inserted { s.dependsOn.append(n) }
        }
      case "idempotency_key": s.idempotencyKey = try nonEmptyString(k, val)
      case "sla_deadline":
        let text = try string(k, val)
        guard let ms = Timestamp.parse(text) else {
          throw SpecError(k, "\(quoted(text)) is not an RFC 3339 time like 2026-11-24T12:00:00Z")
        }
        s.slaDeadlineMs = ms
      case "group": s.group = try FleetNames.checkGroup(k, try string(k, val))
      case "retry_of":
        guard let str = val.string, let n = TaskID.parse(str) else {
          throw SpecError(k, "must be a task id like task-000012, not \(Self.shownID(val))")
        }
        s.retryOf = n
      case "agent": s.agent = try AgentKind.decode(k, val)
      case "routed": s.routed = try RouteNote.decode(k, val)
      default: throw SpecError(k, "unknown field" + Suggest.hint(k, among: fields))
      }
    }
    let kinds = [s.command != nil, s.shell != nil, s.synthetic != nil].filter { $0 }.count
    if kinds > 1 { throw SpecError("command", "give only one of command, shell or synthetic") }
    return s
  }

  /// The kind of work: what the worker does with it.
  public var hasWork: Bool { command != nil || shell != nil || synthetic != nil }

  /// The spec as a JSON value (`write(to:)`'s object, parsed back: that is the one list of
  /// fields and their order).
  public func json() -> JSON { (try? JSON.parse(encodedBytes())) ?? .object([]) }

  /// The spec as JSON text: the log's, spec.json's and the worker's `run` line's.
  public func encodedBytes() -> [UInt8] {
    var w = JSONWriter(capacity: 512)
    write(to: &w)
    return w.bytes
  }

  /// Writes the spec as one JSON object, straight to `w`: no tree of values for a spec that is
  /// encoded for the log, spec.json and its worker (building one, a few allocations per inherited
  /// variable, was a tenth of the daemon's instructions for each command task).
  public func write(to w: inout JSONWriter) {
    w.beginObject()
    w.field("type", type)
    w.field("description", description)
    w.field("priority", priority.name)
    if let command {
      w.key("command")
      w.beginArray()
      for c in command { w.string(c) }
      w.endArray()
    }
    w.field("shell", shell)
    w.field("cwd", cwd)
    if !env.isEmpty { Self.writeMap("env", env, to: &w) }
    if let synthetic {
      w.key("synthetic")
      w.beginObject()
      w.field("duration_ms", synthetic.durationMs)
      w.field("tokens", synthetic.tokens)
      w.field("error_rate", synthetic.errorRate)
      w.endObject()
    }
    w.field("token_budget", tokenBudget)
    if let timeoutS { w.field("timeout_s", timeoutS) }
    w.field("max_attempts", maxAttempts)
    if !dependsOn.isEmpty || !dependsOnBatch.isEmpty {
      w.key("depends_on")
      w.beginArray()
      for d in dependsOn { w.string(TaskID.format(d)) }
      for d in dependsOnBatch { w.string("#\(d)") }
      w.endArray()
    }
    w.field("idempotency_key", idempotencyKey)
    if let slaDeadlineMs { w.field("sla_deadline", Timestamp.rfc3339(ms: slaDeadlineMs)) }
    if !labels.isEmpty { Self.writeMap("labels", labels, to: &w) }
    w.field("group", group)
    if let retryOf { w.field("retry_of", TaskID.format(retryOf)) }
    w.field("agent", agent?.rawValue)
    if let routed { w.field("routed", json: routed.json()) }
    w.endObject()
  }

  private static func writeMap(_ name: String, _ pairs: [(String, String)], to w: inout JSONWriter) {
    w.key(name)
    w.beginObject()
    for (k, v) in pairs { w.field(k, v) }
    w.endObject()
  }

  // MARK: field helpers

  static func string(_ k: String, _ v: JSON) throws(SpecError) -> String {
    guard let s = v.string else { throw SpecError(k, "must be a string, not \(v.kindName)") }
    return s
  }
  /// Strings that end up in argv, the environment or a path: a NUL byte would silently cut them.
  @discardableResult
  static func noNUL(_ k: String, _ s: String) throws(SpecError) -> String {
    if hasNUL(s) { throw SpecError(k, "must not contain a NUL byte (\\u0000)") }
    return s
  }
  /// Checked on the string's contiguous bytes: a generic walk of `utf8` cost about ten
  /// instructions a byte, for every variable of every submitted environment.
  static func hasNUL(_ s: String) -> Bool {
    var s = s
    return s.withUTF8 { $0.contains(0) }
  }
  /// An environment variable's name: not empty, no `=`, no digit first, no control character (a
  /// newline in a name splits the lines of env(1) and of every reader of /proc/PID/environ that
  /// prints it).
  static func validName(_ name: String) -> Bool {
    var name = name
    let ok = name.withUTF8 { u -> Bool? in
      guard let f = u.first, !u.contains(where: { $0 == 61 || $0 < 32 || $0 == 127 }) else { return false }
      if f < 128 { return !(f >= 48 && f <= 57) }
      return nil  // a non-ASCII first character: a digit is decided on Characters
    }
    return ok ?? !name.first!.isNumber
  }
  static func nonEmptyString(_ k: String, _ v: JSON) throws(SpecError) -> String {
    let s = try string(k, v)
    if s.isEmpty { throw SpecError(k, "must not be empty") }
    return s
  }
  /// Admission's check of a timeout (submit, retry, edit, and a worker type's default when the
  /// config is read): at least `minTimeoutS`. Decoding alone lets a smaller positive value
  /// through, so that a spec an earlier version accepted and logged still recovers.
  public static func checkTimeout(_ field: String, _ seconds: Double?) throws(SpecError) {
    guard let d = seconds, d < minTimeoutS else { return }
    throw SpecError(
      field,
      "must be at least \(Numbers.text(minTimeoutS)) seconds (1 ms, the unit timeouts are kept in), not \(Numbers.text(d)), which would round to no time at all"
    )
  }
  static func int(_ k: String, _ v: JSON, min: Int, max: Int) throws(SpecError) -> Int {
    try Numbers.int(k, v, min: min, max: max)
  }
  static func stringMap(_ k: String, _ v: JSON, keyCheck: Bool) throws(SpecError) -> [(String, String)] {
    guard let o = v.object else { throw SpecError(k, "must be an object of strings") }
    var out: [(String, String)] = []
    // A name given twice (`--env A=1 --env A=2`, or a JSON object with a repeated key) is kept
    // once, its last value in its last place, as an edit merges (Scheduler.merged): passed on
    // twice, getenv(3) would see the first value and most other readers the last.
    var last: [String: Int] = [:]
    last.reserveCapacity(o.count)
    // Checked on bytes, the field's name built only for an error: this runs for every variable
    // of every submitted environment.
    for (mk, mv) in o {
      guard let s = mv.string else { throw SpecError("\(k).\(mk)", "must be a string") }
      if keyCheck && hasNUL(s) { try noNUL("\(k).\(mk)", s) }
      if keyCheck && !validName(mk) {
        throw SpecError("\(k).\(mk)", "is not a valid environment variable name")
      }
      last[mk] = out.count
      out.append((mk, s))
    }
    if last.count == out.count { return out }
    return out.enumerated().filter { last[$0.element.0] == $0.offset }.map(\.element)
  }
}

extension TaskSpec {
  /// A value given where a task id belongs, for the error that refuses it: a string quoted (its
  /// first 80 characters), anything else as JSON.
  static func shownID(_ v: JSON) -> String {
    guard let s = v.string else { return v.kindName }
    return quoted(s.prefix(80) + (s.count > 80 ? "…" : ""))
  }
}
