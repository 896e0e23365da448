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
  /// The newest snapshot (nil before the first read); asking keeps it fresh.
  public var view: @Sendable () -> JSON?
  /// Every node's web address as last read (asking keeps them fresh).
  public var peers: @Sendable () -> [Peer]
  /// Publishes this node's web address and read-only peer token in the database.
  public var publish: @Sendable (_ url: String, _ token: String) -> Void

  public init(
    node: String, host: String, view: @escaping @Sendable () -> JSON?, peers: @escaping @Sendable () -> [Peer],
    publish: @escaping @Sendable (String, String) -> Void
  ) {
    self.node = node
    self.host = host
    self.view = view
    self.peers = peers
    self.publish = publish
  }
}

extension WebServer {
  /// `cluster` in `/api/status` and the status stream: the snapshot (null before the first)
  /// with `workers`, every node's worker grid (this node's from its hot state, the others' as
  /// their web views last answered, or why they could not be read).
  func clusterStatusField(_ v: HotState.View, now t: Int64) -> [(String, JSON)] {
    guard let cluster else { return [] }
    guard var o = cluster.view()?.object else { return [("cluster", .null)] }
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

  /// `GET /api/tasks` in cluster mode: the newest tasks of every node, from the daemon's `list`
  /// (state and type filtered by the database, priority and text here; labels are not in the
  /// cluster's list, so a label filter lists this node's tasks). Tasks this node knows keep its
  /// detail (worker, times); every row names its node. `total` counts what was fetched, and
  /// `total_at_least` says there may be more.
  func clusterTasks(_ q: FleetModel.TaskQuery, on c: WebConnection, keepAlive: Bool, now t: Int64) {
    let local = q.priority != nil || q.text != nil
    let want = local ? 10_000 : min(10_000, q.offset + q.limit)
    var req: [(String, JSON)] = [("op", .string("list")), ("limit", .int(Int64(want)))]
    if let s = q.state { req.append(("state", .string(s))) }
    if let ty = q.type { req.append(("type", .string(ty))) }
    let node = cluster?.node ?? ""
    control(.object(req), for: c, keepAlive: keepAlive, now: t) { [self] answer in
      guard let answer, answer["ok"]?.bool == true, let rows = answer["tasks"]?.array else {
        return .error(503, answer?["error"]?.string ?? "the daemon did not list the cluster's tasks")
      }
      var out: [(id: Int, row: JSON)] = []
      for row in rows {
        guard let id = row["id"]?.string, let n = TaskID.parse(id) else { continue }
        var o: [(String, JSON)]
        if let mine = model.task(n), case .object(let s) = mine.summaryJSON() {
          o = s
        } else {
          o = [("id", .string(id))]
          for k in ["state", "priority", "type", "reason", "submitted_ms", "ended_ms", "attempt", "exit_code"] {
            if let v = row[k], !v.isNull { o.append((k, v)) }
          }
          o.append(("title", .string(String((row["description"]?.string ?? row["title"]?.string ?? "").prefix(200)))))
        }
        let ranOn = row["node"]?.string ?? (model.task(n) != nil ? node : nil)
        if let ranOn { o.append(("node", .string(ranOn))) }
        let j = JSON.object(o)
        if let p = q.priority, j["priority"]?.string != p { continue }
        if let text = q.text?.lowercased(), !id.contains(text), !(j["title"]?.string ?? "").lowercased().contains(text) { continue }
        out.append((n, j))
      }
      out.sort { $0.id > $1.id }
      let page = out.dropFirst(q.offset).prefix(q.limit).map(\.row)
      return .json(
        .object([
          ("ok", .bool(true)), ("total", .int(Int64(out.count))), ("total_at_least", .bool(rows.count >= want)),
          ("offset", .int(Int64(q.offset))), ("limit", .int(Int64(q.limit))), ("scope", .string("cluster")),
          ("known", .int(Int64(model.taskCount))), ("tasks", .array(Array(page))),
        ]))
    }
  }
}
