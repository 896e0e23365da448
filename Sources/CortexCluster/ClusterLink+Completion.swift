public import CortexCore

extension ClusterLink {
  /// A terminal state to deliver: conditional on the claim it ends.
  public struct Completion: Sendable {
    public var id: Int
    public var attempt: Int
    public var epoch: Int64
    public var state: TaskState
    public var reason: String?
    public var exitCode: Int32?
    public var tokensUsed: Int
    /// The attempt the node's last run of it was (past `attempt`, the claim's, after the node
    /// retried it); nil when not known (an outbox line written before it was kept).
    public var ran: Int?
    public init(
      id: Int, attempt: Int, epoch: Int64, state: TaskState, reason: String?, exitCode: Int32?, tokensUsed: Int, ran: Int? = nil
    ) {
      self.ran = ran
      self.id = id
      self.attempt = attempt
      self.epoch = epoch
      self.state = state
      self.reason = reason
      self.exitCode = exitCode
      self.tokensUsed = tokensUsed
    }

    /// One line of the node's outbox file (`cluster-outbox.jsonl`).
    public func json() -> JSON {
      .object([
        ("id", .int(Int64(id))), ("attempt", .int(Int64(attempt))), ("epoch", .int(epoch)), ("state", .string(state.rawValue)),
        ("reason", reason.map { .string($0) } ?? .null), ("exit_code", exitCode.map { .int(Int64($0)) } ?? .null),
        ("tokens_used", .int(Int64(tokensUsed))), ("ran", ran.map { .int(Int64($0)) } ?? .null),
      ])
    }

    public init?(json v: JSON) {
      guard let id = v["id"]?.int, let attempt = v["attempt"]?.int, let epoch = v["epoch"]?.int,
        let state = v["state"]?.string.flatMap(TaskState.init(rawValue:)), state.isTerminal
      else { return nil }
      self.init(
        id: Int(id), attempt: Int(attempt), epoch: epoch, state: state, reason: v["reason"]?.string,
        exitCode: v["exit_code"]?.int.map { Int32(truncatingIfNeeded: $0) }, tokensUsed: Int(v["tokens_used"]?.int ?? 0),
        ran: v["ran"]?.int.map { Int($0) })
    }
  }
}

extension ClusterLink {
  /// Delivers the terminal states not yet confirmed, 500 to a statement, each conditional on its
  /// claim; reports each as accepted or refused (fenced). What a failed statement did not take
  /// stays pending for the next round.
  func deliver(_ pending: inout [Completion], _ s: ClusterStore, into out: inout [Event]) throws(ClusterError) {
    while !pending.isEmpty {
      let chunk = Array(pending.prefix(500))
      let accepted = try s.complete(chunk.map { ($0.id, $0.attempt, $0.epoch, $0.state, $0.reason, $0.exitCode, $0.tokensUsed, $0.ran) })
      pending.removeFirst(chunk.count)
      for c in chunk { out.append(.completed(id: c.id, accepted: accepted.contains(c.id))) }
    }
  }
}

extension ClusterLink {
  /// A run of a task this node claimed that started (`running`) or ended and waits for the
  /// node's retry: written to the task's row (`ClusterSQL.markRuns`) so that every node sees
  /// what runs where, and which attempt it is, as it happens (docs/cluster.md, "Starts and
  /// local retries").
  public struct Run: Sendable {
    public var id: Int
    /// The claim's attempt and epoch: the write is conditional on them, as a terminal state is.
    public var attempt: Int
    public var epoch: Int64
    /// The attempt this run is (the node's count: past the claim's after a local retry).
    public var ran: Int
    public var running: Bool
    public init(id: Int, attempt: Int, epoch: Int64, ran: Int, running: Bool) {
      self.id = id
      self.attempt = attempt
      self.epoch = epoch
      self.ran = ran
      self.running = running
    }
  }

  /// Writes the runs noted since the last round, one statement for all of them; a task whose
  /// terminal state goes out in the same round is left out (its row moves to the history with
  /// its last run's attempt). Best effort: what a failed statement did not take is tried again
  /// next round, and the newest note of a task replaces an older one.
  func deliver(runs pending: inout [Int: Run], except ending: Set<Int>, _ s: ClusterStore) throws(ClusterError) {
    for id in ending { pending[id] = nil }
    guard !pending.isEmpty else { return }
    try s.markRuns(Array(pending.values))
    pending = [:]
  }
}
