/// Task priority: `critical` > `high` > `medium` (default) > `low`; FIFO within one.
public enum Priority: Int, CaseIterable, Comparable, Sendable {
  case low = 0, medium = 1, high = 2, critical = 3

  /// A count per priority: a fixed table by raw value, not a dictionary (see `TaskState.Counts`).
  public struct Counts: Sendable, Equatable {
    private var values = [Int](repeating: 0, count: Priority.allCases.count)
    public init() {}
    public subscript(_ p: Priority, default d: Int) -> Int {
      get { values[p.rawValue] }
      set { values[p.rawValue] = newValue }
    }
    /// As a dictionary would answer (every priority has a count, 0 included).
    public subscript(_ p: Priority) -> Int? { values[p.rawValue] }
  }

  public init?(name: String) {
    switch name {
    case "low": self = .low
    case "medium": self = .medium
    case "high": self = .high
    case "critical": self = .critical
    default: return nil
    }
  }

  public var name: String {
    switch self {
    case .low: "low"
    case .medium: "medium"
    case .high: "high"
    case .critical: "critical"
    }
  }

  public static func < (a: Priority, b: Priority) -> Bool { a.rawValue < b.rawValue }
}

/// Task lifecycle states (SPEC §3). Terminal states are final.
public enum TaskState: String, CaseIterable, Sendable {
  case queued, assigned, running, succeeded, failed, cancelled
  case timedOut = "timed_out"
  case rejected

  public var isTerminal: Bool {
    switch self {
    case .queued, .assigned, .running: false
    default: true
    }
  }

  /// The event type that records entering this terminal state.
  public var terminalEventType: String {
    switch self {
    case .queued: "task.queued"
    case .assigned: "task.assigned"
    case .running: "task.running"
    case .succeeded: "task.succeeded"
    case .failed: "task.failed"
    case .cancelled: "task.cancelled"
    case .timedOut: "task.timed_out"
    case .rejected: "task.rejected"
    }
  }

  /// 0, 1, … in declaration order (an index into per-state tables).
  public var ordinal: Int {
    switch self {
    case .queued: 0
    case .assigned: 1
    case .running: 2
    case .succeeded: 3
    case .failed: 4
    case .cancelled: 5
    case .timedOut: 6
    case .rejected: 7
    }
  }

  /// How many tasks are in each state: a fixed table, not a dictionary (a state change updates
  /// it on every decision, and hashing the state hashes its name).
  public struct Counts: Sendable, Equatable {
    private var values = [Int](repeating: 0, count: TaskState.allCases.count)
    public init() {}
    public subscript(_ s: TaskState, default d: Int) -> Int {
      get { values[s.ordinal] }
      set { values[s.ordinal] = newValue }
    }
    /// As a dictionary would answer (every state has a count, 0 included).
    public subscript(_ s: TaskState) -> Int? { values[s.ordinal] }
  }

  /// Every event type that ends a task.
  public static let terminalEventTypes: Set<String> = Set(allCases.filter(\.isTerminal).map(\.terminalEventType))
}

/// Task ids are `task-` + a zero-padded monotonic number.
public enum TaskID {
  public static func format(_ n: Int) -> String {
    let s = String(n)
    return s.count >= 6 ? "task-" + s : "task-" + String(repeating: "0", count: 6 - s.count) + s
  }
  public static func parse(_ s: String) -> Int? {
    // On the UTF-8 bytes: a start reads ten thousand of these from the snapshot.
    var s = s
    return s.withUTF8 { numbered($0, prefix: "task-") }
  }
  /// The same from a text's bytes (a log line's, without making a String of them).
  public static func parse(utf8 b: ArraySlice<UInt8>) -> Int? { b.withUnsafeBufferPointer { numbered($0, prefix: "task-") } }
  /// What every command that takes task ids says of one that names no task (exit 65, field
  /// `id`): the id, and the newest one given out so far (`next` is the number the next task gets).
  public static func unknown(_ n: Int, next: Int) -> String { "unknown task \(format(n)) (\(newest(next: next)))" }
  /// The newest id given out, in words, when the next task will get number `next`.
  public static func newest(next: Int) -> String { next > 1 ? "the newest is \(format(next - 1))" : "no task has been submitted yet" }
}

/// The number N > 0 of `PREFIX` + 1 to 18 decimal digits, or nil.
func numbered(_ b: UnsafeBufferPointer<UInt8>, prefix: StaticString) -> Int? {
  let p = UnsafeBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount)
  guard b.count > p.count, b.count - p.count <= 18 else { return nil }
  for i in 0..<p.count where b[i] != p[i] { return nil }
  var n = 0
  for i in p.count..<b.count {
    guard b[i] >= 48, b[i] <= 57 else { return nil }
    n = n * 10 + Int(b[i] - 48)
  }
  return n > 0 ? n : nil
}

/// Worker ids are `worker-` + a three-digit slot number (1-based), matching the FIFO names.
public enum WorkerID {
  public static func format(_ n: Int) -> String {
    let s = String(n)
    return s.count >= 3 ? "worker-" + s : "worker-" + String(repeating: "0", count: 3 - s.count) + s
  }
  public static func parse(_ s: String) -> Int? {
    var s = s
    return s.withUTF8 { numbered($0, prefix: "worker-") }
  }
  /// The same from a text's bytes.
  public static func parse(utf8 b: ArraySlice<UInt8>) -> Int? { b.withUnsafeBufferPointer { numbered($0, prefix: "worker-") } }
}
