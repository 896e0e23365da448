import CortexCore
import Posix

/// The web view's server (SPEC §12, docs/web.md): one thread of its own with its own epoll, so no
/// browser, however slow or stuck, can delay the daemon's loop. It reads the fleet from the files
/// the daemon already writes (the decision log and `hot-state.mmap`) and sends actions to the
/// daemon's control socket like any other client, so each is a logged decision.
final class WebServer {
  let paths: Paths
  let auth: Auth
  let epoll: Epoll
  let listener: FileDescriptor
  let fsync: TimingHistogram
  /// Cluster mode: this node's name and the cluster snapshot (nil on a single host).
  let cluster: ClusterFeed?
  /// Cluster mode: what the other nodes' web views answered (`WebServer+Peers.swift`).
  let peers: PeerState?
  var model = FleetModel()
  var tail: LogTail
  var hot: HotStateReader
  var connections: [UInt64: WebConnection] = [:]
  var controls: [UInt64: ControlRequest] = [:]
  var streams: Set<UInt64> = []
  /// Cluster mode: the cluster's task lists that streams follow, by query (`WebServer+ClusterList.swift`).
  var clusterLists: [String: ClusterListFollow] = [:]
  var nextID: UInt64 = 16
  var lastStatusMs: Int64 = 0
  var lastStatusSeq: UInt64 = .max
  var lastSeriesMs: Int64 = 0
  /// The last `event: groups` data sent (`WebServer+Groups.swift`): sent again only when it changes.
  var lastGroupsEvent: [UInt8] = []
  var lastSweepMs: Int64 = 0
  var lastTickMs: Int64 = 0
  /// When the log was last read, and when a request last arrived: the log is followed only while
  /// someone looks (a stream is open, or a request came within `followMs`).
  var lastPollMs: Int64 = 0
  var lastRequestMs: Int64 = .min / 2
  var following = false
  var lastPingMs: Int64 = 0
  var refused = 0
  let startedMs = Clock.wallMs()

  /// Connections served at once; past this the longest-idle keep-alive one is closed for a new one.
  static let maxConnections = 512
  /// A request must arrive whole within this long of its first byte.
  static let requestTimeoutMs: Int64 = 10_000
  /// A keep-alive connection with nothing to do is closed after this long.
  static let idleTimeoutMs: Int64 = 60_000
  /// A reader that takes nothing for this long is cut off.
  static let stuckTimeoutMs: Int64 = 30_000
  /// An event stream more than this far behind is closed (the browser reconnects and resumes).
  static let maxStreamBacklog = 4 << 20
  /// Status snapshots go out at most this often while the hot state moves (every fourth tick):
  /// an event's change is on an overview within it plus a tick and a frame (p95 ≤ 250 ms needs
  /// 200 here; docs/bench/web.md measures each page).
  static let statusIntervalMs: Int64 = 200
  static let seriesIntervalMs: Int64 = 2000
  /// New log lines are read, and sent to the streams, once per tick: one read and one write per
  /// stream every 50 ms however many events there were.
  static let tickMs: Int64 = 50
  /// The web thread's nice value (the loop's is the process's, usually 0): 10 weighs it at about
  /// a tenth of the loop when both want a core (docs/bench/web.md measures it).
  static let threadNice: Int32 = 10
  /// After the last request, the log is followed this long (a page's next fetch is then cheap).
  static let followMs: Int64 = 5000

  static let tokenListener: UInt64 = 1
  static let tokenPeers: UInt64 = 2

  init(paths: Paths, auth: Auth, listener: FileDescriptor, fsync: TimingHistogram, cluster: ClusterFeed? = nil) throws(PosixError) {
    self.cluster = cluster
    self.paths = paths
    self.auth = auth
    self.listener = listener
    self.fsync = fsync
    epoll = try Epoll()
    tail = LogTail(directory: paths.events)
    hot = HotStateReader(path: paths.hotState)
    try epoll.add(listener, .input, token: Self.tokenListener)
    peers = cluster == nil ? nil : try PeerState()
    if let peers { try epoll.add(peers.fetcher.wakeFD, .input, token: Self.tokenPeers) }
  }

  func now() -> Int64 { Clock.wallMs() }

  func run() {
    var events: [(token: UInt64, events: Epoll.Events)] = []
    while true {
      // With nobody connected the thread sleeps until someone connects (the sweep then has nothing
      // to do, and the log is not read): the web view costs the daemon nothing while unwatched.
      let wait = connections.isEmpty && controls.isEmpty ? -1 : Int32(max(1, Self.tickMs - (now() - lastTickMs)))
      if wait < 0 { following = false }  // the next request checks how much it missed
      epoll.wait(timeoutMs: wait, into: &events)
      let t = now()
      for (token, ev) in events {
        if token == Self.tokenListener {
          acceptAll(now: t)
        } else if token == Self.tokenPeers {
          peerAnswers(now: t)
        } else if let c = connections[token] {
          if ev.contains(.input) || ev.contains(.hangup) || ev.contains(.error) { readable(c, now: t) }
          if !c.closed && ev.contains(.output) { flush(c, now: t) }
        } else if let r = controls[token] {
          controlReadable(r, now: t)
        }
      }
      guard t - lastTickMs >= Self.tickMs else { continue }
      lastTickMs = t
      if !streams.isEmpty || t - lastRequestMs < Self.followMs { pollLog(now: t) } else { following = false }
      pushStatus(now: t)
      pushLists(now: t)
      pushClusterLists(now: t)
      pollPeers(now: t)
      if t - lastSweepMs >= 1000 {
        lastSweepMs = t
        sweep(now: t)
      }
    }
  }

  // MARK: connections

  func acceptAll(now t: Int64) {
    // Idle connections, longest idle first, computed once per burst of new connections.
    var victims: [WebConnection]? = nil
    var next = 0
    while let fd = UnixSocket.accept(listener) {
      if connections.count >= Self.maxConnections {
        // Make room by closing the connection idle the longest; if none is idle, refuse this one.
        if victims == nil || next >= victims!.count {
          victims = connections.values.filter(\.isIdle).sorted { ($0.lastActivityMs, $0.id) < ($1.lastActivityMs, $1.id) }
          next = 0
        }
        while next < victims!.count && (victims![next].closed || !victims![next].isIdle) { next += 1 }
        if next < victims!.count {
          close(victims![next])
          next += 1
        } else {
          refused += 1
          _ = try? fd.writeSome(HTTPResponse.error(503, "too many connections", close: true).encoded(keepAlive: false))
          fd.close()
          continue
        }
      }
      let id = nextID
      nextID += 1
      let c = WebConnection(id: id, fd: fd, now: t)
      do throws(PosixError) {
        try epoll.add(fd, .input, token: id)
      } catch {
        fd.close()
        continue
      }
      connections[id] = c
    }
  }

  func readable(_ c: WebConnection, now t: Int64) {
    var buf: [UInt8] = []
    while true {
      let n: Int
      do throws(PosixError) { n = try c.fd.read(appendingTo: &buf, max: 64 << 10) } catch {
        if error.isWouldBlock { break }
        close(c)
        return
      }
      if n == 0 {
        close(c)
        return
      }
      if buf.count >= 256 << 10 { break }
    }
    if buf.isEmpty { return }
    c.lastActivityMs = t
    if c.stream != nil { return }  // a stream only sends; anything received is ignored
    lastRequestMs = t
    // Answer from the log as it is now, not as of the last tick: a script that saw `cortex wait`
    // return reads its task's end in /metrics or /api at once (one read when nothing is new).
    pollLog(now: t, maxBytes: 16 << 20)
    c.parser.append(buf)
    if c.partialSinceMs == nil { c.partialSinceMs = t }
    if c.parser.buffered > HTTPRequestParser.maxHeaderBytes + HTTPRequestParser.maxBodyBytes + (64 << 10) {
      respond(c, .error(413, "request too large", close: true), keepAlive: false, head: false, now: t)
      return
    }
    processRequests(c, now: t)
  }

  /// Answers complete requests in order until one must wait (a control request) or none is left.
  func processRequests(_ c: WebConnection, now t: Int64) {
    while !c.closed && !c.waiting && c.stream == nil && !c.closeAfterFlush {
      switch c.parser.next() {
      case .incomplete:
        if c.parser.buffered == 0 { c.partialSinceMs = nil }
        return
      case .failure(let f):
        respond(c, .error(f.status, f.message, close: true), keepAlive: false, head: false, now: t)
        return
      case .request(let r):
        c.partialSinceMs = c.parser.buffered > 0 ? t : nil
        handle(r, on: c, now: t)
      }
    }
  }

  func respond(_ c: WebConnection, _ r: HTTPResponse, keepAlive: Bool, head: Bool, now t: Int64) {
    let keep = keepAlive && !r.close
    c.queue(r.encoded(keepAlive: keep, head: head))
    if !keep { c.closeAfterFlush = true }
    flush(c, now: t)
  }

  func flush(_ c: WebConnection, now t: Int64) {
    guard !c.closed else { return }
    if !c.flush(now: t) {
      close(c)
      return
    }
    if c.pendingOutput == 0 {
      if c.closeAfterFlush {
        close(c)
        return
      }
      if c.watchingOutput {
        c.watchingOutput = false
        try? epoll.modify(c.fd, .input, token: c.id)
      }
    } else if !c.watchingOutput {
      c.watchingOutput = true
      try? epoll.modify(c.fd, [.input, .output], token: c.id)
    }
  }

  func close(_ c: WebConnection) {
    guard !c.closed else { return }
    c.closed = true
    epoll.remove(c.fd)
    c.fd.close()
    connections[c.id] = nil
    streams.remove(c.id)
  }

  /// Closes connections that are too slow to send a request, idle too long, or not reading.
  func sweep(now t: Int64) {
    for c in Array(connections.values) {
      if let s = c.partialSinceMs, t - s > Self.requestTimeoutMs, !c.waiting {
        respond(c, .error(408, "the request did not arrive in time", close: true), keepAlive: false, head: false, now: t)
      } else if let b = c.blockedSinceMs, t - b > Self.stuckTimeoutMs {
        close(c)
      } else if c.isIdle && t - c.lastActivityMs > Self.idleTimeoutMs {
        close(c)
      }
    }
    for r in Array(controls.values) where t - r.startedMs > ControlRequest.timeoutMs {
      finishControl(r, answer: nil, now: t)
    }
    if t - lastPingMs >= 15_000 {
      lastPingMs = t
      broadcast(Array(": keep-alive\n\n".utf8), now: t) { _ in true }
    }
  }

  // MARK: live updates

  /// Reads what the log gained since the last poll into the model and sends it to the streams,
  /// encoded once for each distinct filter (five pages on the same view cost one encoding).
  /// Resuming after a pause with more unread than a start would read, it starts over like a start.
  func pollLog(now t: Int64, maxBytes: Int = 4 << 20) {
    if !following {
      following = true
      if tail.unread() > LogTail.historyBytes {
        tail = LogTail(directory: paths.events)
        model = FleetModel()
      }
    }
    lastPollMs = t
    var fresh: [FleetModel.RingEvent] = []
    tail.poll(maxBytes: maxBytes) { line in
      if let e = model.apply(line: line) { fresh.append(e) }
    }
    guard !fresh.isEmpty, !streams.isEmpty else { return }
    var encoded: [StreamFilter: [UInt8]] = [:]
    for id in streams {
      guard let c = connections[id], let f = c.stream, f.events else { continue }
      let out =
        encoded[f]
        ?? {
          var out: [UInt8] = []
          Self.appendEvents(fresh.lazy.filter { f.matches(type: $0.type, task: $0.task) }, batch: f.batch, newest: f.newest, to: &out)
          encoded[f] = out
          return out
        }()
      if !out.isEmpty { sendStream(c, out, now: t) }
    }
  }

  /// One `log` message per event, or (batch) one `logs` message holding them all as a JSON array,
  /// with the last one's seq as its id: a page then handles one message per poll, not per event.
  /// `withID` false: another node's events, whose seq must not become the stream's resume point.
  /// `newest`: only the last that many, after an `event: skipped` saying how many were left out.
  static func appendEvents<C: Collection>(
    _ events: C, batch: Bool, withID: Bool = true, newest: Int? = nil, to out: inout [UInt8]
  ) where C.Element == FleetModel.RingEvent {
    if let newest {
      // Counted, then the last ones read in place: a copy of every event of the tick cost the
      // web thread a retain and a release of each.
      let all = events.count
      if all > newest {
        out.append(contentsOf: Array("event: skipped\ndata: {\"skipped\":\(all - newest)}\n\n".utf8))
      }
      appendEvents(events.dropFirst(max(0, all - newest)), batch: batch, withID: withID, to: &out)
      return
    }
    if !batch {
      for e in events {
        out.append(contentsOf: Array(((withID ? "id: \(e.seq)\n" : "") + "event: log\ndata: ").utf8))
        out.append(contentsOf: e.line)
        out.append(contentsOf: [10, 10])
      }
      return
    }
    var body: [UInt8] = []
    var last: UInt64 = 0
    for e in events {
      body.append(body.isEmpty ? 91 : 44)
      body.append(contentsOf: e.line)
      last = e.seq
    }
    guard !body.isEmpty else { return }
    out.append(contentsOf: Array(((withID ? "id: \(last)\n" : "") + "event: logs\ndata: ").utf8))
    out.append(contentsOf: body)
    out.append(contentsOf: [93, 10, 10])
  }

  func sendStream(_ c: WebConnection, _ bytes: [UInt8], now t: Int64) {
    if c.pendingOutput > Self.maxStreamBacklog {
      close(c)
      return
    }
    c.queue(bytes)
    flush(c, now: t)
  }

  func broadcast(_ bytes: [UInt8], now t: Int64, _ wants: (StreamFilter) -> Bool) {
    for id in streams {
      guard let c = connections[id], let f = c.stream, wants(f) else { continue }
      sendStream(c, bytes, now: t)
    }
  }

  /// Status snapshots to the streams that want them: when the hot state moved, at most every
  /// `statusIntervalMs`; chart series every `seriesIntervalMs`.
  func pushStatus(now t: Int64) {
    guard streams.contains(where: { connections[$0]?.stream?.status == true }) else { return }
    // Half a tick of slack: a tick that comes a few ms early does not push the snapshot a whole
    // tick later.
    let due = t - lastStatusMs >= Self.statusIntervalMs - Self.tickMs / 2
    if due, let view = hot.read(), view.lastSeq != lastStatusSeq || t - lastStatusMs >= 1000 {
      lastStatusMs = t
      lastStatusSeq = view.lastSeq
      let data = statusJSON(view, now: t).encodedBytes()
      broadcast(Array("event: status\ndata: ".utf8) + data + [10, 10], now: t) { $0.status }
      if let groups = groupsEvent(force: false) { broadcast(groups, now: t) { $0.status } }
    }
    if t - lastSeriesMs >= Self.seriesIntervalMs {
      lastSeriesMs = t
      model.metrics.series.advance(to: t / 1000)
      let data = seriesJSON(now: t).encodedBytes()
      broadcast(Array("event: series\ndata: ".utf8) + data + [10, 10], now: t) { $0.status }
    }
  }

  /// Makes `c` an event stream: the headers, then what it missed (from `since`), then live.
  func startStream(_ c: WebConnection, _ f: StreamFilter, since: UInt64?, now t: Int64) {
    c.stream = f
    streams.insert(c.id)
    var head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\n"
      + HTTPResponse.securityHeaders + "Connection: keep-alive\r\n\r\nretry: 1000\n\n"
    var out = Array(head.utf8)
    head = ""
    if let since {
      Self.appendEvents(
        model.events(after: since).filter { f.matches(type: $0.type, task: $0.task) }, batch: f.batch, newest: f.newest, to: &out)
    }
    out += peerReplay(f)
    if f.status, let view = hot.read() {
      out += Array("event: status\ndata: ".utf8) + statusJSON(view, now: t).encodedBytes() + [10, 10]
      out += groupsEvent(force: true) ?? []
      model.metrics.series.advance(to: t / 1000)
      out += Array("event: series\ndata: ".utf8) + seriesJSON(now: t).encodedBytes() + [10, 10]
    }
    c.queue(out)
    flush(c, now: t)
  }
}
