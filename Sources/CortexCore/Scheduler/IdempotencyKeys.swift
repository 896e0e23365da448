/// The `idempotency_key`s the daemon answers for: key → the task it named, and when that task
/// ended. A key lives as long as its task's details do: while the task is unfinished, and after
/// it ends until `retention.task_days` or `cortex clean` forgets the task's files (the same rule
/// selects the keys; synthetic tasks, which have no files, follow it too). A forgotten key names
/// a new task when it is submitted again. Without this bound the map, and every snapshot, grew
/// with every key ever used (docs/design.md, "Idempotency keys").
///
/// Pure: `forget` is decided on the loop and logged as `idempotency.forgotten` with the rule and
/// its cut-off time, and replay applies the same rule to the same end times (those of the
/// terminal events), so a restart or a `kill -9` forgets exactly what the daemon had forgotten.
public struct IdempotencyKeys: Sendable {
  struct Entry: Sendable {
    var task: Int
    /// When the task ended (ms since the epoch); nil while it has not.
    var endedMs: Int64?
  }

  private var entries: [String: Entry] = [:]

  public init() {}

  public var count: Int { entries.count }

  /// The task `key` names, if the daemon still remembers the key.
  public subscript(key: String) -> Int? { entries[key]?.task }

  /// `key` names task `n` (a new task; or one restored from a snapshot or the log).
  mutating func remember(_ key: String, task n: Int, endedMs: Int64? = nil) {
    entries[key] = Entry(task: n, endedMs: endedMs)
  }

  /// Task `n`, named by `key`, ended at `ms`.
  mutating func ended(_ key: String, task n: Int, at ms: Int64) {
    guard let i = entries.index(forKey: key), entries.values[i].task == n else { return }
    entries.values[i].endedMs = ms
  }

  /// Forgets the keys of finished tasks that ended in `state` (nil: any finished state) at or
  /// before `endedByMs` (nil: whenever). `stateOf` gives a task's state; a task that is not
  /// finished (or not known) keeps its key. Returns how many were forgotten.
  mutating func forget(state: TaskState?, endedByMs: Int64?, stateOf: (Int) -> TaskState?) -> Int {
    let before = entries.count
    entries = entries.filter { _, e in
      guard let ended = e.endedMs, let s = stateOf(e.task), s.isTerminal else { return true }
      if let state, state != s { return true }
      if let cut = endedByMs, ended > cut { return true }
      return false
    }
    return before - entries.count
  }

  /// For `task-queue.json`: `{"key": "task-000012"}` for an unfinished task,
  /// `{"key": ["task-000012", ENDED_MS]}` for a finished one; in task order.
  func json() -> JSON {
    .object(
      entries.sorted { $0.value.task < $1.value.task }.map { k, e in
        let id = JSON.string(TaskID.format(e.task))
        return (k, e.endedMs.map { .array([id, .int($0)]) } ?? id)
      })
  }

  /// Reads the snapshot's map (after its tasks, whose keys are already remembered). A finished
  /// task's key from a snapshot that kept no end times (written before keys were forgotten)
  /// takes the snapshot's own time as its end: it is kept at least as long as it would have
  /// been, and every start from that snapshot decides alike.
  mutating func restore(_ v: JSON?, writtenMs: Int64, isActive: (Int) -> Bool) throws(Scheduler.RecoveryError) {
    for (k, value) in v?.object ?? [] {
      let id = value.string ?? value.array?.first?.string
      guard let n = id.flatMap(TaskID.parse) else {
        throw Scheduler.RecoveryError(description: "task-queue.json: idempotency.\(visible(k)) is not a task id")
      }
      if entries[k] != nil { continue }
      if isActive(n) {
        remember(k, task: n)
      } else if let a = value.array {
        guard a.count == 2, let ms = a[1].int else {
          throw Scheduler.RecoveryError(
            description: "task-queue.json: idempotency.\(visible(k)) is not [task id, end time in ms]")
        }
        remember(k, task: n, endedMs: ms)
      } else {
        remember(k, task: n, endedMs: writtenMs)
      }
    }
  }
}

extension Scheduler {
  /// `cortex clean` or the `retention.task_days` sweep (`reason` `requested` or `task_days`)
  /// forgets the files of the finished tasks `rule` selects at `now`: their idempotency keys go
  /// with them, logged as `idempotency.forgotten` (nothing when none goes). Returns how many.
  @discardableResult
  public mutating func forgetKeys(_ rule: Retention.CleanRule, reason: String, now: Int64, into out: inout [Action]) -> Int {
    let cut = rule.olderThanMs.map { now - $0 }
    let n = forgetKeys(state: rule.state, endedByMs: cut)
    guard n > 0 else { return 0 }
    var fields: [(String, JSON)] = [("keys", .int(Int64(n)))]
    if let s = rule.state { fields.append(("state", .string(s.rawValue))) }
    if let cut { fields.append(("ended_by_ms", .int(cut))) }
    let which = (rule.state.map { "\($0.rawValue) " } ?? "finished ") + "tasks"
    let when = cut.map { " that ended by \(Timestamp.rfc3339(ms: $0))" } ?? ""
    out.append(
      .log(
        Event(
          "idempotency.forgotten", reason: reason,
          detail: "forgot the idempotency keys of \(n) \(which)\(when) with their files; submitting such a key again makes a new task",
          fields: fields)))
    return n
  }

  /// Replays `idempotency.forgotten`: the same rule on the same end times.
  mutating func replayForgottenKeys(_ e: JSON) {
    let state = e["state"]?.string.flatMap(TaskState.init(rawValue:))
    forgetKeys(state: state, endedByMs: e["ended_by_ms"]?.int)
  }

  @discardableResult
  private mutating func forgetKeys(state: TaskState?, endedByMs: Int64?) -> Int {
    // Copies (no copying: nothing changes them meanwhile) so the closure does not read `self`
    // while `idempotency` is being changed.
    let (held, finished) = (tasks, finishedStates)
    return idempotency.forget(state: state, endedByMs: endedByMs) { held[$0]?.state ?? finished[$0] }
  }
}
