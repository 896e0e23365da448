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

  public var number: Int { box.f.number }
  public var spec: TaskSpec {
    _read { yield box.f.spec }
    _modify {
      unique()
      yield &box.f.spec
    }
  }
  /// The redacted spec, encoded once, for events, snapshots and spec.json.
  public var specJSON: [UInt8] {
    get { box.f.specJSON }
    set {
      unique()
      box.f.specJSON = newValue
    }
  }
  public var state: TaskState {
    get { box.f.state }
    set {
      unique()
      box.f.state = newValue
    }
  }
  /// The current (or last) attempt, from 1.
  public var attempt: Int {
    get { box.f.attempt }
    set {
      unique()
      box.f.attempt = newValue
    }
  }
  public var maxAttempts: Int {
    get { box.f.maxAttempts }
    set {
      unique()
      box.f.maxAttempts = newValue
    }
  }
  /// Tokens reserved at dispatch.
  public var budget: Int {
    get { box.f.budget }
    set {
      unique()
      box.f.budget = newValue
    }
  }
  public var timeoutMs: Int64? {
    get { box.f.timeoutMs }
    set {
      unique()
      box.f.timeoutMs = newValue
    }
  }
  public var reserved: Int {
    get { box.f.reserved }
    set {
      unique()
      box.f.reserved = newValue
    }
  }
  public var tokensUsed: Int {
    get { box.f.tokensUsed }
    set {
      unique()
      box.f.tokensUsed = newValue
    }
  }
  public var worker: Int? {
    get { box.f.worker }
    set {
      unique()
      box.f.worker = newValue
    }
  }
  public var pid: Int32? {
    get { box.f.pid }
    set {
      unique()
      box.f.pid = newValue
    }
  }
  public var submittedMs: Int64 {
    get { box.f.submittedMs }
    set {
      unique()
      box.f.submittedMs = newValue
    }
  }
  public var assignedMs: Int64? {
    get { box.f.assignedMs }
    set {
      unique()
      box.f.assignedMs = newValue
    }
  }
  public var startedMs: Int64? {
    get { box.f.startedMs }
    set {
      unique()
      box.f.startedMs = newValue
    }
  }
  public var endedMs: Int64? {
    get { box.f.endedMs }
    set {
      unique()
      box.f.endedMs = newValue
    }
  }
  public var exitCode: Int32? {
    get { box.f.exitCode }
    set {
      unique()
      box.f.exitCode = newValue
    }
  }
  public var signal: Int32? {
    get { box.f.signal }
    set {
      unique()
      box.f.signal = newValue
    }
  }
  public var reason: String? {
    get { box.f.reason }
    set {
      unique()
      box.f.reason = newValue
    }
  }
  /// The sentence of a finished task's terminal event ("codex not found on PATH; …"), for `wait`.
  public var detail: String? {
    get { box.f.detail }
    set {
      unique()
      box.f.detail = newValue
    }
  }
  public var notBeforeMs: Int64 {
    get { box.f.notBeforeMs }
    set {
      unique()
      box.f.notBeforeMs = newValue
    }
  }
  public var deadlineMs: Int64? {
    get { box.f.deadlineMs }
    set {
      unique()
      box.f.deadlineMs = newValue
    }
  }
  /// Times this task's worker died under it; more than two is poison.
  public var workerKills: Int {
    get { box.f.workerKills }
    set {
      unique()
      box.f.workerKills = newValue
    }
  }
  public var stopping: StopCause? {
    get { box.f.stopping }
    set {
      unique()
      box.f.stopping = newValue
    }
  }
  public var stopDeadlineMs: Int64? {
    get { box.f.stopDeadlineMs }
    set {
      unique()
      box.f.stopDeadlineMs = newValue
    }
  }
  public var waitingReason: String? {
    get { box.f.waitingReason }
    set {
      unique()
      box.f.waitingReason = newValue
    }
  }
  public var progress: Double? {
    get { box.f.progress }
    set {
      unique()
      box.f.progress = newValue
    }
  }
  public var message: String? {
    get { box.f.message }
    set {
      unique()
      box.f.message = newValue
    }
  }
  public var lastProgressLogMs: Int64 {
    get { box.f.lastProgressLogMs }
    set {
      unique()
      box.f.lastProgressLogMs = newValue
    }
  }
  /// Where the task sits in its priority queue (for position and estimated start).
  var enqueueSeq: UInt64 {
    get { box.f.enqueueSeq }
    set {
      unique()
      box.f.enqueueSeq = newValue
    }
  }
  /// True while an entry for this task in its priority queue is live.
  var inQueue: Bool {
    get { box.f.inQueue }
    set {
      unique()
      box.f.inQueue = newValue
    }
  }
  /// Its group's index in `Fleet.groups` once resolved (-1: not yet); see Scheduler+Groups.
  var group: Int {
    get { box.f.group }
    set {
      unique()
      box.f.group = newValue
    }
  }
  /// Rate-limited attempts retried without counting against `max_attempts` (in memory only).
  var rateLimitedRetries: Int {
    get { box.f.rateLimitedRetries }
    set {
      unique()
      box.f.rateLimitedRetries = newValue
    }
  }

  public init(
    number: Int, spec: TaskSpec, specJSON: [UInt8], maxAttempts: Int, budget: Int, timeoutMs: Int64?, submittedMs: Int64
  ) {
    box = Box(
      Fields(
        number: number, spec: spec, specJSON: specJSON, maxAttempts: maxAttempts, budget: budget, timeoutMs: timeoutMs,
        submittedMs: submittedMs))
  }

  private mutating func unique() {
    if !isKnownUniquelyReferenced(&box) { box = Box(box.f) }
  }

  public var id: String { TaskID.format(number) }
  public var type: String { spec.type ?? (spec.synthetic != nil ? "synthetic" : "exec") }

  /// Every stored field; its memberwise init takes the seven without a default.
  private struct Fields {
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
    var detail: String?
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
  }

  private final class Box: @unchecked Sendable {
    // @unchecked: written only through TaskRecord's setters, after `unique()` made the box this
    // record's alone; shared boxes are only read.
    var f: Fields
    init(_ f: Fields) { self.f = f }
  }
}
