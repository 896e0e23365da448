/// The decision a starting daemon takes for each worker slot of the daemon before it (SPEC §14),
/// as a pure function of what it can observe. The daemon gathers the facts (identity file, /proc,
/// the worker's `hello`, its spool, the log's task on the slot); this says what to do with them.
///
/// A worker is the previous daemon's own only if all three agree: the pid recorded at spawn, the
/// start time /proc gives for that pid now (pids are reused; start times are not, within a boot),
/// and the token the worker presents, which only the spawning daemon and the worker know.
public enum Readoption {
  /// What the spawning daemon recorded (`fifo/worker-NNN.id`).
  public struct Identity: Equatable, Sendable {
    public var slot: Int
    public var pid: Int32
    /// Field 22 of /proc/PID/stat: clock ticks after boot.
    public var startTime: UInt64
    public var token: String
    public init(slot: Int, pid: Int32, startTime: UInt64, token: String) {
      self.slot = slot
      self.pid = pid
      self.startTime = startTime
      self.token = token
    }
  }

  /// What /proc says about the recorded pid now.
  public enum Probe: Equatable, Sendable {
    case gone
    case alive(startTime: UInt64)
  }

  /// The task the log says is in flight on the slot (assigned or running, not terminal).
  public struct Expected: Equatable, Sendable {
    public var task: Int
    public var attempt: Int
    /// The log asked the worker to stop this attempt (`task.stopping`: cancel, timeout, budget):
    /// an outcome of that stop is then the one expected.
    public var stopping: Bool
    public init(task: Int, attempt: Int, stopping: Bool = false) {
      self.task = task
      self.attempt = attempt
      self.stopping = stopping
    }
  }

  /// What becomes of an adopted worker's task.
  public enum Disposition: Equatable, Sendable {
    /// No task of the log's on it (a task the log gave it but it never got is retried as before).
    case idle
    /// Still running the log's task: it stays running (`task.readopted`), same pid, same attempt.
    case running(WorkerReport)
    /// Finished the log's task while no daemon listened: the outcome is accepted, once. A task
    /// the worker stopped on request counts only when the log says a daemon asked (`task.stopping`);
    /// a stop the log does not explain (`cortex stop`, the worker's orphan timeout) is retried.
    case completed(TaskOutcome)
  }

  public enum Decision: Equatable, Sendable {
    case adopt(Disposition)
    /// The process is the one spawned for the slot (pid and start time) but cannot prove the rest,
    /// or holds a task the log does not expect of it: kill it and its task's group.
    case kill(reason: String, detail: String)
    /// No process to adopt (gone, or the pid now belongs to someone else, which is left alone).
    /// A completion the worker spooled before it went is still accepted when the spool proves it.
    case gone(reason: String, completed: TaskOutcome?)
  }

  public static func decide(
    identity: Identity, probe: Probe, hello: WorkerReport?, spool: WorkerReport?, expected: Expected?
  ) -> Decision {
    func matches(_ r: WorkerReport) -> Bool {
      guard let e = expected else { return false }
      return r.task == e.task && r.attempt == e.attempt
    }
    /// An outcome stands unless the worker stopped the task for a reason the log does not hold.
    func stands(_ r: WorkerReport) -> Bool { !r.cancelled || expected?.stopping == true }
    func spooledCompletion() -> TaskOutcome? {
      guard let s = spool, s.token == identity.token, s.pid == identity.pid, s.slot == identity.slot, matches(s), stands(s)
      else { return nil }
      return s.outcome
    }
    guard case .alive(let started) = probe else { return .gone(reason: "worker_gone", completed: spooledCompletion()) }
    guard started == identity.startTime else {
      // The pid was reused by an unrelated process: never signal it.
      return .gone(reason: "pid_reused", completed: spooledCompletion())
    }
    guard let h = hello else {
      return .kill(reason: "no_answer", detail: "pid \(identity.pid) did not answer the adoption handshake")
    }
    guard h.token == identity.token, h.pid == identity.pid, h.slot == identity.slot else {
      return .kill(reason: "unproven_identity", detail: "pid \(h.pid) presented a token or slot that does not match its spawn record")
    }
    if h.running {
      guard matches(h) else {
        let what = h.task.map { "\(TaskID.format($0)) attempt \(h.attempt)" } ?? "a task"
        return .kill(reason: "task_mismatch", detail: "runs \(what), which the log does not have in flight on this worker")
      }
      return .adopt(.running(h))
    }
    if let o = h.outcome, matches(h), stands(h) { return .adopt(.completed(o)) }
    return .adopt(.idle)
  }
}
