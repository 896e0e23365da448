import CortexCore
import Posix

/// Groups (SPEC §15) on the pages and in the API (docs/web.md): `GET /api/groups`, the
/// overview's Groups card (`event: groups` on the status stream), and pause, resume and the
/// `parallel` limit of one group, sent to the daemon as `cortex pause G`, `cortex resume G` and
/// `cortex group set G --parallel N` send them, so each is the daemon's own logged decision
/// (`group.paused`, `group.resumed`, `group.updated`).
enum GroupsView {
  /// The most a group's `parallel` limit can be (as `cortex group set`).
  static let maxParallel = 1_000_000

  /// The groups as the API and the card show them. `groups`: the daemon's rows (its `groups`
  /// answer, or `groups.json`); `cluster`: in cluster mode the groups the cluster pauses or
  /// limits with what runs and waits in the whole cluster (nil: not read yet), whose paused
  /// flag and limit are the cluster's and whose counts decide "at limit".
  static func json(groups: [JSON], queuePaused: Bool, cluster: [JSON]?, clusterMode: Bool) -> JSON {
    var held: [String: JSON] = [:]
    for g in cluster ?? [] { if let n = g["name"]?.string { held[n] = g } }
    var rows: [JSON] = []
    var seen = Set<String>()
    for g in groups {
      guard let name = g["name"]?.string else { continue }
      seen.insert(name)
      rows.append(row(g, held[name]))
    }
    // A group the cluster holds back that this node's scheduler has not followed yet.
    for (name, h) in held.sorted(by: { $0.key < $1.key }) where !seen.contains(name) {
      rows.append(row(.object([("name", .string(name)), ("running", .int(0)), ("queued", .int(0))]), h))
    }
    rows.sort { ($0["name"]?.string ?? "") < ($1["name"]?.string ?? "") }
    var o: [(String, JSON)] = [
      ("ok", .bool(true)), ("queue_paused", .bool(queuePaused)), ("shown", .bool(rows.contains(where: shown))), ("groups", .array(rows)),
    ]
    if clusterMode { o.append(("cluster_groups", cluster.map { .array($0) } ?? .null)) }
    return .object(o)
  }

  /// One group: name, state (`paused`, `at_limit` or `running`), paused, parallel (null: no
  /// limit), running, queued, started, rate (when limited), and `cluster` {running, queued}
  /// when the cluster holds it back.
  static func row(_ g: JSON, _ held: JSON?) -> JSON {
    let paused = held?["paused"]?.bool ?? g["paused"]?.bool ?? false
    let parallel = held?["parallel"]?.int ?? g["parallel"]?.int ?? 0
    let running = g["running"]?.int ?? 0
    let counted = held?["running"]?.int ?? running
    let state = paused ? "paused" : parallel > 0 && counted >= parallel ? "at_limit" : "running"
    var o: [(String, JSON)] = [
      ("name", g["name"] ?? .null), ("state", .string(state)), ("paused", .bool(paused)),
      ("parallel", parallel > 0 ? .int(parallel) : .null), ("running", .int(running)), ("queued", .int(g["queued"]?.int ?? 0)),
      ("started", .int(g["started"]?.int ?? 0)),
    ]
    if let r = g["rate"] { o.append(("rate", r)) }
    if let held { o.append(("cluster", .object([("running", held["running"] ?? .int(0)), ("queued", held["queued"] ?? .int(0))]))) }
    return .object(o)
  }

  /// Whether the card shows the group: any but `default`, or `default` paused or limited (the
  /// rule `cortex status` uses to print the group table).
  static func shown(_ g: JSON) -> Bool {
    g["name"]?.string != FleetNames.defaultGroup || g["paused"]?.bool == true || g["parallel"]?.int != nil
  }

  /// The new limit from a request's `parallel`: a whole number 0 to `maxParallel`, 0 or null
  /// for none.
  static func parallel(_ v: JSON?) -> Result<Int, SpecError> {
    guard let v else {
      return .failure(SpecError("parallel", "required: the most of the group's tasks running at once (0 or null: no limit)"))
    }
    if v.isNull { return .success(0) }
    do throws(SpecError) { return .success(try Numbers.int("parallel", v, min: 0, max: maxParallel)) } catch { return .failure(error) }
  }
}

extension WebServer {
  /// The cluster's held groups from the link's snapshot: nil on a single host, `.some(nil)`
  /// before the first read.
  func clusterGroups() -> [JSON]?? {
    guard let cluster else { return nil }
    return .some(cluster.view()?["groups"]?.array)
  }

  /// `GET /api/groups`: the daemon's `groups` answer (as `cortex group`), with the cluster's.
  func groupsList(on c: WebConnection, keepAlive: Bool, now t: Int64) {
    control(.object([("op", .string("groups"))]), for: c, keepAlive: keepAlive, now: t) { [self] answer in
      guard let answer, answer["ok"]?.bool == true else { return Self.httpAnswer(answer) }
      let held = clusterGroups()
      return .json(
        GroupsView.json(
          groups: answer["groups"]?.array ?? [], queuePaused: answer["paused"]?.bool ?? false, cluster: held ?? nil,
          clusterMode: held != nil))
    }
  }

  /// `POST /api/groups/NAME/pause|resume|parallel`. A group the daemon (or the cluster) does
  /// not list is 404 naming the groups there are: from a page, a name nobody used is a typo
  /// (`cortex pause NAME` still holds a group before its tasks come).
  func groupAction(
    _ name: String, _ action: String, _ body: JSON, on c: WebConnection, send: (HTTPResponse) -> Void, keep: Bool, now t: Int64
  ) {
    do throws(SpecError) { _ = try FleetNames.checkGroup("group", name) } catch { return send(.error(400, error.description)) }
    var request: [(String, JSON)] = [("op", .string(action == "parallel" ? "group_set" : action)), ("group", .string(name))]
    if action == "parallel" {
      switch GroupsView.parallel(body["parallel"]) {
      case .failure(let e): return send(.error(400, e.description))
      case .success(let n): request.append(("parallel", .int(Int64(n))))
      }
    }
    control(.object([("op", .string("groups"))]), for: c, keepAlive: keep, now: t) { [self] answer in
      guard let answer, answer["ok"]?.bool == true else { return Self.httpAnswer(answer) }
      var known = Set((answer["groups"]?.array ?? []).compactMap { $0["name"]?.string })
      for g in (clusterGroups() ?? nil) ?? [] { if let n = g["name"]?.string { known.insert(n) } }
      guard known.contains(name) else {
        let list = known.sorted().joined(separator: ", ")
        return .error(404, "no group \(Self.shown(name)) (the groups are: \(list.isEmpty ? "none yet" : list))")
      }
      guard let conn = connections[c.id] else { return nil }
      // The second request answers the connection; if it cannot be sent, the connection has
      // its 503 and goes on with what the client sent after it.
      conn.waiting = false
      control(.object(request), for: conn, keepAlive: keep, now: t) { Self.httpAnswer($0) }
      if !conn.waiting { processRequests(conn, now: t) }
      return nil
    }
  }

  /// The groups for the status stream (`event: groups`), from the `groups.json` the daemon
  /// writes (at once after a change, else at most once a second); nil when unchanged since the
  /// last one sent to every stream. `force`: for one new stream, always, and not remembered as
  /// sent (the other streams have not had it: the next push sends it to all).
  func groupsEvent(force: Bool) -> [UInt8]? {
    guard let bytes = (try? FileSystem.read(paths.groups)) ?? nil, let v = try? JSON.parse(bytes) else { return nil }
    let held = clusterGroups()
    let data = GroupsView.json(
      groups: v["groups"]?.array ?? [], queuePaused: v["queue_paused"]?.bool ?? false, cluster: held ?? nil, clusterMode: held != nil
    ).encodedBytes()
    if !force {
      guard data != lastGroupsEvent else { return nil }
      lastGroupsEvent = data
    }
    return Array("event: groups\ndata: ".utf8) + data + [10, 10]
  }
}
