import CortexCore
import Posix
import Synchronization

/// Self-fencing on this node's own clock, whatever the link's thread is doing.
///
/// The link's thread renews the lease between statements, and libpq's statements block. Cut off
/// from PostgreSQL by a network that drops packets (no reset: a partition, a dead switch), a
/// statement waits as long as TCP retransmits — minutes — and a check made only between
/// statements never ran: the node kept running its tasks while the other nodes, seeing its lease
/// lapse, ran them again (found by `ClusterPartitionTests`). A statement waiting for a lock held by
/// a dead session waits the same way. So a second thread, which never touches the connection,
/// fences the node when the last successful renewal is older than 3/4 of the lease, and the link's
/// thread follows it: no more renewals under that membership (its lease must lapse, so that its
/// claims are rescued), and a new join under a new epoch once it has.
final class LeaseWatch: Sendable {
  let leaseMs: Int64
  /// Monotonic ms of the last renewal (or join) the database confirmed.
  private let renewedMs: Atomic<Int64>
  private let fencedFlag = Atomic<Bool>(false)
  private let stopped = Atomic<Bool>(false)

  init(leaseMs: Int64, renewedMs now: Int64) {
    self.leaseMs = leaseMs
    renewedMs = Atomic(now)
  }

  var isFenced: Bool { fencedFlag.load(ordering: .acquiring) }
  var lastRenewedMs: Int64 { renewedMs.load(ordering: .acquiring) }

  /// A renewal the database confirmed, sent at `t`.
  func renewed(at t: Int64) { renewedMs.store(t, ordering: .releasing) }

  /// A new membership (a join): renewed now, not fenced.
  func joined(at t: Int64) {
    renewedMs.store(t, ordering: .releasing)
    fencedFlag.store(false, ordering: .releasing)
  }

  /// How long the lease has gone without a renewal, when that is more than 3/4 of it.
  func overdue(now: Int64) -> Int64? {
    let late = now - lastRenewedMs
    return late > leaseMs * 3 / 4 ? late : nil
  }

  /// Fences this membership; true for the one caller that did (the event is said once).
  func fence() -> Bool {
    fencedFlag.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
  }

  func stop() { stopped.store(true, ordering: .releasing) }
  var isStopped: Bool { stopped.load(ordering: .acquiring) }

  static func overdueReason(_ late: Int64, of leaseMs: Int64) -> String {
    "the lease could not be renewed for \(late) ms of \(leaseMs)"
  }
}

extension ClusterLink {
  /// The watch's thread: checks about eight times per lease (at most every 100 ms) and posts
  /// `fenced` itself when the link's thread has not renewed in time. Ends with the link.
  func startLeaseWatch() throws(PosixError) {
    let watch = lease
    try startThread { [self] in
      let step = Int(max(10, min(100, watch.leaseMs / 8)))
      while !watch.isStopped {
        sleepMs(step)
        if watch.isFenced { continue }
        if let late = watch.overdue(now: Clock.monotonicMs()), watch.fence() {
          post([.fenced(LeaseWatch.overdueReason(late, of: watch.leaseMs) + " (no answer from PostgreSQL)")])
        }
      }
    }
  }
}
