/// A connection waiting for an answer; chosen by the daemon.
public typealias ClientID = UInt64

/// Why a running task is being stopped by Cortex (not by itself).
public enum StopCause: String, Sendable {
  case cancel, timeout, budget, shutdown

  /// The `reason` of the `task.stopping` event that records this stop, and of the terminal event
  /// it ends with. Nil for `shutdown`: `cortex stop` requeues the task, which needs no record.
  public var logReason: String? {
    switch self {
    case .cancel: "cancelled"
    case .timeout: "timeout"
    case .budget: "token_budget_exceeded"
    case .shutdown: nil
    }
  }

  /// The stop a `task.stopping` event's `reason` records.
  public init?(logReason: String?) {
    switch logReason {
    case "cancelled": self = .cancel
    case "timeout": self = .timeout
    case "token_budget_exceeded": self = .budget
    default: return nil
    }
  }

  /// The terminal state a task stopped for this cause ends in (nil: `shutdown` requeues it).
  public var endState: TaskState? {
    switch self {
    case .cancel: .cancelled
    case .timeout: .timedOut
    case .budget: .failed
    case .shutdown: nil
    }
  }
}

public enum WorkerState: String, Sendable {
  /// Spawned, not yet ready.
  case starting
  case idle
  case busy
  /// Told to exit or killed; waiting for it to be reaped.
  case stopping
  /// Waiting for its restart time after a crash.
  case restarting
  /// Crash-looped; no more restarts until `cortex scale` or a restart of the daemon.
  case parked
  /// Not running and not wanted (beyond the pool size, or the daemon is stopping).
  case stopped
}

public struct WorkerRecord: Sendable {
  public let slot: Int
  public var state: WorkerState = .stopped
  public var pid: Int32 = 0
  public var task: Int?
  public var lastSeenMs: Int64 = 0
  public var spawnedMs: Int64 = 0
  public var readyMs: Int64 = 0
  public var tasksDone = 0
  public var restarts: [Int64] = []
  public var restartAtMs: Int64 = 0
  public var killDeadlineMs: Int64?
  /// Leave after the current task (pool shrinking).
  public var retiring = false
  public var id: String { WorkerID.format(slot) }
}

/// A running estimate per worker type: EWMA of duration and tokens plus a window for quantiles.
public struct Estimate: Sendable {
  public var count = 0
  public var ewmaDurationMs = 0.0
  public var ewmaTokens = 0.0
  public var recentDurations: [Double] = []

  mutating func observe(durationMs: Double, tokens: Int) {
    let a = 0.2
    if count == 0 {
      ewmaDurationMs = durationMs
      ewmaTokens = Double(tokens)
    } else {
      ewmaDurationMs += a * (durationMs - ewmaDurationMs)
      ewmaTokens += a * (Double(tokens) - ewmaTokens)
    }
    count += 1
    if recentDurations.count >= 256 { recentDurations.removeFirst(recentDurations.count - 255) }
    recentDurations.append(durationMs)
  }

  public func quantile(_ q: Double) -> Double? {
    if recentDurations.isEmpty { return nil }
    let s = recentDurations.sorted()
    return s[min(s.count - 1, Int(Double(s.count - 1) * q + 0.5))]
  }
}

/// What the scheduler wants done. `log` actions are written first, in order; the rest are carried
/// out only after the log has them (write-ahead).
public enum Action: Sendable {
  case log(Event)
  /// Answer a client. `durable`: only after the log is fsynced.
  case reply(ClientID, JSON, durable: Bool)
  case send(worker: Int, DaemonToWorker)
  case spawnWorker(Int)
  /// SIGKILL a worker process (unhealthy, garbage, or late to exit).
  case killWorker(Int, pid: Int32)
  /// Signal a task's process group (left behind by a dead worker).
  case killGroup(pgid: Int32, hard: Bool)
  /// Close a worker's FIFOs; it has been reaped and is not coming back now.
  case closeWorker(Int)
  case writeSpec(task: Int)
  case writeResult(task: Int)
  /// Persist a task's secret values (durably, before the log line that names them is written).
  case storeSecrets(task: Int, SpecSecrets)
  /// The graceful stop is complete: every worker is gone.
  case stopped
}

/// The terminal state of every task that left the full-record window: one byte per task number
/// (tasks are numbered densely from 1), so a daemon that has run millions of tasks keeps a few
/// MiB for them rather than a dictionary entry each.
public struct FinishedStates: Sendable {
  private var codes: [UInt8] = []

  public init() {}

  public subscript(_ n: Int) -> TaskState? {
    get {
      guard n >= 0, n < codes.count, codes[n] != 0 else { return nil }
      return TaskState.allCases[Int(codes[n]) - 1]
    }
    set {
      guard n >= 0 else { return }
      if n >= codes.count {
        guard newValue != nil else { return }
        codes.reserveCapacity(max(n + 1, codes.count * 2))
        codes.append(contentsOf: repeatElement(0, count: n + 1 - codes.count))
      }
      codes[n] = newValue.map { UInt8(TaskState.allCases.firstIndex(of: $0)! + 1) } ?? 0
    }
  }

  /// Sets every task of `range` to `state` at once (a snapshot's `"1-9990000"` restores in one
  /// fill rather than ten million stores).
  public mutating func set(_ range: ClosedRange<Int>, _ state: TaskState) {
    guard range.lowerBound >= 0 else { return }
    if range.upperBound >= codes.count {
      codes.reserveCapacity(range.upperBound + 1)
      codes += [UInt8](repeating: 0, count: range.upperBound + 1 - codes.count)
    }
    let code = UInt8(TaskState.allCases.firstIndex(of: state)! + 1)
    codes.withUnsafeMutableBufferPointer { b in
      for i in range { b[i] = code }
    }
  }

  /// Every finished task as runs of consecutive numbers in one state, ascending: a daemon that has
  /// run a million tasks, nearly all succeeded, has a handful of runs. The snapshot stores these.
  public var runs: [(first: Int, last: Int, state: TaskState)] {
    var out: [(first: Int, last: Int, state: TaskState)] = []
    var n = 0
    while n < codes.count {
      let c = codes[n]
      guard c != 0 else {
        n += 1
        continue
      }
      var last = n
      while last + 1 < codes.count, codes[last + 1] == c { last += 1 }
      out.append((n, last, TaskState.allCases[Int(c) - 1]))
      n = last + 1
    }
    return out
  }

  /// A snapshot's `finished.<state>` value as ranges: "1-5000,5002,5004-9000", or (written before
  /// the ranges) an array of numbers. Nil when malformed or a range runs backwards.
  public static func ranges(_ v: JSON) -> [ClosedRange<Int>]? {
    if let list = v.array {
      var out: [ClosedRange<Int>] = []
      for n in list {
        guard let i = n.int, i >= 1 else { return nil }
        out.append(Int(i)...Int(i))
      }
      return out
    }
    guard let text = v.string else { return nil }
    guard !text.isEmpty else { return [] }
    var out: [ClosedRange<Int>] = []
    for part in text.split(separator: ",", omittingEmptySubsequences: false) {
      let ends = part.split(separator: "-", omittingEmptySubsequences: false)
      guard ends.count <= 2, let a = Int(ends[0]), a >= 1 else { return nil }
      let b = ends.count == 2 ? Int(ends[1]) : a
      guard let b, b >= a, b - a < 1 << 32 else { return nil }
      out.append(a...b)
    }
    return out
  }

  /// Every (number, state), ascending.
  public var all: [(Int, TaskState)] {
    runs.flatMap { r in (r.first...r.last).map { ($0, r.state) } }
  }
}
