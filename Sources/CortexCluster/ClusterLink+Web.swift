public import CortexCore
import Posix
import Synchronization

/// What the link reads and writes for the web view (docs/web.md, "Cluster mode"): the cluster
/// snapshot the pages of any node show, this node's web address (published in `cortex_node` so
/// the other nodes' web views can read its workers, events and task output), and the other
/// nodes' addresses. All of it is read about once a second, and only while a page asks.
extension ClusterLink {
  public typealias Peer = ClusterPeer

  struct WebShare: Sendable {
    /// This node's address and read-only token, once its web view listens.
    var address: (url: String, token: String)?
    /// The epoch under which `address` was last published (a new epoch publishes it again).
    var publishedEpoch: Int64 = 0
    var peers: [Peer] = []
  }

  /// The cluster's nodes, load and running tasks as of at most about a second ago, for the web
  /// view (any thread). Asking keeps the link reading them for the next 10 s. The first ask,
  /// and the first after 10 s nobody asked, waits for the link's next read, at most
  /// `firstReadWaitMs`: the first `/api/status` of a node answered `"cluster": null` (nothing read
  /// yet), and the first after a quiet spell a snapshot as old as the spell. Nil when nothing
  /// could be read within the wait (the database unreachable since the start).
  public func clusterView() -> JSON? {
    let now = Clock.monotonicMs()
    let (view, following) = snapshot.withLock { s -> (JSON?, Bool) in
      let following = now - s.askedMs <= Self.snapshotFollowMs
      s.askedMs = now
      return (s.view, following)
    }
    if following && view != nil { return view }
    _ = try? kickWrite.writeSome([1])
    guard !following else { return view }
    while Clock.monotonicMs() - now < Self.firstReadWaitMs {
      sleepMs(5)
      let (read, fresh) = snapshot.withLock { ($0.view, $0.readMs >= now) }
      if fresh, let read { return read }
    }
    return snapshot.withLock { $0.view }
  }

  /// How long the first ask (or the first after a quiet spell) waits for a read: a read takes
  /// milliseconds, but the link reads at most once a second and may be inside a claim.
  static let firstReadWaitMs: Int64 = 2_000

  /// Every node's web address and read-only token as last read with the snapshot (this node's
  /// too); asking keeps them fresh, like `clusterView()`.
  public func webPeers() -> [Peer] {
    _ = clusterView()
    return web.withLock { $0.peers }
  }

  /// Publishes this node's web address (any thread): the link writes it now and again under
  /// each new epoch.
  public func publishWeb(url: String, token: String) {
    web.withLock { $0.address = (url, token) }
    _ = try? kickWrite.writeSome([1])
  }

  /// How long after the last `clusterView()` the link keeps the snapshot fresh.
  static let snapshotFollowMs: Int64 = 10_000

  /// Reads the snapshot when the web view asked within `snapshotFollowMs` and the last read is
  /// a second old (the link's thread; one round trip per statement, five statements). `loads`:
  /// what the groups the cluster pauses or limits have running and queued, as the link last read
  /// them for `cortex status` (`GroupWatch`, every 2 s while a group is held; nothing otherwise).
  func refreshSnapshot(_ s: ClusterStore, now: Int64, last: inout Int64, loads: [ClusterStatus.GroupLoad]) throws(ClusterError) {
    let asked = snapshot.withLock { $0.askedMs }
    guard now - asked <= Self.snapshotFollowMs, now - last >= 1000 else { return }
    last = now
    let st = try ClusterStatus.read(s.db, runningLimit: Self.snapshotRunningLimit)
    var o: [(String, JSON)] = [("node", .string(node)), ("read_ms", .int(Clock.wallMs()))]
    o += st.json().object ?? []
    // The groups the cluster holds back, with what runs and waits in the whole cluster (as
    // `cortex group` adds them): the web view's `/api/groups` and the overview's Groups card.
    o.append(("groups", .array(loads.map { $0.json() })))
    let view = JSON.object(o)
    let read = Clock.monotonicMs()
    snapshot.withLock {
      $0.view = view
      $0.readMs = read
    }
    let peers = try s.peers()
    web.withLock { $0.peers = peers }
  }

  /// Writes this node's web address when it has one the current membership has not published
  /// (the link's thread).
  func publishWeb(_ s: ClusterStore, epoch: Int64) throws(ClusterError) {
    guard epoch > 0, let (url, token) = web.withLock({ w in w.publishedEpoch == epoch ? nil : w.address }) else { return }
    try s.publishWeb(url: url, token: token)
    web.withLock { $0.publishedEpoch = epoch }
  }
}
