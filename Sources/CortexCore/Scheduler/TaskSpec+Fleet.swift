extension TaskSpec {
  /// This spec with the fields named in `fields` taken from `change` (`cortex edit`): labels and
  /// env are merged by key (an empty label value removes the label), a new command or shell
  /// replaces what the task ran, and the agent that read its output. Throws when the result is not a spec submit would accept. The
  /// same on a single host (the scheduler's `edit`) and in cluster mode (the database's copy).
  public func edited(with change: TaskSpec, fields: [String]) throws(SpecError) -> TaskSpec {
    var s = self
    for f in fields {
      switch f {
      case "priority": s.priority = change.priority
      case "group": s.group = change.group
      case "timeout_s": s.timeoutS = change.timeoutS
      case "labels": s.labels = Scheduler.merged(s.labels, change.labels, dropEmpty: true)
      case "env": s.env = Scheduler.merged(s.env, change.env, dropEmpty: false)
      // What it runs now is the command given, not the agent's: an agent task edited to
      // `-- echo hello` had that output read as the agent's stream-json, and failed.
      case "command":
        s.command = change.command
        s.shell = nil
        s.synthetic = nil
        s.agent = nil
      case "shell":
        s.shell = change.shell
        s.command = nil
        s.synthetic = nil
        s.agent = nil
      default: break
      }
    }
    _ = try TaskSpec.decode(s.json())
    try TaskSpec.checkTimeout("timeout_s", s.timeoutS)
    return s
  }
}

extension TaskSpec {
  /// The spec of a new task that submits task `n` again (`cortex retry`, on a single host and in
  /// cluster mode): it names `n` in `retry_of`; its idempotency key, dependencies and SLA
  /// deadline belonged to the first submission and are dropped.
  public func retrying(_ n: Int) -> TaskSpec {
    var s = self
    s.retryOf = n
    s.idempotencyKey = nil
    s.dependsOn = []
    s.dependsOnBatch = []
    s.slaDeadlineMs = nil
    return s
  }
}

/// Why one task of a retry request cannot be retried, with the exit code of the refusal.
public struct RetryRefusal: Error {
  public let message: String
  public let code: Int
  /// No spec is kept for it at all: `--all-failed` counts it (`without_spec`) rather than
  /// naming it on every run.
  public var absent = false
  public init(message: String, code: Int, absent: Bool = false) {
    self.message = message
    self.code = code
    self.absent = absent
  }
}

extension TaskSpec {
  /// `retrying(n)`, unless this spec was read back from a redacted copy whose secret values are
  /// gone (`secretsGone` says why): then refused (65, naming the paths), never run with
  /// `[redacted]` in place of a credential.
  public func retry(of n: Int, secretsGone: String) throws(RetryRefusal) -> TaskSpec {
    let lost = redactedPaths
    guard lost.isEmpty else {
      let id = TaskID.format(n)
      throw RetryRefusal(
        message: "\(id): its secret values (\(lost.joined(separator: ", "))) are no longer kept (\(secretsGone)); "
          + "submit it again with them (cortex show \(id) prints its spec)", code: 65)
    }
    return retrying(n)
  }
}

/// What a retry request (on a single host or in cluster mode) comes to, task by task: the specs
/// to submit, and the answer's account of the rest. A named task that cannot be retried refuses
/// the whole request; one that `--all-failed` found is left out and named in `skipped` (it would
/// otherwise block every later `--all-failed`), or counted in `without_spec` when no spec is kept.
public struct RetryBatch {
  public private(set) var specs: [TaskSpec] = []
  public private(set) var retried: [Int] = []
  var skipped: [JSON] = []
  var withoutSpec = 0

  public init() {}

  /// Adds task `n`'s outcome; returns the refusal of the whole request when `n` was named and
  /// cannot be retried.
  public mutating func add(_ n: Int, named: Bool, _ outcome: Result<TaskSpec, RetryRefusal>) -> RetryRefusal? {
    switch outcome {
    case .success(let spec):
      specs.append(spec)
      retried.append(n)
    case .failure(let refusal):
      if named { return refusal }
      if refusal.absent {
        withoutSpec += 1
      } else {
        skipped.append(.object([("id", .string(TaskID.format(n))), ("why", .string(refusal.message))]))
      }
    }
    return nil
  }

  /// `retried`, and `skipped` and `without_spec` when there are any, for the answer.
  public var answerFields: [(String, JSON)] {
    var o: [(String, JSON)] = [("retried", .array(retried.map { .string(TaskID.format($0)) }))]
    if !skipped.isEmpty { o.append(("skipped", .array(skipped))) }
    if withoutSpec > 0 { o.append(("without_spec", .int(Int64(withoutSpec)))) }
    return o
  }
}
