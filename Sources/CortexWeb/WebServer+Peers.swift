import CortexCore
import Posix

/// Cluster mode (docs/web.md, "Cluster mode"): the pages of this node show what only the other
/// nodes hold — their worker grids and chart series (their `/api/status`), their decision logs
/// (their `/api/events/recent`, followed with `after=`), the output of a task that ran there.
/// Each node publishes its web address and a read-only peer token in `cortex_node`; this node
/// reads them through its cluster link and asks the other web views over HTTP from
/// `PeerFetcher`'s threads, only while a page here looks. A node that cannot be read is named on
/// the page with the reason, and nothing else waits for it.
final class PeerState {
  struct Status {
    /// The node's `/api/status` as last answered (nil: it could not be read).
    var status: JSON?
    /// Why it cannot be read (nil when it can).
    var note: String?
  }

  let fetcher: PeerFetcher
  var handlers: [UInt64: (PeerFetcher.Answer) -> Void] = [:]
  /// "status:NODE" / "events:NODE" while a request of that kind to that node is out.
  var busy: Set<String> = []
  var status: [String: Status] = [:]
  /// The last seq read from each node's log, and its newest events (for a page that opens).
  var cursors: [String: UInt64] = [:]
  /// `at`: when the event happened on this node's clock (its `ts` less the node's `offsets`).
  var ring: [String: [(at: Int64, ev: FleetModel.RingEvent)]] = [:]
  /// How far each node's clock is ahead of this one's (ms), from the `now_ms` of its last
  /// events answer: hosts' clocks need not agree, and events of different nodes are merged in
  /// the order they happened (by their `ts`, a node 5 minutes behind had its events sorted
  /// before all of this node's last 5 minutes, and cut from the newest ones).
  var offsets: [String: Int64] = [:]
  /// Task events read from the other nodes so far: a followed cluster list may have moved.
  var taskEvents: UInt64 = 0
  /// Why each node's events cannot be shown, as last sent to the streams.
  var notes: [String: String] = [:]
  /// Each node's address as last seen.
  var addresses: [String: String] = [:]
  var lastStatusPollMs: Int64 = 0
  var lastEventsPollMs: Int64 = 0
  /// A page or script of this node asked something (another node's request does not count).
  var lastViewerMs: Int64 = .min / 2
  /// `/api/events/recent?scope=cluster` was asked: the other nodes' logs are followed a while.
  var lastClusterEventsMs: Int64 = .min / 2

  static let ringPerNode = 200
  static let statusEveryMs: Int64 = 1000
  static let eventsEveryMs: Int64 = 500

  init() throws(PosixError) { fetcher = try PeerFetcher() }
}

extension WebServer {
  typealias Peer = ClusterFeed.Peer

  /// The other nodes, each with why its web view cannot be read (nil: it can be asked).
  func otherNodes() -> [(peer: Peer, note: String?)] {
    guard let cluster else { return [] }
    return cluster.peers().filter { $0.name != cluster.node }.map { p in
      if p.state != "alive" { return (p, "node \(p.name) is \(p.state): its workers, events and task output cannot be read") }
      if p.url.isEmpty { return (p, "node \(p.name) publishes no web address (its web view is off)") }
      guard let (address, _) = PeerFetcher.parse(p.url) else { return (p, "node \(p.name) published an address this node cannot use") }
      if address.hasPrefix("127.") && !Self.sameLoopback(p, cluster) {
        return (
          p,
          "node \(p.name) serves its web view on \(address) of its own host (\(p.host)) only, which this node cannot reach; give it \"web\": {\"bind\": …} an address this host can reach"
        )
      }
      return (p, nil)
    }
  }

  /// Whether `p`'s loopback address is this node's loopback: by the network it published with
  /// it (`ClusterFeed.network`); a node that published none (an older version) by its host name.
  static func sameLoopback(_ p: Peer, _ cluster: ClusterFeed) -> Bool {
    guard let mark = p.url.firstRange(of: "#net="), !cluster.network.isEmpty else { return p.host == cluster.host }
    return p.url[mark.upperBound...] == cluster.network
  }

  func fetchPeer(_ p: Peer, _ path: String, then: @escaping (PeerFetcher.Answer) -> Void) {
    guard let peers else { return }
    let ticket = nextID
    nextID += 1
    peers.handlers[ticket] = then
    peers.fetcher.fetch(node: p.name, .init(ticket: ticket, url: p.url, token: p.token, path: path))
  }

  func peerAnswers(now t: Int64) {
    guard let peers else { return }
    for a in peers.fetcher.take() { peers.handlers.removeValue(forKey: a.ticket)?(a) }
  }

  /// Why an answer from node `name` cannot be used, or nil.
  static func unusable(_ a: PeerFetcher.Answer, node name: String) -> String? {
    if let e = a.error { return "node \(name) cannot be reached: \(e)" }
    return a.status == 200 ? nil : "node \(name)'s web view answered HTTP \(a.status)"
  }

  /// Each tick: asks the other nodes for their status (every second while a page here shows
  /// status) and for their new events (twice a second while an event stream is open), one
  /// request of each kind per node at a time.
  func pollPeers(now t: Int64) {
    guard let peers else { return }
    let wantStatus = t - peers.lastViewerMs < Self.followMs || streams.contains { connections[$0]?.stream?.status == true }
    // A followed cluster list is asked for again when another node's task events come.
    let wantEvents =
      t - peers.lastClusterEventsMs < Self.followMs
      || streams.contains { connections[$0]?.stream?.events == true || connections[$0]?.list?.cluster == true }
    if !wantEvents && !peers.cursors.isEmpty {
      peers.cursors.removeAll()
      peers.ring.removeAll()
    }
    let doStatus = wantStatus && t - peers.lastStatusPollMs >= PeerState.statusEveryMs
    let doEvents = wantEvents && t - peers.lastEventsPollMs >= PeerState.eventsEveryMs
    guard doStatus || doEvents else { return }
    if doStatus { peers.lastStatusPollMs = t }
    if doEvents { peers.lastEventsPollMs = t }
    let others = otherNodes()
    let names = Set(others.map(\.peer.name))
    peers.status = peers.status.filter { names.contains($0.key) }
    peers.notes = peers.notes.filter { names.contains($0.key) }
    for (p, note) in others {
      // A node that came back at another address (a new start, perhaps with a new log) is
      // followed from its newest events again.
      if peers.addresses[p.name] != p.url {
        peers.addresses[p.name] = p.url
        peers.cursors[p.name] = nil
        peers.ring[p.name] = nil
      }
      if let note {
        peers.status[p.name] = .init(status: nil, note: note)
        noteNode(p.name, note, now: t)
        continue
      }
      let name = p.name
      if doStatus && peers.busy.insert("status:" + name).inserted {
        fetchPeer(p, "/api/status") { a in
          peers.busy.remove("status:" + name)
          if let why = Self.unusable(a, node: name) {
            peers.status[name] = .init(status: nil, note: why)
          } else {
            peers.status[name] = .init(status: try? JSON.parse(a.body), note: nil)
          }
        }
      }
      if doEvents && peers.busy.insert("events:" + name).inserted {
        let path = peers.cursors[name].map { "/api/events/recent?after=\($0)&limit=1000" } ?? "/api/events/recent?limit=100"
        fetchPeer(p, path) { [self] a in
          peers.busy.remove("events:" + name)
          if let why = Self.unusable(a, node: name) { return noteNode(name, why, now: now()) }
          noteNode(name, nil, now: now())
          guard let answer = try? JSON.parse(a.body), let list = answer["events"]?.array else { return }
          if let theirs = answer["now_ms"]?.int { peers.offsets[name] = theirs - now() }
          relayPeerEvents(name, list, now: now())
        }
      }
    }
  }

  /// Another node's new events: kept for pages that open, and sent to the open streams whose
  /// filter they match (without `id:`: the stream's resume point stays this node's seq).
  func relayPeerEvents(_ node: String, _ list: [JSON], now t: Int64) {
    guard let peers else { return }
    var fresh: [(at: Int64, ev: FleetModel.RingEvent)] = []
    let after = peers.cursors[node] ?? 0
    let offset = peers.offsets[node] ?? 0
    for e in list {
      guard let seq = e["seq"]?.int, seq > 0, UInt64(seq) > after, let type = e["type"]?.string else { continue }
      let task = e["task_id"]?.string.flatMap(TaskID.parse)
      let at = (e["ts"]?.string.flatMap(Timestamp.parse) ?? t + offset) - offset
      fresh.append((at, .init(seq: UInt64(seq), type: type, task: task, line: e.encodedBytes())))
    }
    peers.cursors[node] = max(after, fresh.last?.ev.seq ?? after)
    guard !fresh.isEmpty else { return }
    peers.taskEvents &+= UInt64(fresh.count { $0.ev.type.hasPrefix("task.") })
    peers.ring[node, default: []].append(contentsOf: fresh)
    if let n = peers.ring[node]?.count, n > PeerState.ringPerNode { peers.ring[node]!.removeFirst(n - PeerState.ringPerNode) }
    for id in streams {
      guard let c = connections[id], let f = c.stream, f.events else { continue }
      var out: [UInt8] = []
      Self.appendEvents(
        fresh.lazy.map(\.ev).filter { f.matches(type: $0.type, task: $0.task) }, batch: f.batch, withID: false, newest: f.newest, to: &out)
      if !out.isEmpty { sendStream(c, out, now: t) }
    }
  }

  /// Records why node `name`'s events cannot be shown (nil: they can); a change goes to every
  /// open event stream as `event: peers`.
  func noteNode(_ name: String, _ note: String?, now t: Int64) {
    guard let peers, peers.notes[name] != (note ?? "") else { return }
    peers.notes[name] = note ?? ""
    let msg = Array("event: peers\ndata: ".utf8) + peersJSON().encodedBytes() + [10, 10]
    broadcast(msg, now: t) { $0.events }
  }

  /// `[{node, ok, note}]` for every other node whose events were asked for.
  func peersJSON() -> JSON {
    .array(
      (peers?.notes ?? [:]).sorted { $0.key < $1.key }.map { (k, v) in
        .object([("node", .string(k)), ("ok", .bool(v.isEmpty)), ("note", v.isEmpty ? .null : .string(v))])
      })
  }

  /// What a new event stream gets from the other nodes: their recent events that match, and
  /// which nodes cannot be read.
  func peerReplay(_ f: StreamFilter) -> [UInt8] {
    guard let peers, f.events else { return [] }
    var out: [UInt8] = []
    let all = peers.ring.values.joined().sorted { $0.at < $1.at }.map(\.ev).filter { f.matches(type: $0.type, task: $0.task) }
    Self.appendEvents(all, batch: f.batch, withID: false, newest: f.newest, to: &out)
    if !peers.notes.isEmpty { out += Array("event: peers\ndata: ".utf8) + peersJSON().encodedBytes() + [10, 10] }
    return out
  }

  /// `GET /api/events/recent?scope=cluster`: this node's newest events and the other nodes' (as
  /// last read; asking keeps them followed for a while), newest last, with `nodes` saying which
  /// nodes could not be read.
  func clusterRecent(_ r: HTTPRequest, now t: Int64) -> HTTPResponse {
    peers?.lastClusterEventsMs = t
    let f: StreamFilter
    let limit: Int
    switch recentQuery(r) {
    case .failure(let e): return .error(e.status, e.message)
    case .success(let q): (f, limit) = (q.0, q.limit)
    }
    var all: [(at: Int64, line: [UInt8])] = []
    for e in model.events(after: 0).suffix(5000) where f.matches(type: e.type, task: e.task) {
      all.append((LogLine(bytes: e.line[...]).string("ts").flatMap(Timestamp.parse) ?? 0, e.line))
    }
    // The other nodes' by when they happened on this node's clock (`PeerState.offsets`).
    for p in (peers?.ring.values).map({ Array($0.joined()) }) ?? [] where f.matches(type: p.ev.type, task: p.ev.task) {
      all.append((p.at, p.ev.line))
    }
    all.sort { $0.at < $1.at }
    var body = Array("{\"ok\":true,\"scope\":\"cluster\",\"nodes\":".utf8) + peersJSON().encodedBytes() + Array(",\"events\":[".utf8)
    for (i, l) in all.suffix(limit).enumerated() {
      if i > 0 { body.append(44) }
      body.append(contentsOf: l.line)
    }
    body.append(contentsOf: Array("]}\n".utf8))
    return HTTPResponse(status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body: body)
  }

  /// `GET /api/tasks/ID/output` of a task this node did not run: the daemon's `show` names the
  /// node that ran it, whose web view is asked for the same range. A node that cannot be read
  /// gets 502 with the reason.
  func remoteOutput(_ n: Int, offset: Int, on c: WebConnection, keepAlive: Bool, now t: Int64) {
    let me = cluster?.node
    control(.object([("op", .string("show")), ("id", .string(TaskID.format(n)))]), for: c, keepAlive: keepAlive, now: t) {
      [self] answer in
      guard let answer else { return .error(502, "the daemon did not answer") }
      guard answer["ok"]?.bool == true else { return Self.showRefused(answer, n) }
      guard let node = answer["task"]?["node"]?.string, node != me else { return output(n, offset: offset) }
      guard let other = otherNodes().first(where: { $0.peer.name == node }) else {
        return .error(502, "\(TaskID.format(n)) ran on node \(node), which the cluster no longer lists")
      }
      if let note = other.note { return .error(502, "the output of \(TaskID.format(n)) is on node \(node): \(note)") }
      fetchPeer(other.peer, "/api/tasks/\(TaskID.format(n))/output?offset=\(offset)") { [self] a in
        guard let c2 = connections[c.id], c2.waiting else { return }
        c2.waiting = false
        var resp: HTTPResponse
        if let why = Self.unusable(a, node: node) {
          resp = .error(502, "the output of \(TaskID.format(n)) is on node \(node): \(why)")
        } else if case .object(var o)? = try? JSON.parse(a.body) {
          o.append(("node", .string(node)))
          resp = .json(.object(o))
        } else {
          resp = .error(502, "node \(node) sent an output answer that is not JSON")
        }
        respond(c2, resp, keepAlive: keepAlive, head: c2.head, now: now())
        processRequests(c2, now: now())
      }
      return nil
    }
  }

  /// The chart series: this node's, and in cluster mode (`withNodes`) `nodes`, each other
  /// node's series as its web view last answered ({node, series}, or {node, note}). Latency
  /// percentiles of different nodes cannot be merged, so each node keeps its own charts.
  func seriesJSON(now t: Int64, withNodes: Bool = true) -> JSON {
    let mine = model.metrics.series.json(nowSec: t / 1000)
    guard withNodes, let peers, case .object(var o) = mine else { return mine }
    o.append(
      (
        "nodes",
        .array(
          peers.status.sorted { $0.key < $1.key }.map { (name, s) in
            if let series = s.status?["series"], s.note == nil { return .object([("node", .string(name)), ("series", series)]) }
            return .object([("node", .string(name)), ("note", .string(s.note ?? "not read yet"))])
          })
      ))
    return .object(o)
  }

  /// `GET /api/tasks/ID` of a task that ran on node `ranOn`: the cluster's `record`, with what
  /// that node's web view adds (history, worker, timings), or `detail_note` saying why it could
  /// not be read. Answers the connection itself.
  func remoteTask(_ n: Int, record: [(String, JSON)], node ranOn: String, on c: WebConnection, keepAlive: Bool) {
    func finish(_ task: [(String, JSON)], note: String?) {
      guard let c2 = connections[c.id], c2.waiting else { return }
      c2.waiting = false
      var task = task.filter { $0.0 != "dir" }
      if let note { task.append(("detail_note", .string(note))) }
      respond(c2, .json(.object([("ok", .bool(true)), ("task", .object(task))])), keepAlive: keepAlive, head: c2.head, now: now())
      processRequests(c2, now: now())
    }
    guard let other = otherNodes().first(where: { $0.peer.name == ranOn }) else {
      return finish(record, note: "node \(ranOn) is no longer in the cluster")
    }
    if let note = other.note { return finish(record, note: note) }
    fetchPeer(other.peer, "/api/tasks/\(TaskID.format(n))") { a in
      if let why = Self.unusable(a, node: ranOn) { return finish(record, note: why) }
      guard let theirs = (try? JSON.parse(a.body))?["task"]?.object else {
        return finish(record, note: "node \(ranOn) sent a task answer that is not JSON")
      }
      // The cluster's record wins where both have a field (state, node); the rest is theirs.
      var task = record
      for (k, v) in theirs where !task.contains(where: { $0.0 == k }) { task.append((k, v)) }
      if let h = theirs.first(where: { $0.0 == "history" }) {
        task.removeAll { $0.0 == "history" }
        task.append(h)
      }
      finish(task, note: nil)
    }
  }

  /// Every node's worker grid for `cluster.workers`: this node's from its hot state, the others'
  /// from their last status answer, or the reason they cannot be read.
  func clusterWorkers(_ v: HotState.View, now t: Int64) -> [JSON] {
    guard let cluster else { return [] }
    var rows: [JSON] = [grid(cluster.node, status: statusJSONWorkers(v), note: nil)]
    for (name, s) in (peers?.status ?? [:]).sorted(by: { $0.key < $1.key }) {
      rows.append(grid(name, status: s.status, note: s.note))
    }
    return rows
  }

  private func grid(_ node: String, status: JSON?, note: String?) -> JSON {
    var o: [(String, JSON)] = [("node", .string(node)), ("ok", .bool(note == nil && status != nil))]
    if let note { o.append(("note", .string(note))) }
    if let w = status?["workers"] { o.append(("workers", w)) }
    if let p = status?["pool_size"] { o.append(("pool_size", p)) }
    return .object(o)
  }

  private func statusJSONWorkers(_ v: HotState.View) -> JSON {
    var states = ""
    var tasks: [JSON] = []
    for w in v.workers {
      states.append(Self.stateLetters[w.state] ?? "?")
      tasks.append(.int(Int64(w.task ?? 0)))
    }
    return .object([("workers", .object([("states", .string(states)), ("tasks", .array(tasks))])), ("pool_size", .int(Int64(v.poolSize)))])
  }
}
