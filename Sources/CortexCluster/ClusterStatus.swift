public import CortexCore

/// The cluster at a glance — every node with its epoch, lease and load, the shared queue and the
/// token budget — read with the named statements (`ClusterSQL.nodeStatus`, `clusterLoad`,
/// `runningTasks`). `cortex cluster status` prints it; a node's link reads it about once a second
/// while the web view looks, so the dashboard of any node shows every node (SPEC §11, §12).
public struct ClusterStatus: Sendable {
  public struct Node: Sendable {
    public var name: String
    public var epoch: Int64?
    public var state: String
    public var host: String
    public var pid: Int64?
    public var workers: Int64?
    /// Tasks whose run has started on it (written as they start), and tasks it claimed that
    /// have not started (waiting for a worker, or for its retry of a failed run).
    public var running: Int64?
    public var claimed: Int64?
    /// Seconds left on the lease by the database's clock (negative once it lapsed).
    public var leaseLeftS: Double
    /// The tasks running on the node (only when read with `runningLimit`).
    public var tasks: [Int]?

    /// The LEASE column: the seconds left ("9.6s"), or how long ago it lapsed ("lapsed 12s ago")
    /// once it did: a stopped node's lease showed as a negative number that grew.
    public var leaseText: String {
      leaseLeftS >= 0 ? "\(leaseLeftS)s" : "lapsed \(Int((-leaseLeftS).rounded()))s ago"
    }
  }

  public var nodes: [Node]
  public var queued: Int64?
  public var running: Int64?
  public var done: Int64?
  public var budgetTotal: Int64?
  public var budgetReserved: Int64?
  public var budgetUsed: Int64?
  /// The cluster's queue is paused (`cortex pause`): no node claims.
  public var queuePaused = false
  /// Tasks by state cluster-wide (`queued`, `running`, and each terminal state), and queued
  /// tasks by priority name (only when read with `runningLimit`, for the web view).
  public var counts: [String: Int64]?
  public var queuedByPriority: [String: Int64]?

  /// Reads the nodes and the load; with `runningLimit`, also which tasks run where (at most that
  /// many, in node order).
  public static func read(_ db: PGConnection, runningLimit: Int? = nil) throws(ClusterError) -> ClusterStatus {
    let n = try db.execute(ClusterSQL.nodeStatus)
    let load = try db.execute(ClusterSQL.clusterLoad)
    var byNode: [String: [Int]]? = nil
    if let runningLimit {
      let r = try db.execute(ClusterSQL.runningTasks, [String(runningLimit)])
      var m: [String: [Int]] = [:]
      for i in 0..<r.count {
        if let node = r[i, "node"], let id = r[i, "id"].flatMap({ Int($0) }) { m[node, default: []].append(id) }
      }
      byNode = m
    }
    func int(_ s: String?) -> Int64? { s.flatMap { Int64($0) } }
    var counts: [String: Int64]? = nil
    var byPriority: [String: Int64]? = nil
    if runningLimit != nil {
      let c = try db.execute(ClusterSQL.clusterCounts)
      var all: [String: Int64] = [:]
      var queued: [String: Int64] = Dictionary(uniqueKeysWithValues: Priority.allCases.map { ($0.name, 0) })
      for i in 0..<c.count {
        guard let state = c[i, "state"], let n = int(c[i, "n"]) else { continue }
        all[state, default: 0] += n
        if state == "queued", let p = c[i, "priority"].flatMap({ Int($0) }).flatMap(Priority.init(rawValue:)) {
          queued[p.name, default: 0] += n
        }
      }
      counts = all
      byPriority = queued
    }
    let nodes = (0..<n.count).map { i in
      let name = n[i, "name"] ?? ""
      return Node(
        name: name, epoch: int(n[i, "epoch"]), state: n[i, "state"] ?? "", host: n[i, "host"] ?? "", pid: int(n[i, "pid"]),
        workers: int(n[i, "workers"]), running: int(n[i, "running"]), claimed: int(n[i, "claimed"]),
        leaseLeftS: Double(n[i, "lease_left_s"] ?? "") ?? 0,
        tasks: byNode.map { $0[name] ?? [] })
    }
    return ClusterStatus(
      nodes: nodes, queued: int(load[0, "queued"]), running: int(load[0, "running"]), done: int(load[0, "done"]),
      budgetTotal: int(load[0, "budget_total"]), budgetReserved: int(load[0, "budget_reserved"]),
      budgetUsed: int(load[0, "budget_used"]), queuePaused: load[0, "queue_paused"] == "t", counts: counts, queuedByPriority: byPriority)
  }

  /// `nodes` (each: name, epoch, state, host, pid, workers, running, lease_left_s, and `tasks`
  /// when read), `tasks` {queued, running, done}, `budget` {total, reserved, used}, and when
  /// read: `counts` (by state) and `queued_by_priority`.
  public func json() -> JSON {
    func num(_ v: Int64?) -> JSON { v.map { .int($0) } ?? .null }
    let list: [JSON] = nodes.map { n in
      var o: [(String, JSON)] = [
        ("name", .string(n.name)), ("epoch", num(n.epoch)), ("state", .string(n.state)), ("host", .string(n.host)),
        ("pid", num(n.pid)), ("workers", num(n.workers)), ("running", num(n.running)), ("claimed", num(n.claimed)),
        ("lease_left_s", .double(n.leaseLeftS)),
      ]
      if let t = n.tasks { o.append(("tasks", .array(t.map { .string(TaskID.format($0)) }))) }
      return .object(o)
    }
    var extra: [(String, JSON)] = []
    if let counts {
      let states = ["queued", "running"] + TaskState.allCases.filter(\.isTerminal).map(\.rawValue)
      extra.append(("counts", .object(states.map { ($0, .int(counts[$0] ?? 0)) })))
    }
    if let queuedByPriority {
      extra.append(("queued_by_priority", .object(Priority.allCases.reversed().map { ($0.name, .int(queuedByPriority[$0.name] ?? 0)) })))
    }
    return .object(
      [
        ("nodes", .array(list)),
        ("tasks", .object([("queued", num(queued)), ("running", num(running)), ("done", num(done))])),
        ("queue_paused", .bool(queuePaused)),
        ("budget", .object([("total", num(budgetTotal)), ("reserved", num(budgetReserved)), ("used", num(budgetUsed))])),
      ] + extra)
  }
}
