/// Retention decisions (SPEC §13), without I/O: which sealed segments go now, and which finished
/// tasks' files. The lifecycle thread carries them out.
public enum Retention {
  public struct Removal: Equatable, Sendable {
    public var segment: Manifest.Segment
    /// The limit that removes it: `log_days` or `log_bytes`.
    public var reason: String
    public init(segment: Manifest.Segment, reason: String) {
      self.segment = segment
      self.reason = reason
    }
  }

  public struct Plan: Equatable, Sendable {
    /// Oldest first, always a prefix of the sealed segments (the log never gets a hole).
    public var remove: [Removal] = []
    /// A segment is past a limit but no durable snapshot covers it yet: a snapshot now would let
    /// it go (the daemon writes one early, at most once a second).
    public var needsSnapshot = false
    public init(remove: [Removal] = [], needsSnapshot: Bool = false) {
      self.remove = remove
      self.needsSnapshot = needsSnapshot
    }
  }

  /// The sealed segments to remove: oldest first, while the oldest is past `log_days` or the log
  /// is over `log_bytes`, and only while it is fully covered by `coveredSeq` (the seq of the
  /// older of the two durable snapshots kept). `unsealedBytes` are the segments not sealed yet,
  /// the one being written among them: they count against `log_bytes` but are never removed.
  public static func plan(
    _ m: Manifest, coveredSeq: UInt64, unsealedBytes: Int, settings: RetentionSettings, nowMs: Int64
  ) -> Plan {
    var plan = Plan()
    var total = m.sealedBytes + unsealedBytes
    let ageCut = settings.logAgeMs.map { nowMs - $0 }
    for s in m.segments {
      let reason: String
      if let cut = ageCut, s.lastMs < cut {
        reason = "log_days"
      } else if settings.logBytes > 0, total > settings.logBytes {
        reason = "log_bytes"
      } else {
        break
      }
      guard s.lastSeq <= coveredSeq else {
        plan.needsSnapshot = true
        break
      }
      plan.remove.append(Removal(segment: s, reason: reason))
      total -= s.bytes
    }
    return plan
  }

  /// Which finished tasks' files `cortex clean` (or `retention.task_days`) removes.
  public struct CleanRule: Equatable, Sendable {
    /// Only tasks that ended at least this long ago (nil: any finished task).
    public var olderThanMs: Int64?
    /// Only tasks in this terminal state (nil: every terminal state).
    public var state: TaskState?

    public init(olderThanMs: Int64? = nil, state: TaskState? = nil) {
      self.olderThanMs = olderThanMs
      self.state = state
    }

    /// Whether a task in `state` that ended at `endedMs` (nil: unknown) qualifies at `nowMs`.
    /// A task that has not finished never does; one whose end time is unknown only when no
    /// age is asked for.
    public func matches(state s: TaskState?, endedMs: Int64?, nowMs: Int64) -> Bool {
      guard let s, s.isTerminal else { return false }
      if let state, state != s { return false }
      guard let olderThanMs else { return true }
      guard let endedMs else { return false }
      return endedMs <= nowMs - olderThanMs
    }
  }
}
