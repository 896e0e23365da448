/// The link's connection: a new one after PostgreSQL came back (joining again under a new epoch
/// when this node was fenced meanwhile), and the store handed to the link's thread.
extension ClusterLink {
  /// A connection listening for the hints, or nil while PostgreSQL cannot be reached. It keeps
  /// this node's membership: a fenced node joins again in the link's round, after delivering
  /// the terminal states it kept (a join first fenced the claims they end).
  func reconnect() -> ClusterStore? {
    guard let db = try? connect() else { return nil }
    let s = ClusterStore(db, node: node)
    s.adopt(epoch: epochNow.load(ordering: .acquiring))
    guard (try? s.listen()) != nil else { return nil }
    return s
  }

  /// A connection for the link: its statements and transactions bounded by the lease
  /// (`PGConnection.init`'s `sessionTimeoutMs`).
  func connect() throws(ClusterError) -> PGConnection {
    try PGConnection(settings.postgres, sessionTimeoutMs: Int(max(1000, lease.leaseMs)))
  }
}

/// Hands the store (not Sendable) to the link's thread exactly once.
final class StoreBox: @unchecked Sendable {
  // @unchecked: written once before the thread starts, taken once by that thread.
  private var store: ClusterStore?
  init(_ s: ClusterStore) { store = s }
  func take() -> ClusterStore {
    let s = store!
    store = nil
    return s
  }
}
