public import CortexCore

/// Cluster mode (SPEC §11): what the daemon hands the web view so that the pages of any node
/// show every node. The web view never talks to PostgreSQL: `view` returns the snapshot the
/// daemon's cluster link reads about once a second while someone looks (nodes with epoch, lease
/// and load, the tasks running on each, the shared queue and budget), and lists of tasks across
/// the cluster come from the daemon's `list`, like `cortex list` on any node.
public struct ClusterFeed: Sendable {
  public typealias Peer = ClusterPeer

  /// This node's name, and the host it runs on.
  public var node: String
  public var host: String
  /// Which loopback this node is on (`Host.network`: boot id and network namespace; "" when
  /// not known). Published with a loopback address, so that a node on another host, or in
  /// another network namespace, knows it cannot read it even when the host names agree.
  public var network: String
  /// The newest snapshot (nil before the first read); asking keeps it fresh.
  public var view: @Sendable () -> JSON?
  /// Every node's web address as last read (asking keeps them fresh).
  public var peers: @Sendable () -> [Peer]
  /// Publishes this node's web address and read-only peer token in the database.
  public var publish: @Sendable (_ url: String, _ token: String) -> Void

  public init(
    node: String, host: String, network: String = "", view: @escaping @Sendable () -> JSON?, peers: @escaping @Sendable () -> [Peer],
    publish: @escaping @Sendable (String, String) -> Void
  ) {
    self.node = node
    self.host = host
    self.network = network
    self.view = view
    self.peers = peers
    self.publish = publish
  }
}

extension WebServer {
  /// `cluster` in `/api/status` and the status stream: the snapshot with `workers`, every
  /// node's worker grid (this node's from its hot state, the others' as their web views last
  /// answered, or why they could not be read). The first ask waits briefly for the link's first
  /// read (`ClusterLink.clusterView`); when there is still none (the database unreachable since
  /// the start), what is known, marked `"pending": true` with a `note`, and no nodes: it was
  /// `"cluster": null`, which the overview drew as a single host's.
  func clusterStatusField(_ v: HotState.View, now t: Int64) -> [(String, JSON)] {
    guard let cluster else { return [] }
    guard var o = cluster.view()?.object else {
      var pending: [(String, JSON)] = [
        ("node", .string(cluster.node)), ("pending", .bool(true)),
        ("note", .string("the cluster's state has not been read from PostgreSQL yet")), ("read_ms", .null), ("nodes", .array([])),
        ("workers", .array(clusterWorkers(v, now: t))),
        ("database", .string(v.clusterUnreachableSinceMs == nil ? "reachable" : "unreachable")),
      ]
      if let since = v.clusterUnreachableSinceMs { pending.append(("unreachable_since_ms", .int(since))) }
      return [("cluster", .object(pending))]
    }
    o.append(("workers", .array(clusterWorkers(v, now: t))))
    // Whether this node reaches PostgreSQL now (the snapshot above is the last one it read).
    o.append(("database", .string(v.clusterUnreachableSinceMs == nil ? "reachable" : "unreachable")))
    if let since = v.clusterUnreachableSinceMs { o.append(("unreachable_since_ms", .int(since))) }
    return [("cluster", .object(o))]
  }

  /// `GET /api/cluster`: the snapshot; 404 on a single host, 503 until the first read.
  func clusterAnswer() -> HTTPResponse {
    guard let cluster else { return .error(404, "this daemon does not run in cluster mode") }
    guard let v = cluster.view() else { return .error(503, "the cluster's state has not been read yet; ask again in a second") }
    return .json(.object([("ok", .bool(true)), ("cluster", v)]))
  }
}
