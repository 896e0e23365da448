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
    public init(
      id: Int, attempt: Int, epoch: Int64, state: TaskState, reason: String?, exitCode: Int32?, tokensUsed: Int
    ) {
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
        ("tokens_used", .int(Int64(tokensUsed))),
      ])
    }

    public init?(json v: JSON) {
      guard let id = v["id"]?.int, let attempt = v["attempt"]?.int, let epoch = v["epoch"]?.int,
        let state = v["state"]?.string.flatMap(TaskState.init(rawValue:)), state.isTerminal
      else { return nil }
      self.init(
        id: Int(id), attempt: Int(attempt), epoch: epoch, state: state, reason: v["reason"]?.string,
        exitCode: v["exit_code"]?.int.map { Int32(truncatingIfNeeded: $0) }, tokensUsed: Int(v["tokens_used"]?.int ?? 0))
    }
  }
}
