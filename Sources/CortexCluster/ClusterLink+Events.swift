public import CortexCore

/// What the link reports to the loop (read with `events()` when `wakeFD` is readable).
extension ClusterLink {
  public enum Event: Sendable {
    /// A submit's answer: the ids, or why it was refused.
    case submitted(ticket: UInt64, Result<[Int], ClusterError>)
    case claimed([ClusterStore.Claimed])
    /// A terminal state reached the database (accepted) or was refused by the fence.
    case completed(id: Int, accepted: Bool)
    /// Another node asked to cancel these tasks, which run here.
    case cancelRequested([Int])
    /// Joined (or re-joined after a fence) with this epoch.
    case joined(epoch: Int64)
    /// Terminal states kept from before this start (the database was down), delivered before
    /// joining: how many the fence accepted and how many it refused (already delivered, or the
    /// task was given to another node meanwhile).
    case replayed(accepted: Int, refused: Int)
    /// The lease could not be renewed in time: stop every running task and claim nothing.
    case fenced(String)
    case unavailable(String)
    case available
    case rescued(fenced: [String], requeued: Int, cancelled: Int)
    /// The leader's housekeeping: queued tasks the budget can never cover failed, dependents of
    /// failed tasks cancelled, waiting tasks made ready
    /// by a recount, finished records removed by retention.
    case settled(failed: Int, cancelled: Int, readied: Int, trimmed: Int)
    /// The answer to `describe`: the task as the cluster knows it, nil when it does not know it,
    /// or why it could not be read (the database unreachable).
    case described(ticket: UInt64, Result<JSON?, ClusterError>)
    /// The answer to `list`: rows from the cluster's tables, oldest first.
    case listed(ticket: UInt64, Result<[JSON], ClusterError>)
    /// Every task a watch named has a terminal state (or does not exist).
    case finished(ticket: UInt64, [ClusterStore.Outcome])
    /// The answer to `retrySources`.
    case retrySources(ticket: UInt64, Result<[ClusterStore.RetrySource], ClusterError>)
    /// The cluster's queue is paused (true) or not, as last read: at join and whenever it changes.
    /// `by`: the node that last paused or resumed it (empty: not known).
    case queuePaused(Bool, by: String)
    /// The answer to `setQueuePaused`: whether the queue was paused before, and (a resume) the
    /// groups paused in the cluster that it resumed.
    case queuePauseSet(ticket: UInt64, paused: Bool, Result<(was: Bool, resumedGroups: [String]), ClusterError>)
    /// The groups the cluster lists (`ClusterGroup.holds` says which hold claims back), as last
    /// read: at join and whenever they change.
    case groups([ClusterGroup])
    /// What the groups that the cluster holds back have running and queued in the whole cluster,
    /// as last read: while any group is held, every `GroupWatch.loadIntervalMs`, when it changed.
    case groupLoad([ClusterStatus.GroupLoad])
    /// The answer to `setGroup`: whether the group was paused before.
    case groupSet(ticket: UInt64, group: String, GroupChange, Result<Bool, ClusterError>)
    /// The answer to `edit`.
    case edited(ticket: UInt64, id: Int, Result<ClusterStore.EditResult, ClusterError>)
  }
}
