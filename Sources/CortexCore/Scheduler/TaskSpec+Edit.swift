extension TaskSpec {
  /// This spec with the fields named in `fields` taken from `change` (`cortex edit`): labels and
  /// env are merged by key (an empty label value removes the label), a new command or shell
  /// replaces what the task ran. Throws when the result is not a spec submit would accept. The
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
      case "command":
        s.command = change.command
        s.shell = nil
        s.synthetic = nil
      case "shell":
        s.shell = change.shell
        s.command = nil
        s.synthetic = nil
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
