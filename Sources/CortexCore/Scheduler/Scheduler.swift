/// The decision core of Cortex: a state machine fed with inputs and the current time, returning
/// actions. No I/O, no clock reads, no globals: the daemon loop performs what it returns, and tests
/// drive it directly.
public struct Scheduler: Sendable {
  public enum Input: Sendable {
    /// `declared`: the whole batch's size when only its first parts came (refused early for
    /// `max_queue`): what the refusal names.
    case submit(ClientID, [TaskSpec], declared: Int? = nil)
    case cancel(ClientID, [Int])
    case wait(ClientID, [Int])
    case workerSpawned(Int, pid: Int32)
    case workerSpawnFailed(Int, String)
    case worker(Int, WorkerToDaemon)
    /// A worker wrote something that is not a valid message.
    case workerGarbage(Int, String)
    case workerExited(Int, pid: Int32, status: String, crashed: Bool)
    case scale(ClientID, Int)
    /// A sample of the machine: idle CPU (in cores) and available memory (MiB).
    case resources(idleCores: Double, availableMB: Int)
    case stop(timeoutMs: Int64)
    case tick
    /// Tasks this node claimed from a shared queue (cluster mode), and the node's name.
    case adopt([Adopted], node: String)
    /// Pause, resume, group limits, retry, edit (Scheduler+Control).
    case control(ClientID, FleetCommand)
  }

  public enum Phase: Equatable, Sendable {
    case running
    /// Not admitting; running tasks may finish until the deadline.
    case draining(deadlineMs: Int64)
    /// Workers told to exit.
    case exiting(deadlineMs: Int64)
    case stopped
  }

  public var config: Config
  public internal(set) var phase: Phase = .running
  public internal(set) var tasks: [Int: TaskRecord] = [:]
  public internal(set) var nextTaskNumber = 1
  public internal(set) var workers: [WorkerRecord] = []
  public internal(set) var desiredWorkers: Int
  public internal(set) var tokensUsed = 0
  public internal(set) var tokensReserved = 0
  public internal(set) var estimates: [String: Estimate] = [:]
  /// Counts of tasks by state, kept with every transition.
  public internal(set) var counts = TaskState.Counts()
  public internal(set) var rejectedSubmits = 0
  /// Whether the log may take new decisions (false after a failed write, until one succeeds).
  public var admitting = true
  public var admissionBlockedReason: String?

  /// Groups with their queues (one FIFO per priority each), pauses and rate limits: see
  /// Scheduler+Groups.swift.
  public internal(set) var fleet = Fleet()
  var queuedByPriority: [Int] = Array(repeating: 0, count: Priority.allCases.count)
  var enqueueCounter: UInt64 = 0
  /// Tasks waiting for a retry time.
  var delayed: [Int] = []
  /// Tasks waiting for dependencies, and who waits on whom.
  var blocked: Set<Int> = []
  var dependents: [Int: [Int]] = [:]
  var idle: [Int] = []
  /// Keys of `idempotency_key`, bounded by retention (IdempotencyKeys).
  public internal(set) var idempotency = IdempotencyKeys()
  var taskWaiters: [Int: [ClientID]] = [:]
  var waitRequests: [ClientID: (pending: Set<Int>, ids: [Int])] = [:]
  var cancelWaiters: [Int: [ClientID]] = [:]
  /// A cancel still waiting for running tasks' groups to be gone, with the answer for every id
  /// it named (unknown, already finished, cancelled while queued) to send then.
  var cancelRequests: [ClientID: (pending: Set<Int>, results: [(String, JSON)])] = [:]
  var rng: SplitMix64
  /// The environment names and values earlier submits found clean (resolve's redaction).
  var redactionMemo = RedactionMemo()
  /// Terminal tasks kept in full; older ones are kept as number → state only.
  var finishedOrder: [Int] = []
  public internal(set) var finishedStates = FinishedStates()
  public var keepFinished = 2000
  /// Every task some later task retries (`retry_of`), held or not: what keeps `--all-failed` to
  /// the newest of each retry chain (Scheduler+Retry). Kept in `task-queue.json` as ranges.
  public internal(set) var retried: Set<Int> = []
  /// False after a snapshot written before `retried` was kept: the daemon then reads `retry_of`
  /// from the `spec.json` of the tasks it does not hold (`restoreRetried`).
  public internal(set) var retriedComplete = true
  /// The latest machine sample, less what was dispatched since (nil until the daemon sends one).
  public internal(set) var resources: Resources?

  public struct Resources: Sendable, Equatable {
    public var idleCores: Double
    public var availableMB: Int
    var claimedCores: Double
    var claimedMB: Int
  }

  public init(config: Config, seed: UInt64 = 0x5eed) {
    self.config = config
    self.desiredWorkers = config.workers
    self.rng = SplitMix64(seed: seed)
    applyFleetConfig(now: 0)
  }

  public var budgetAvailable: Int { config.tokenBudgetTotal - tokensReserved - tokensUsed }
  public var queuedCount: Int { queuedByPriority.reduce(0, +) + delayed.count + blocked.count }
  public func queued(_ p: Priority) -> Int { queuedByPriority[p.rawValue] }
  public var idleWorkers: Int { idle.count }
  public var activeCount: Int { counts[.queued, default: 0] + counts[.assigned, default: 0] + counts[.running, default: 0] }

  /// The state of any task ever accepted (full record or the compact finished map).
  public func state(of n: Int) -> TaskState? { tasks[n]?.state ?? finishedStates[n] }

  /// Feeds one input; appends the resulting actions to `out`.
  public mutating func handle(_ input: Input, now: Int64, into out: inout [Action]) {
    switch input {
    case .submit(let c, let specs, let declared): submit(c, specs, declared: declared, now: now, into: &out)
    case .cancel(let c, let ids): cancel(c, ids, now: now, into: &out)
    case .wait(let c, let ids): wait(c, ids, into: &out)
    case .workerSpawned(let w, let pid): workerSpawned(w, pid: pid, now: now, into: &out)
    case .workerSpawnFailed(let w, let why): workerSpawnFailed(w, why, now: now, into: &out)
    case .worker(let w, let msg): workerMessage(w, msg, now: now, into: &out)
    case .workerGarbage(let w, let why): workerGarbage(w, why, now: now, into: &out)
    case .workerExited(let w, let pid, let status, let crashed):
      workerExited(w, pid: pid, status: status, crashed: crashed, now: now, into: &out)
    case .scale(let c, let n): scale(c, n, now: now, into: &out)
    case .resources(let cpu, let mem):
      resources = Resources(idleCores: cpu, availableMB: mem, claimedCores: 0, claimedMB: 0)
    case .stop(let t): beginStop(timeoutMs: t, now: now, into: &out)
    case .tick: tick(now: now, into: &out)
    case .adopt(let list, let node): adopt(list, node: node, now: now, into: &out)
    case .control(let c, let cmd): control(c, cmd, now: now, into: &out)
    }
    dispatch(now: now, into: &out)
    progressStop(now: now, into: &out)
  }

  /// Convenience for tests.
  public mutating func handle(_ input: Input, now: Int64) -> [Action] {
    var out: [Action] = []
    handle(input, now: now, into: &out)
    return out
  }

  /// Starts the pool: spawns every worker slot.
  public mutating func start(now: Int64, into out: inout [Action]) {
    for slot in 1...desiredWorkers { ensureSlot(slot) }
    for i in workers.indices where workers[i].state == .stopped && workers[i].slot <= desiredWorkers {
      workers[i].state = .starting
      workers[i].spawnedMs = now
      workers[i].lastSeenMs = now
      out.append(.spawnWorker(workers[i].slot))
    }
  }

  mutating func ensureSlot(_ slot: Int) {
    while workers.count < slot { workers.append(WorkerRecord(slot: workers.count + 1)) }
  }

  mutating func setState(_ n: Int, _ s: TaskState) {
    // One lookup; the record is changed in place (see TaskRecord).
    guard let i = tasks.index(forKey: n) else { return }
    let old = tasks.values[i].state
    if old == s { return }
    tasks.values[i].state = s
    counts[old, default: 0] -= 1
    counts[s, default: 0] += 1
    groupStateChanged(n, at: i, from: old, to: s)
  }

  /// Changes task `n`'s record in place (one lookup, no copy of it); nil when there is none.
  @discardableResult
  mutating func update<R>(_ n: Int, _ change: (inout TaskRecord) -> R) -> R? {
    guard let i = tasks.index(forKey: n) else { return nil }
    return change(&tasks.values[i])
  }

  /// The earliest time at which `tick` has something to do, or nil.
  public func nextWakeMs() -> Int64? {
    var t: Int64? = nil
    func consider(_ v: Int64?) {
      guard let v else { return }
      if t == nil || v < t! { t = v }
    }
    for n in delayed { consider(tasks[n]?.notBeforeMs) }
    consider(fleetWakeMs())
    let hb = heartbeatWindowMs
    for w in workers {
      switch w.state {
      case .idle, .busy, .starting: consider(w.lastSeenMs + hb)
      case .restarting: consider(w.restartAtMs)
      case .parked: if phase == .running && w.slot <= desiredWorkers { consider(w.restartAtMs) }
      case .stopping: consider(w.killDeadlineMs)
      default: break
      }
      if let n = w.task, let task = tasks[n] {
        consider(task.stopDeadlineMs ?? task.deadlineMs)
      }
    }
    switch phase {
    case .draining(let d), .exiting(let d): consider(d)
    default: break
    }
    return t
  }

  var heartbeatWindowMs: Int64 { Numbers.ms(fromSeconds: config.heartbeatIntervalS) * Int64(config.heartbeatMisses) }
  var graceMs: Int { Int(Numbers.ms(fromSeconds: config.killGraceS)) }
}

/// A small deterministic PRNG (SplitMix64) so jitter is reproducible under test.
public struct SplitMix64: Sendable {
  var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  /// Uniform in 0..<n.
  public mutating func below(_ n: Int64) -> Int64 { n <= 0 ? 0 : Int64(next() % UInt64(n)) }
}
