public import CortexCore

/// Typed calls over `ClusterSQL`: what a node does to the shared database. One connection, one
/// owner; every call is one transaction.
public final class ClusterStore {
  public let db: PGConnection
  public let node: String

  /// This node's epoch since it joined; every claim and terminal state carries it.
  public private(set) var epoch: Int64 = 0

  public init(_ db: PGConnection, node: String) {
    self.db = db
    self.node = node
  }

  /// A task as a node claims it.
  public struct Claimed: Equatable, Sendable {
    public var id: Int
    public var priority: Int
    public var spec: String
    public var tokenBudget: Int
    public var timeoutMs: Int64?
    public var maxAttempts: Int
    public var attempt: Int
    /// Another node asked to cancel it before it was claimed.
    public var cancelRequested: Bool
    /// The secret values (`SpecSecrets` JSON), when it has any.
    public var secrets: String?
    /// Its group, as the node that took the submit resolved it (the one the cluster counts).
    public var group: String?
  }

  /// Takes the node name (refused while another live node holds it) and creates the cluster
  /// budget if this is the first node.
  public func join(
    leaseS: Double, host: String, pid: Int32, workers: Int, budgetTotal: Int, migrate: String = "cortex cluster migrate",
    holderGone: (Int32) -> Bool = { _ in false }
  ) throws(ClusterError) {
    try Migrations.check(db, migrate: migrate)
    try db.execute(ClusterSQL.initBudget, [String(budgetTotal)])
    let args = [node, String(leaseS), host, String(pid), String(workers)]
    var r = try db.execute(ClusterSQL.joinNode, args + ["false"])
    if r.values.isEmpty {
      let who = try db.execute(ClusterSQL.describeNode, [node])
      let holderHost = who[0, "host"] ?? "?"
      let holderPid = Int32(who[0, "pid"] ?? "") ?? 0
      // The same host's daemon that died (kill -9, crash) within its lease: take the name back;
      // the new epoch fences what it had claimed.
      if holderHost == host && holderPid != pid && holderGone(holderPid) {
        r = try db.execute(ClusterSQL.joinNode, args + ["true"])
      }
      guard !r.values.isEmpty else {
        throw ClusterError(
          .conflict,
          "node name \(quoted(node)) is already alive (host \(holderHost), pid \(holderPid), lease \(who[0, "lease_left_s"] ?? "?") s left); give this node another name (cluster.node in config.json) or stop that one"
        )
      }
    }
    guard let e = r[0, "epoch"].flatMap({ Int64($0) }) else { throw ClusterError(.statement, "join returned no epoch") }
    epoch = e
  }

  /// Continues a membership on a new connection (after a reconnect).
  public func adopt(epoch e: Int64) { epoch = e }

  /// Marks tasks to be cancelled by whichever node runs them; queued ones end at once.
  public func requestCancel(_ ids: [Int]) throws(ClusterError) {
    let list = "{" + ids.map(String.init).joined(separator: ",") + "}"
    try db.execute(ClusterSQL.requestCancel, [list])
    try db.execute(ClusterSQL.wakeCancel)
  }

  /// Subscribes this connection to the wake-up hints (`cortex_work`, `cortex_cancel`,
  /// `cortex_groups`), and turns JIT off for it (`ClusterSQL.noJIT`).
  public func listen() throws(ClusterError) {
    _ = try? db.execute(ClusterSQL.noJIT)
    for sql in ClusterSQL.listen { try db.execute(sql) }
  }

  /// The leader's housekeeping besides rescue: settles dependencies (dependents of failed tasks
  /// are cancelled, level by level; unmet counts are repaired) and trims the history table.
  /// Returns how many tasks each step touched; nil when another node leads this round.
  public func settle(historyS: Double) throws(ClusterError) -> (failed: Int, cancelled: Int, readied: Int, trimmed: Int)? {
    try db.transaction { () throws(ClusterError) -> (failed: Int, cancelled: Int, readied: Int, trimmed: Int)? in
      guard try db.execute(ClusterSQL.tryLeaderLock)[0, "leader"] == "t" else { return nil }
      // First the tasks the budget can never cover (their dependents are cancelled below).
      let failed = Int(try db.execute(ClusterSQL.failUnaffordable)[0, "n"] ?? "0") ?? 0
      var cancelled = 0
      for _ in 0..<32 {
        let n = Int(try db.execute(ClusterSQL.cancelDoomed)[0, "n"] ?? "0") ?? 0
        cancelled += n
        if n == 0 { break }
      }
      let readied = try db.execute(ClusterSQL.recountUnmet).count
      if readied > 0 { try db.execute(ClusterSQL.wakeNodes) }
      let trimmed = Int(try db.execute(ClusterSQL.trimHistory, [String(historyS)])[0, "n"] ?? "0") ?? 0
      return (failed, cancelled, readied, trimmed)
    }
  }

  /// One task's standing cluster-wide.
  public struct Outcome: Sendable {
    public var id: Int
    /// The terminal state, when it has one.
    public var state: TaskState?
    public var exitCode: Int32?
    public var reason: String?
    public var node: String?
    /// Neither live nor finished: no such task.
    public var unknown: Bool
  }

  public func outcomes(_ ids: [Int]) throws(ClusterError) -> [Outcome] {
    let list = "{" + ids.map(String.init).joined(separator: ",") + "}"
    let r = try db.execute(ClusterSQL.taskOutcomes, [list])
    return (0..<r.count).map { i in
      Outcome(
        id: Int(r[i, "id"] ?? "") ?? 0, state: r[i, "done_state"].flatMap(TaskState.init(rawValue:)),
        exitCode: r[i, "exit_code"].flatMap { Int32($0) }, reason: r[i, "reason"], node: r[i, "done_node"],
        unknown: r[i, "done_state"] == nil && r[i, "live_state"] == nil)
    }
  }

  /// A task as the cluster knows it (`show` on any node), as a JSON object; nil when unknown.
  public func describe(_ id: Int) throws(ClusterError) -> JSON? {
    let r = try db.execute(ClusterSQL.describeTask, [String(id)])
    guard r.count > 0 else { return nil }
    var o: [(String, JSON)] = [("id", .string(TaskID.format(id)))]
    func int(_ c: String) -> JSON? { r[0, c].flatMap { Int64($0) }.map { .int($0) } }
    if let st = r[0, "state"] { o.append(("state", .string(st))) }
    if let n = r[0, "node"] { o.append(("node", .string(n))) }
    // The group the cluster counts (or counted) the task in.
    if let g = r[0, "grp"] { o.append(("group", .string(g))) }
    for (c, k) in [
      ("attempt", "attempt"), ("max_attempts", "max_attempts"), ("token_budget", "token_budget"), ("exit_code", "exit_code"),
      ("tokens_used", "tokens_used"), ("submitted_ms", "submitted_ms"), ("started_ms", "started_ms"), ("ended_ms", "ended_ms"),
    ] {
      if let v = int(c) { o.append((k, v)) }
    }
    if let why = r[0, "reason"] { o.append(("reason", .string(why))) }
    if r[0, "state"] == TaskState.queued.rawValue { o += try waitingDetails(id, attempt: r[0, "attempt"]) }
    if let text = r[0, "spec"], let spec = try? JSON.parse(Array(text.utf8)) {
      // Named as a task this node holds is (and as `list` names it): `show` printed no type,
      // priority or description for another node's task or one still queued in the cluster.
      o.append(("type", .string(spec["type"]?.string ?? (spec["synthetic"] != nil ? "synthetic" : "exec"))))
      if let p = spec["priority"]?.string { o.append(("priority", .string(p))) }
      if let d = spec["description"]?.string { o.append(("description", .string(d))) }
      o.append(("spec", spec))
    }
    return .object(o)
  }

  /// For a queued task, what `show` adds (as for a task a node holds, `Scheduler.showDetails`):
  /// `"not_started": true` while no node has claimed it, and the dependencies that hold it
  /// (`"waiting_on"`), else `"waiting": "unclaimed"` for one no node has claimed yet.
  func waitingDetails(_ id: Int, attempt: String?) throws(ClusterError) -> [(String, JSON)] {
    var o: [(String, JSON)] = []
    let unclaimed = (attempt.flatMap { Int($0) } ?? 0) == 0
    if unclaimed { o.append(("not_started", .bool(true))) }
    let r = try db.execute(ClusterSQL.describeWaitingOn, [String(id)])
    if r.count > 0 {
      o.append(("waiting", .string("dependencies")))
      let held = (0..<r.count).map { i -> JSON in
        .object([
          ("id", .string(TaskID.format(Int(r[i, "id"] ?? "") ?? 0))), ("state", .string(r[i, "state"] ?? "unknown")),
        ])
      }
      o.append(("waiting_on", .array(held)))
    } else if unclaimed {
      o.append(("waiting", .string("unclaimed")))
    }
    return o
  }

  /// The newest `limit` tasks cluster-wide matching the filters, oldest first, as `list` rows
  /// (with the node that holds or ran each).
  public func list(state: String?, type: String?, limit: Int) throws(ClusterError) -> [JSON] {
    let r = try db.execute(ClusterSQL.listTasks, [state, type, String(limit)])
    return (0..<r.count).reversed().map { i in
      var o: [(String, JSON)] = [("id", .string(TaskID.format(Int(r[i, "id"] ?? "") ?? 0)))]
      for (c, k) in [
        ("state", "state"), ("type", "type"), ("node", "node"), ("reason", "reason"), ("description", "description"), ("grp", "group"),
      ] {
        if let v = r[i, c] { o.append((k, .string(v))) }
      }
      if let p = r[i, "priority"].flatMap({ Int($0) }).flatMap(Priority.init(rawValue:)) {
        o.append(("priority", .string(p.name)))
      } else if let name = r[i, "priority_name"] {
        o.append(("priority", .string(name)))
      }
      for c in ["attempt", "exit_code", "submitted_ms", "started_ms", "ended_ms"] {
        if let v = r[i, c].flatMap({ Int64($0) }) { o.append((c, .int(v))) }
      }
      return .object(o)
    }
  }

  /// Which of `ids` (running here) another node asked to cancel.
  public func cancelRequested(among ids: [Int]) throws(ClusterError) -> [Int] {
    let list = "{" + ids.map(String.init).joined(separator: ",") + "}"
    return try db.execute(ClusterSQL.cancelRequested, [list]).values.compactMap { $0[0].flatMap { Int($0) } }
  }

  /// Renews the lease; false when this node has been fenced (or its lease lapsed): it must stop
  /// its tasks and join again.
  public func renew(leaseS: Double, running: Int) throws(ClusterError) -> Bool {
    try renewLease(leaseS: leaseS, running: running) != nil
  }

  /// Renews the lease; nil when it could not be (fenced), else whether the cluster's queue is
  /// paused and the groups that hold claims back (every node learns them with its renewal).
  public func renewLease(leaseS: Double, running: Int) throws(ClusterError) -> Renewal? {
    let r = try db.execute(ClusterSQL.renewLease, [node, String(epoch), String(leaseS), String(running)])
    guard r.count > 0 else { return nil }
    return Renewal(
      queuePaused: r[0, "queue_paused"] == "t", queueChangedBy: r[0, "queue_changed_by"] ?? "", groups: ClusterGroup.decode(r[0, "groups"]))
  }

  /// Whether the cluster's queue is paused, and the node that paused or resumed it last (nil:
  /// the row is missing).
  public func queuePause() throws(ClusterError) -> (paused: Bool, by: String)? {
    let r = try db.execute(ClusterSQL.queuePaused)
    return r[0, "paused"].map { ($0 == "t", r[0, "changed_by"] ?? "") }
  }

  /// Pauses or resumes the cluster's queue; returns whether it was paused before. A resume wakes
  /// the nodes to claim; a pause tells them at once (the groups hint), so that what they claimed
  /// before it waits from now on, not from their next lease renewal.
  public func setQueuePaused(_ paused: Bool) throws(ClusterError) -> Bool {
    try db.transaction { () throws(ClusterError) -> Bool in
      let was = try db.execute(ClusterSQL.setQueuePaused, [paused ? "true" : "false", node])[0, "was"] == "t"
      if !was && paused { try db.execute(ClusterSQL.wakeGroups) }
      if was && !paused { try db.execute(ClusterSQL.wakeNodes) }
      return was
    }
  }

  /// Publishes where this node's web view can be read by the other nodes' web views.
  public func publishWeb(url: String, token: String) throws(ClusterError) {
    try db.execute(ClusterSQL.publishWeb, [node, String(epoch), url, token])
  }

  /// Every node's web address and read-only token (the pages of any node read the others').
  public func peers() throws(ClusterError) -> [ClusterLink.Peer] {
    let r = try db.execute(ClusterSQL.peerAddresses)
    return (0..<r.count).map { i in
      ClusterLink.Peer(
        name: r[i, "name"] ?? "", state: r[i, "state"] ?? "", host: r[i, "host"] ?? "", url: r[i, "web_url"] ?? "",
        token: r[i, "web_peer_token"] ?? "")
    }
  }

  public func leave() throws(ClusterError) { try db.execute(ClusterSQL.leaveNode, [node, String(epoch)]) }

  /// One transaction for the whole batch; returns the ids in order.
  public struct NewTask: Sendable {
    public var priority: Int
    public var spec: JSON
    public var tokenBudget: Int
    public var timeoutMs: Int64?
    public var maxAttempts: Int
    public var idempotencyKey: String?
    /// `SpecSecrets` JSON, stored apart from the spec.
    public var secrets: JSON?
    /// Tasks (cluster ids) this one waits for, and earlier tasks of the same batch (from 1).
    public var dependsOn: [Int]
    public var dependsOnBatch: [Int]
    /// The earlier task (a cluster id) this one submits again; it must exist in the cluster.
    public var retryOf: Int?
    /// The task's group as the submitting node resolves it (its own, its worker type's, `default`).
    public var group: String
    public init(
      priority: Int, spec: JSON, tokenBudget: Int, timeoutMs: Int64?, maxAttempts: Int, idempotencyKey: String?, secrets: JSON? = nil,
      dependsOn: [Int] = [], dependsOnBatch: [Int] = [], retryOf: Int? = nil, group: String = "default"
    ) {
      self.group = group
      self.retryOf = retryOf
      self.secrets = secrets
      self.dependsOn = dependsOn
      self.dependsOnBatch = dependsOnBatch
      self.priority = priority
      self.spec = spec
      self.tokenBudget = tokenBudget
      self.timeoutMs = timeoutMs
      self.maxAttempts = maxAttempts
      self.idempotencyKey = idempotencyKey
    }
  }

  /// `maxQueue`: refuse (`queue_full`) when the cluster's queue would grow past it. A task whose
  /// idempotency key is already used (in the cluster, or earlier in the batch) is not added: its
  /// place in the answer holds the id of the task that has the key, as on a single host.
  /// `inbox`: the inbox file the batch comes from, recorded in the same transaction; one this
  /// node submitted and has not moved yet is answered with the ids it became, adding nothing.
  public func submit(_ tasks: [NewTask], maxQueue: Int = Int.max, inbox: InboxFile? = nil) throws(ClusterError) -> [Int] {
    try db.transaction { () throws(ClusterError) -> [Int] in
      if let inbox, let ids = try submittedInbox(inbox) { return ids }
      var known: [String: Int] = [:]
      let keys = tasks.compactMap(\.idempotencyKey)
      if !keys.isEmpty {
        let r = try db.execute(ClusterSQL.existingKeys, [JSON.array(keys.map { .string($0) }).encoded()])
        for i in 0..<r.count { if let k = r[i, "key"], let id = r[i, "id"].flatMap({ Int($0) }) { known[k] = id } }
      }
      // Which members are new, and the id each member's place in the answer gets.
      var fresh: [Int] = []
      var repeats: [Int: String] = [:]
      var batchKeys = Set<String>()
      for (i, t) in tasks.enumerated() {
        if let k = t.idempotencyKey, known[k] != nil || batchKeys.contains(k) {
          repeats[i] = k
        } else {
          fresh.append(i)
          if let k = t.idempotencyKey { batchKeys.insert(k) }
        }
      }
      if maxQueue < Int.max && !fresh.isEmpty {
        let queued = Int(try db.execute(ClusterSQL.queuedCount)[0, "n"] ?? "0") ?? 0
        if queued + fresh.count > maxQueue {
          throw ClusterError(
            .refused(reason: "queue_full"),
            "\(queued) task\(queued == 1 ? " is" : "s are") queued in the cluster and the limit is \(maxQueue) (max_queue); \(fresh.count) more \(fresh.count == 1 ? "does" : "do") not fit now; try again as the queue drains"
          )
        }
      }
      let newIDs =
        fresh.isEmpty
        ? [] : try db.execute(ClusterSQL.allocateIDs, [String(fresh.count)]).values.compactMap { $0[0].flatMap { Int($0) } }
      var ids = [Int](repeating: 0, count: tasks.count)
      for (j, i) in fresh.enumerated() {
        ids[i] = newIDs[j]
        if let k = tasks[i].idempotencyKey { known[k] = newIDs[j] }
      }
      for (i, k) in repeats { ids[i] = known[k]! }
      if let inbox { try recordInbox(inbox, ids: ids) }
      guard !fresh.isEmpty else { return ids }
      let succeeded = try checkDependencies(fresh.map { tasks[$0] })
      try checkRetries(fresh.map { tasks[$0] })
      try checkBudget(fresh.map { tasks[$0] })
      var rows: [JSON] = []
      var edges: [JSON] = []
      for i in fresh {
        let t = tasks[i]
        let deps = t.dependsOn + t.dependsOnBatch.map { ids[$0 - 1] }
        for d in deps { edges.append(.object([("task", .int(Int64(ids[i]))), ("depends_on", .int(Int64(d)))])) }
        var spec = t.spec
        if !deps.isEmpty, case .object(let fields) = spec {
          // Stored with the cluster's ids, as `show` should print them.
          spec = .object(fields.filter { $0.0 != "depends_on" } + [("depends_on", .array(deps.map { .string(TaskID.format($0)) }))])
        }
        rows.append(
          .object([
            ("id", .int(Int64(ids[i]))), ("priority", .int(Int64(t.priority))), ("spec", spec),
            ("token_budget", .int(Int64(t.tokenBudget))), ("timeout_ms", t.timeoutMs.map { .int($0) } ?? .null),
            ("max_attempts", .int(Int64(t.maxAttempts))), ("idempotency_key", t.idempotencyKey.map { .string($0) } ?? .null),
            ("unmet", .int(Int64(deps.filter { !succeeded.contains($0) }.count))), ("grp", .string(t.group)),
          ]))
      }
      try db.execute(ClusterSQL.insertTasks, [JSON.array(rows).encoded()])
      if !edges.isEmpty { try db.execute(ClusterSQL.insertDeps, [JSON.array(edges).encoded()]) }
      let secrets: [JSON] = fresh.compactMap { i in
        tasks[i].secrets.map { .object([("id", .int(Int64(ids[i]))), ("secrets", $0)]) }
      }
      if !secrets.isEmpty { try db.execute(ClusterSQL.insertSecrets, [JSON.array(secrets).encoded()]) }
      try db.execute(ClusterSQL.wakeNodes)
      return ids
    }
  }

  /// The batch's dependencies on earlier tasks must exist and be able to succeed (as on a single
  /// host: an unknown id, or one that already failed, refuses the batch). Returns those that
  /// already succeeded.
  func checkDependencies(_ tasks: [NewTask]) throws(ClusterError) -> Set<Int> {
    var external: [Int] = []
    var seen = Set<Int>()
    for t in tasks { for d in t.dependsOn where seen.insert(d).inserted { external.append(d) } }
    guard !external.isEmpty else { return [] }
    var succeeded = Set<Int>()
    for o in try outcomes(external) {
      let index = tasks.firstIndex { $0.dependsOn.contains(o.id) }
      if o.unknown {
        throw ClusterError(.invalid(field: "depends_on", index: index), "unknown task \(TaskID.format(o.id)) in the cluster")
      }
      if let st = o.state {
        guard st == .succeeded else {
          throw ClusterError(
            .invalid(field: "depends_on", index: index), "\(TaskID.format(o.id)) already ended \(st.rawValue); it can never succeed")
        }
        succeeded.insert(o.id)
      }
    }
    return succeeded
  }

  /// A `retry_of` must name a task the cluster knows (as on a single host: `show` would point at
  /// nothing), wherever it ran.
  func checkRetries(_ tasks: [NewTask]) throws(ClusterError) {
    let named = Array(Set(tasks.compactMap(\.retryOf))).sorted()
    guard !named.isEmpty else { return }
    for o in try outcomes(named) where o.unknown {
      throw ClusterError(
        .invalid(field: "retry_of", index: tasks.firstIndex { $0.retryOf == o.id }),
        "unknown task \(TaskID.format(o.id)) in the cluster (retry_of names an earlier task that this one submits again)")
    }
  }

  /// Claims up to `limit` ready tasks (none when the lease has lapsed or the budget is spent).
  /// `held`: the groups the cluster lists, as last read; with any that holds claims back, the
  /// claim is the grouped one, and with a `parallel` limit among them it takes
  /// `ClusterSQL.claimLock` first.
  public func claim(limit: Int, held listed: [ClusterGroup] = [], startable: Int? = nil) throws(ClusterError) -> [Claimed] {
    let held = listed.filter(\.holds)
    let params = [node, String(epoch), String(limit)]
    let serialized = held.contains { $0.parallel > 0 }
    let grouped = params + [String(max(0, min(limit, startable ?? limit))), serialized ? "true" : "false"]
    let r =
      held.isEmpty
      ? try db.execute(ClusterSQL.claimTasks, params)
      : serialized
        ? try db.transaction { () throws(ClusterError) -> PGConnection.Rows in
          try db.execute(ClusterSQL.claimLock)
          return try db.execute(ClusterSQL.claimTasksGrouped, grouped)
        } : try db.execute(ClusterSQL.claimTasksGrouped, grouped)
    return (0..<r.count).map { i in
      Claimed(
        id: Int(r[i, "id"] ?? "") ?? 0, priority: Int(r[i, "priority"] ?? "") ?? 0, spec: r[i, "spec"] ?? "{}",
        tokenBudget: Int(r[i, "token_budget"] ?? "") ?? 0, timeoutMs: r[i, "timeout_ms"].flatMap { Int64($0) },
        maxAttempts: Int(r[i, "max_attempts"] ?? "") ?? 1, attempt: Int(r[i, "attempt"] ?? "") ?? 1,
        cancelRequested: r[i, "cancel_requested"] == "t", secrets: r[i, "secrets"], group: r[i, "grp"])
    }.sorted { ($0.priority, -$0.id) > ($1.priority, -$1.id) }
  }

  /// The terminal state of a claimed task; false when the fence refused it (another node or a
  /// later attempt owns the task now, or it already ended).
  public func complete(
    id: Int, attempt: Int, state: TaskState, reason: String?, exitCode: Int32?, tokensUsed: Int, epoch claimEpoch: Int64? = nil
  ) throws(ClusterError) -> Bool {
    let r = try db.execute(
      ClusterSQL.completeTask,
      [
        String(id), node, String(claimEpoch ?? epoch), String(attempt), state.rawValue, reason, exitCode.map { String($0) },
        String(tokensUsed),
      ])
    return r[0, "accepted"] == "1"
  }

  /// Many terminal states in one statement; returns the ids the fence accepted.
  public func complete(
    _ list: [(id: Int, attempt: Int, epoch: Int64, state: TaskState, reason: String?, exitCode: Int32?, tokensUsed: Int, ran: Int?)]
  )
    throws(ClusterError) -> Set<Int>
  {
    let rows: [JSON] = list.map { c in
      .object([
        ("id", .int(Int64(c.id))), ("node", .string(node)), ("epoch", .int(c.epoch)), ("attempt", .int(Int64(c.attempt))),
        ("state", .string(c.state.rawValue)), ("reason", c.reason.map { .string($0) } ?? .null),
        ("exit_code", c.exitCode.map { .int(Int64($0)) } ?? .null), ("tokens_used", .int(Int64(c.tokensUsed))),
        ("ran", c.ran.map { .int(Int64($0)) } ?? .null),
      ])
    }
    let r = try db.execute(ClusterSQL.completeTasks, [JSON.array(rows).encoded()])
    if (r[0, "ready"].flatMap { Int($0) } ?? 0) > 0 { try db.execute(ClusterSQL.wakeNodes) }
    return Set(r.values.compactMap { $0[0].flatMap { Int($0) } })
  }

  /// Writes runs that started or ended (`ClusterSQL.markRuns`), all in one statement.
  public func markRuns(_ runs: [ClusterLink.Run]) throws(ClusterError) {
    let rows: [JSON] = runs.map { r in
      .object([
        ("id", .int(Int64(r.id))), ("epoch", .int(r.epoch)), ("attempt", .int(Int64(r.attempt))), ("ran", .int(Int64(r.ran))),
        ("running", .bool(r.running)),
      ])
    }
    try db.execute(ClusterSQL.markRuns, [node, JSON.array(rows).encoded()])
  }

  /// Leader duty: fences lapsed nodes and requeues tasks not backed by a live lease (ends
  /// `cancelled` those someone asked to cancel). Nil when another node holds the leader lock
  /// this round.
  public func rescue() throws(ClusterError) -> (fenced: [String], requeued: Int, cancelled: Int)? {
    try db.transaction { () throws(ClusterError) -> (fenced: [String], requeued: Int, cancelled: Int)? in
      guard try db.execute(ClusterSQL.tryLeaderLock)[0, "leader"] == "t" else { return nil }
      let r = try db.execute(ClusterSQL.rescue)
      let names = (r[0, "fenced"] ?? "").split(separator: ",").map(String.init)
      let requeued = Int(r[0, "requeued"] ?? "0") ?? 0
      // Requeued work is work to claim: wake the nodes now, not at their next poll.
      if requeued > 0 { try db.execute(ClusterSQL.wakeNodes) }
      return (names, requeued, Int(r[0, "cancelled"] ?? "0") ?? 0)
    }
  }

  /// (total, reserved, used, available) of the cluster budget.
  public func budget() throws(ClusterError) -> (total: Int, reserved: Int, used: Int, available: Int)? {
    let r = try db.execute(ClusterSQL.budget)
    guard r.count == 1 else { return nil }
    func n(_ c: String) -> Int { Int(r[0, c] ?? "") ?? 0 }
    return (n("total"), n("reserved"), n("used"), n("available"))
  }
}
