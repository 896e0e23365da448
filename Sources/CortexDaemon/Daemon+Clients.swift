import CortexCore
import Posix

/// Control-socket connections and their limits (docs/security.md, "Limits per client"): `max_clients`
/// connections plus a small reserve that may only `ping` and `stop`; one unfinished request line
/// each (`requestLineLimit`) and a total for all (`clientInputLimit`); no reading from a peer that
/// leaves its answers unread; a fair share of requests per loop iteration; idle connections closed.
extension Daemon {
  /// Connections let in past `max_clients`, for `ping` and `stop` only.
  static let reserveSize = 4
  /// Requests handled per connection per loop iteration; the rest wait for the next one.
  static let requestsPerTurn = 64
  /// A reserved connection must send its request within this long.
  static let reservedIdleMs: Int64 = 2000
  /// A reserved connection quiet for this long may be closed to make room for a new one (a
  /// younger one gets the time to send its request).
  static let reservedGraceMs: Int64 = 100

  func acceptClients(now t: Int64) {
    while let fd = UnixSocket.accept(listener!) {
      let reserved = clients.count - reservedClients.count >= maxClients
      if reserved && reservedClients.count >= Self.reserveSize, let idle = quietestReservedClient(now: t) {
        // Idle connections cannot hold the reserve: the newest arrival takes the quietest's place.
        let notice = Scheduler.refused(
          "too_many_connections", "closed to make room: the daemon serves \(maxClients) connections at once (max_clients in config.json)")
        _ = try? idle.fd.writeSome(notice.encodedBytes() + [10])
        closeClient(idle)
      }
      if reserved && reservedClients.count >= Self.reserveSize {
        refusedConnections += 1
        let refusal = Scheduler.refused(
          "too_many_connections",
          "the daemon serves \(maxClients) connections at once (max_clients in config.json); try again shortly")
        _ = try? fd.writeSome(refusal.encodedBytes() + [10])
        fd.close()
        continue
      }
      let id = nextClientID
      nextClientID += 1
      let c = ClientConnection(id: id, fd: fd, maxLine: config.requestLineLimit, reserved: reserved, now: t)
      if reserved { reservedClients.insert(id) }
      clients[id] = c
      do throws(PosixError) {
        try epoll.add(fd, .input, token: Self.kindClient | id)
      } catch {
        closeClient(c)
        continue
      }
      // A client writes its request right after connecting: it is usually here already, and
      // reading it now saves a turn of the loop (a read that finds nothing costs one EAGAIN).
      clientWake(c, .input, now: t)
    }
  }

  /// The reserved connection that has been quiet longest (at least `reservedGraceMs`) without
  /// owing an answer; one with a `stop` in progress is never chosen.
  func quietestReservedClient(now t: Int64) -> ClientConnection? {
    var best: ClientConnection?
    for id in reservedClients {
      guard let c = clients[id], c.owed == 0, t - c.lastActivityMs >= Self.reservedGraceMs else { continue }
      if best == nil || c.lastActivityMs < best!.lastActivityMs { best = c }
    }
    return best
  }

  /// Reads only while the peer takes its answers, its earlier requests are handled, and the
  /// total of buffered input has room.
  func wantsRead(_ c: ClientConnection) -> Bool {
    !c.closing && !c.inputEnded && !c.outboxFull && !c.backlogged && !c.inputPaused
  }

  func clientWake(_ c: ClientConnection, _ ev: Epoll.Events, now t: Int64) {
    if ev.contains(.output) { c.flush() }
    if ev.contains(.input) || ev.contains(.hangup) || ev.contains(.error) {
      if wantsRead(c) { readClient(c, now: t) }
      // Hung up in both directions: nobody will read an answer.
      if ev.contains(.hangup) || ev.contains(.error) { c.inputEnded = true }
    }
    if !c.outboxFull { processClientLines(c, now: t) }
    finishClientIO(c)
  }

  func readClient(_ c: ClientConnection, now t: Int64) {
    let limit = config.clientInputLimit
    let result = c.read { clientInputBytes - c.countedInput + c.inputBytes < limit }
    countInput(c)
    switch result {
    case .open: break
    case .closed: c.inputEnded = true
    case .paused:
      c.inputPaused = true
      pausedClients += 1
    }
  }

  /// Keeps `clientInputBytes` equal to the sum of every connection's `inputBytes`.
  func countInput(_ c: ClientConnection) {
    let now = c.closed ? 0 : c.inputBytes
    clientInputBytes += now - c.countedInput
    c.countedInput = now
  }

  /// Handles up to `requestsPerTurn` complete requests, fewer while the peer leaves its answers
  /// unread; what is left waits for the next loop iteration.
  func processClientLines(_ c: ClientConnection, now t: Int64) {
    defer { countInput(c) }
    var handled = 0
    c.backlogged = false
    while !c.closed && !c.closing {
      if handled == Self.requestsPerTurn || c.outboxFull {
        c.backlogged = true
        return
      }
      switch c.lines.next() {
      case .none:
        // The peer stopped sending in the middle of a line: it is told so, rather than closed on
        // in silence (nothing of the unfinished request is done).
        if c.inputEnded && c.lines.partialCount > 0 && !c.lines.skipping {
          c.lines.reset()
          c.send(Self.usageError("request not ended by a newline: each request is one line of JSON and \\n; nothing was done"))
        }
        return
      case .tooLong:
        handled += 1
        c.lastActivityMs = t
        c.dropHeldBatch()
        c.send(Self.requestTooLong(config))
      case .dropped:
        handled += 1
        c.lastActivityMs = t
        c.dropHeldBatch()
        c.send(Self.inputFull(config))
      case .line(let line):
        if line.isEmpty { continue }
        handled += 1
        c.lastActivityMs = t
        let req: JSON
        do { req = try JSON.parse(line) } catch {
          c.send(Self.usageError("request is not JSON: \(error)"))
          continue
        }
        c.owed += 1
        c.currentLineBytes = line.count
        handleRequest(c.id, req, now: t)
      }
    }
  }

  static func requestTooLong(_ config: Config) -> JSON {
    .object([
      ("ok", .bool(false)), ("code", .int(65)), ("reason", .string("request_too_long")), ("field", .string("request")),
      (
        "error",
        .string(
          "request: longer than \(config.requestLineLimit) bytes (max_request_bytes in config.json); `cortex submit --from` sends big batches in parts, so a line this long is one spec past max_spec_bytes or not a Cortex client"
        )
      ),
    ])
  }

  static func inputFull(_ config: Config) -> JSON {
    Scheduler.refused(
      "input_full",
      "the daemon holds \(config.clientInputLimit) bytes of unfinished requests from all clients (max_client_input_bytes in config.json); try again shortly"
    )
  }

  /// Closes the connection when it is done, else registers what epoll should watch.
  func finishClientIO(_ c: ClientConnection) {
    if c.closed { return }
    if c.closing || (c.inputEnded && !c.backlogged && !c.wantsWritable) {
      closeClient(c)
      return
    }
    var want: Epoll.Events = []
    if wantsRead(c) { want.insert(.input) }
    if c.wantsWritable { want.insert(.output) }
    if want != c.registered {
      try? epoll.modify(c.fd, want, token: Self.kindClient | c.id)
      c.registered = want
    }
    if c.backlogged && !c.outboxFull { backlog.insert(c.id) } else { backlog.remove(c.id) }
  }

  func closeClient(_ c: ClientConnection) {
    guard !c.closed else { return }
    epoll.remove(c.fd)
    c.fd.close()
    c.closed = true
    clients[c.id] = nil
    backlog.remove(c.id)
    if c.reserved { reservedClients.remove(c.id) }
    if c.inputPaused { pausedClients -= 1 }
    let held = c.countedInput
    c.dropHeldBatch()
    countInput(c)
    if held > 1 << 20 { busySinceTrim = true }
    scheduler.clientGone(c.id)
  }

  /// Once per loop iteration: requests left over from busy connections, connections paused for
  /// the input total, and (a few times a second) idle connections.
  func serviceClients(now t: Int64) {
    if !backlog.isEmpty {
      for id in backlog {
        guard let c = clients[id] else { continue }
        processClientLines(c, now: t)
        finishClientIO(c)
      }
    }
    if pausedClients > 0 && clientInputBytes < config.clientInputLimit {
      for c in clients.values where c.inputPaused {
        c.inputPaused = false
        pausedClients -= 1
        finishClientIO(c)
      }
    }
    let timeoutMs = Int64(config.clientIdleTimeoutS * 1000)
    if t - lastClientSweepMs >= min(1000, max(50, timeoutMs / 4)) {
      lastClientSweepMs = t
      closeIdleClients(timeoutMs: timeoutMs, now: t)
    }
  }

  /// Closes connections that sent no request for the idle timeout and are owed no answer (a
  /// `wait`, `cancel` or `stop` in progress keeps its connection). A reserved connection gets
  /// `reservedIdleMs` at most.
  func closeIdleClients(timeoutMs: Int64, now t: Int64) {
    for c in Array(clients.values) {
      let limit = c.reserved ? min(timeoutMs, Self.reservedIdleMs) : timeoutMs
      guard c.owed == 0, t - c.lastActivityMs >= limit else { continue }
      // A request may be waiting in the socket: read it before judging.
      if wantsRead(c) {
        readClient(c, now: t)
        processClientLines(c, now: t)
      }
      if c.closed || c.owed > 0 || t - c.lastActivityMs < limit {
        finishClientIO(c)
        continue
      }
      if !c.wantsWritable {
        let notice = Scheduler.refused(
          "idle_timeout",
          "closed after \(Double(limit) / 1000) s without a request (client_idle_timeout_s in config.json)")
        _ = try? c.fd.writeSome(notice.encodedBytes() + [10])
      }
      closeClient(c)
    }
  }

  /// The earliest time the loop must wake for clients: now when requests are left over.
  func clientWakeMs(now t: Int64) -> Int64? {
    for id in backlog where clients[id].map({ !$0.outboxFull }) ?? false { return t }
    return nil
  }
}

extension Daemon {
  /// The answer to a request still owed when the daemon stops (`cortex stop`, SIGTERM): a `wait`
  /// for a task that was requeued, a `cancel`, a `retry` or a cluster request the database had
  /// not answered. 69 `daemon_stopped`; the CLI says what it means for its command. Without it
  /// the client saw the connection close, took it for a restart, and waited 30 s in silence for
  /// a daemon that was not coming back (`StopAnswerTests`).
  static let stoppedBeforeAnswering = Scheduler.refused(
    "daemon_stopped", "the daemon stopped before it could answer (cortex stop, or SIGTERM)", code: 69)  // daemon not running

  /// Answers every request still owed, at the end of a stop (never at a restart in place, whose
  /// clients ask the new program again).
  func answerOwedAtStop(now t: Int64) {
    for (id, c) in clients where c.owed > 0 && !c.closing {
      for _ in 0..<c.owed { reply(id, Self.stoppedBeforeAnswering, now: t) }
    }
  }
}
