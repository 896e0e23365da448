import CortexCore

/// A cluster-wide task list that streams follow (`GET /api/tasks?…&follow=1` in cluster mode,
/// docs/web.md): one per distinct query, however many streams follow it. The list is the daemon's
/// `list` (read from PostgreSQL by the cluster link's thread, as for `cortex list`), asked again
/// when something says the cluster's tasks moved, at most every `listIntervalMs` and one request
/// at a time; each answer goes to every stream that follows that query.
struct ClusterListFollow {
  var query: FleetModel.TaskQuery
  /// A `list` request is out for it.
  var asking = false
  /// What had moved when the last request went out (nil: ask as soon as the interval allows, as
  /// when a stream opens).
  var askedMark: ClusterTaskMark?
  var askedMs: Int64 = .min / 2
  var askedBeforeMs: Int64 = .min / 2
}

/// What says that the cluster's tasks may have changed: this node's task events, the task events
/// read from the other nodes' web views (twice a second, `WebServer+Peers.swift`), and the cluster
/// snapshot's counts, queue and running tasks (read from PostgreSQL about once a second), which
/// move also with the tasks of a node whose web view cannot be read.
struct ClusterTaskMark: Equatable {
  var local: UInt64
  var relayed: UInt64
  var snapshot: [UInt8]
}

extension WebServer {
  /// The daemon's `list` request for the cluster's list `q`, and how many rows it asks for: the
  /// page's (offset + limit), or the newest 10,000 when priority or text is filtered here.
  static func clusterListRequest(_ q: FleetModel.TaskQuery) -> (request: JSON, want: Int) {
    let local = q.priority != nil || q.text != nil
    let want = local ? 10_000 : min(10_000, q.offset + q.limit)
    var req: [(String, JSON)] = [("op", .string("list")), ("limit", .int(Int64(want)))]
    if let s = q.state { req.append(("state", .string(s))) }
    if let ty = q.type { req.append(("type", .string(ty))) }
    return (.object(req), want)
  }

  /// `GET /api/tasks` in cluster mode: the newest tasks of every node, from the daemon's `list`
  /// (state and type filtered by the database, priority and text here; labels are not in the
  /// cluster's list, so a label filter lists this node's tasks). Tasks this node knows keep its
  /// detail (worker, times); every row names its node. `total` counts what was fetched, and
  /// `total_at_least` says there may be more. Without a list (`answer` nil or refused): `ok`
  /// false and the `error`.
  func clusterList(_ q: FleetModel.TaskQuery, want: Int, _ answer: JSON?) -> JSON {
    guard let answer, answer["ok"]?.bool == true, let rows = answer["tasks"]?.array else {
      let why = answer?["error"]?.string ?? "the daemon did not list the cluster's tasks"
      return .object([("ok", .bool(false)), ("error", .string(why))])
    }
    let node = cluster?.node ?? ""
    var out: [(id: Int, row: JSON)] = []
    for row in rows {
      guard let id = row["id"]?.string, let n = TaskID.parse(id) else { continue }
      var o: [(String, JSON)]
      if let mine = model.task(n), case .object(let s) = mine.summaryJSON() {
        o = s
        // Submitted on another node: this node's log has its run but not its spec, so what it
        // runs, its priority and when it came are the database's (the model's defaults were
        // shown: a `high` task listed as `medium`, untitled, and left out by priority=high).
        if mine.submittedMs == nil {
          o.removeAll { ["priority", "type", "title", "submitted_ms"].contains($0.0) }
          for k in ["priority", "type", "submitted_ms"] {
            if let v = row[k], !v.isNull { o.append((k, v)) }
          }
          o.append(("title", .string(String((row["description"]?.string ?? "").prefix(200)))))
        }
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
    return .object([
      ("ok", .bool(true)), ("total", .int(Int64(out.count))), ("total_at_least", .bool(rows.count >= want)),
      ("offset", .int(Int64(q.offset))), ("limit", .int(Int64(q.limit))), ("scope", .string("cluster")),
      ("known", .int(Int64(model.taskCount))), ("tasks", .array(Array(page))),
    ])
  }

  /// Answers `GET /api/tasks` in cluster mode once the daemon's `list` answers.
  func clusterTasks(_ q: FleetModel.TaskQuery, on c: WebConnection, keepAlive: Bool, now t: Int64) {
    let (request, want) = Self.clusterListRequest(q)
    control(request, for: c, keepAlive: keepAlive, now: t) { [self] answer in
      let list = clusterList(q, want: want, answer)
      guard list["ok"]?.bool == true else { return .error(503, list["error"]?.string ?? "no list") }
      return .json(list)
    }
  }

  /// Makes `c` a stream of the cluster's list `q`: the headers now, the list when the daemon
  /// answers (asked at once, or the answer of a request already out for the same list).
  func startClusterListStream(_ c: WebConnection, _ q: FleetModel.TaskQuery, now t: Int64) {
    var f = StreamFilter()
    f.events = false
    c.stream = f
    let key = Self.listKey(q)
    c.list = ListFollow(query: q, key: key, sentSeq: 0, sentMs: t, cluster: true)
    streams.insert(c.id)
    c.queue(Array(Self.listStreamHead.utf8))
    flush(c, now: t)
    clusterLists[key, default: ClusterListFollow(query: q)].askedMark = nil
    pushClusterLists(now: t)
  }

  /// Each followed cluster list whose tasks may have moved since it was last asked for (and
  /// none is out) is asked for again, at most every `listIntervalMs` (after a pause, on two ticks
  /// in a row, as for this node's lists); the answer goes to every stream that follows it.
  func pushClusterLists(now t: Int64) {
    guard cluster != nil, !(clusterLists.isEmpty && streams.isEmpty) else { return }
    var followed: Set<String> = []
    for id in streams {
      if let l = connections[id]?.list, l.cluster { followed.insert(l.key) }
    }
    if clusterLists.count != followed.count || !clusterLists.keys.allSatisfy(followed.contains) {
      clusterLists = clusterLists.filter { followed.contains($0.key) }
    }
    guard !clusterLists.isEmpty else { return }
    let mark = clusterTaskMark()
    let slack = Self.tickMs / 2
    for (key, var l) in clusterLists where !l.asking && l.askedMark != mark {
      guard t - l.askedMs >= Self.listIntervalMs - slack || t - l.askedBeforeMs >= 2 * Self.listIntervalMs - slack else { continue }
      l.asking = true
      l.askedMark = mark
      l.askedBeforeMs = l.askedMs
      l.askedMs = t
      clusterLists[key] = l
      let (request, want) = Self.clusterListRequest(l.query)
      let q = l.query
      controlQuery(request, now: t) { [self] answer in
        clusterLists[key]?.asking = false
        let message = Array("event: tasks\ndata: ".utf8) + clusterList(q, want: want, answer).encodedBytes() + [10, 10]
        let at = now()
        for id in streams {
          if let c = connections[id], let f = c.list, f.cluster, f.key == key { sendStream(c, message, now: at) }
        }
      }
    }
  }

  /// The cluster's tasks as far as this node can tell without asking PostgreSQL (`ClusterTaskMark`).
  func clusterTaskMark() -> ClusterTaskMark {
    var snapshot: [UInt8] = []
    if let v = cluster?.view() {
      for k in ["counts", "queued_by_priority"] { snapshot += (v[k] ?? .null).encodedBytes() }
      for n in v["nodes"]?.array ?? [] { snapshot += (n["tasks"] ?? .null).encodedBytes() }
    }
    return ClusterTaskMark(local: model.taskChangeSeq, relayed: peers?.taskEvents ?? 0, snapshot: snapshot)
  }
}
