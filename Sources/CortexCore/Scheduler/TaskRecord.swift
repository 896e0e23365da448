/// Everything Cortex knows about one task.
///
/// The fields live in one shared box (copy on write): the scheduler reads and changes records
/// through its `[Int: TaskRecord]` many times per decision, and each change through the
/// dictionary moved the whole record out of its storage and back, while each copy retained every
/// string and array in it. Now a move is one pointer and a copy one retain; a write copies the
/// box first only when another record shares it, so records keep value semantics (a snapshot
/// taken on another thread never sees a later change).
public struct TaskRecord: Sendable {
  private var box: Box

  public var number: Int { box.number }
  public var spec: TaskSpec {
    _read { yield box.spec }
    _modify {
      unique()
      yield &box.spec
    }
  }
  /// The redacted spec, encoded once, for events, snapshots and spec.json.
  public var specJSON: [UInt8] {
    get { box.specJSON }
    set {
      unique()
      box.specJSON = newValue
    }
  }
  public var state: TaskState {
    get { box.state }
    set {
      unique()
      box.state = newValue
    }
  }
  /// The current (or last) attempt, from 1.
  public var attempt: Int {
    get { box.attempt }
    set {
      unique()
      box.attempt = newValue
    }
  }
  public var maxAttempts: Int {
    get { box.maxAttempts }
    set {
      unique()
      box.maxAttempts = newValue
    }
  }
  /// Tokens reserved at dispatch.
  public var budget: Int {
    get { box.budget }
    set {
      unique()
      box.budget = newValue
    }
  }
  public var timeoutMs: Int64? {
    get { box.timeoutMs }
    set {
      unique()
      box.timeoutMs = newValue
    }
  }
  public var reserved: Int {
    get { box.reserved }
    set {
      unique()
      box.reserved = newValue
    }
  }
  public var tokensUsed: Int {
    get { box.tokensUsed }
    set {
      unique()
      box.tokensUsed = newValue
    }
  }
  public var worker: Int? {
    get { box.worker }
    set {
      unique()
      box.worker = newValue
    }
  }
  public var pid: Int32? {
    get { box.pid }
    set {
      unique()
      box.pid = newValue
    }
  }
  public var submittedMs: Int64 {
    get { box.submittedMs }
    set {
      unique()
      box.submittedMs = newValue
    }
  }
  public var assignedMs: Int64? {
    get { box.assignedMs }
    set {
      unique()
      box.assignedMs = newValue
    }
  }
  public var startedMs: Int64? {
    get { box.startedMs }
    set {
      unique()
      box.startedMs = newValue
    }
  }
  public var endedMs: Int64? {
    get { box.endedMs }
    set {
      unique()
      box.endedMs = newValue
    }
  }
  public var exitCode: Int32? {
    get { box.exitCode }
    set {
      unique()
      box.exitCode = newValue
    }
  }
  public var signal: Int32? {
    get { box.signal }
    set {
      unique()
      box.signal = newValue
    }
  }
  public var reason: String? {
    get { box.reason }
    set {
      unique()
      box.reason = newValue
    }
  }
  public var notBeforeMs: Int64 {
    get { box.notBeforeMs }
    set {
      unique()
      box.notBeforeMs = newValue
    }
  }
  public var deadlineMs: Int64? {
    get { box.deadlineMs }
    set {
      unique()
      box.deadlineMs = newValue
    }
  }
  /// Times this task's worker died under it; more than two is poison.
  public var workerKills: Int {
    get { box.workerKills }
    set {
      unique()
      box.workerKills = newValue
    }
  }
  public var stopping: StopCause? {
    get { box.stopping }
    set {
      unique()
      box.stopping = newValue
    }
  }
  public var stopDeadlineMs: Int64? {
    get { box.stopDeadlineMs }
    set {
      unique()
      box.stopDeadlineMs = newValue
    }
  }
  public var waitingReason: String? {
    get { box.waitingReason }
    set {
      unique()
      box.waitingReason = newValue
    }
  }
  public var progress: Double? {
    get { box.progress }
    set {
      unique()
      box.progress = newValue
    }
  }
  public var message: String? {
    get { box.message }
    set {
      unique()
      box.message = newValue
    }
  }
  public var lastProgressLogMs: Int64 {
    get { box.lastProgressLogMs }
    set {
      unique()
      box.lastProgressLogMs = newValue
    }
  }
  /// Where the task sits in its priority queue (for position and estimated start).
  var enqueueSeq: UInt64 {
    get { box.enqueueSeq }
    set {
      unique()
      box.enqueueSeq = newValue
    }
  }
  /// True while an entry for this task in its priority queue is live.
  var inQueue: Bool {
    get { box.inQueue }
    set {
      unique()
      box.inQueue = newValue
    }
  }
  /// Its group's index in `Fleet.groups` once resolved (-1: not yet); see Scheduler+Groups.
  var group: Int {
    get { box.group }
    set {
      unique()
      box.group = newValue
    }
  }
  /// Rate-limited attempts retried without counting against `max_attempts` (in memory only).
  var rateLimitedRetries: Int {
    get { box.rateLimitedRetries }
    set {
      unique()
      box.rateLimitedRetries = newValue
    }
  }

  public init(
    number: Int, spec: TaskSpec, specJSON: [UInt8], maxAttempts: Int, budget: Int, timeoutMs: Int64?, submittedMs: Int64
  ) {
    box = Box(
      number: number, spec: spec, specJSON: specJSON, maxAttempts: maxAttempts, budget: budget, timeoutMs: timeoutMs,
      submittedMs: submittedMs)
  }

  private mutating func unique() {
    if !isKnownUniquelyReferenced(&box) { box = box.copy() }
  }

  public var id: String { TaskID.format(number) }
  public var type: String { spec.type ?? (spec.synthetic != nil ? "synthetic" : "exec") }

  private final class Box: @unchecked Sendable {
    // @unchecked: written only through TaskRecord's setters, after `unique()` made the box this
    // record's alone; shared boxes are only read.

    let number: Int
    var spec: TaskSpec
    var specJSON: [UInt8]
    var state: TaskState = .queued
    var attempt: Int = 1
    var maxAttempts: Int
    var budget: Int
    var timeoutMs: Int64?
    var reserved: Int = 0
    var tokensUsed: Int = 0
    var worker: Int?
    var pid: Int32?
    var submittedMs: Int64
    var assignedMs: Int64?
    var startedMs: Int64?
    var endedMs: Int64?
    var exitCode: Int32?
    var signal: Int32?
    var reason: String?
    var notBeforeMs: Int64 = 0
    var deadlineMs: Int64?
    var workerKills: Int = 0
    var stopping: StopCause?
    var stopDeadlineMs: Int64?
    var waitingReason: String?
    var progress: Double?
    var message: String?
    var lastProgressLogMs: Int64 = 0
    var enqueueSeq: UInt64 = 0
    var inQueue: Bool = false
    var group: Int = -1
    var rateLimitedRetries: Int = 0

    init(
      number: Int, spec: TaskSpec, specJSON: [UInt8], maxAttempts: Int, budget: Int, timeoutMs: Int64?, submittedMs: Int64
    ) {
      self.number = number
      self.spec = spec
      self.specJSON = specJSON
      self.maxAttempts = maxAttempts
      self.budget = budget
      self.timeoutMs = timeoutMs
      self.submittedMs = submittedMs
    }

    func copy() -> Box {
      let b = Box(
        number: number, spec: spec, specJSON: specJSON, maxAttempts: maxAttempts, budget: budget, timeoutMs: timeoutMs,
        submittedMs: submittedMs)
      b.state = state
      b.attempt = attempt
      b.reserved = reserved
      b.tokensUsed = tokensUsed
      b.worker = worker
      b.pid = pid
      b.assignedMs = assignedMs
      b.startedMs = startedMs
      b.endedMs = endedMs
      b.exitCode = exitCode
      b.signal = signal
      b.reason = reason
      b.notBeforeMs = notBeforeMs
      b.deadlineMs = deadlineMs
      b.workerKills = workerKills
      b.stopping = stopping
      b.stopDeadlineMs = stopDeadlineMs
      b.waitingReason = waitingReason
      b.progress = progress
      b.message = message
      b.lastProgressLogMs = lastProgressLogMs
      b.enqueueSeq = enqueueSeq
      b.inQueue = inQueue
      b.group = group
      b.rateLimitedRetries = rateLimitedRetries
      return b
    }
  }
}
