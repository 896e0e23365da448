import CortexCore

/// What a followed task list needs: the query, and what it was last sent.
struct ListFollow {
  var query: FleetModel.TaskQuery
  /// The query in one string: streams that ask the same are answered with one encoding.
  var key: String
  var sentSeq: UInt64
  var sentMs: Int64
  /// When the send before the last one went (the list is sent twice in a row after a pause).
  var sentBeforeMs: Int64 = .min / 2
  /// The cluster's list (cluster mode, `WebServer+ClusterList.swift`): sent when the daemon's
  /// `list` answers, not from this node's model.
  var cluster = false
}

/// `GET /api/tasks?…&follow=1` (docs/web.md): the task list as an event stream. The answer of
/// `GET /api/tasks` goes out as `event: tasks` at the start and then, while task events arrive,
/// at most every `listIntervalMs`: a page that follows a list draws what it is sent, without a
/// request per redraw (each request cost a headless Chromium about 6 ms of CPU across its
/// processes, more than a redraw; docs/bench/web.md, seventh round).
extension WebServer {
  /// A followed list is sent at most this often while its tasks change (every third tick): a
  /// task event is on the page within it plus a tick and a frame (p95 ≤ 250 ms). After a pause
  /// of two intervals it may go out on two ticks in a row: a task's events come in a burst
  /// (submitted, assigned, started), and the tick after the first need not wait a whole interval.
  static let listIntervalMs: Int64 = 150

  /// What a list stream starts with, before its first `event: tasks`.
  static let listStreamHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\n"
    + HTTPResponse.securityHeaders + "Connection: keep-alive\r\n\r\nretry: 1000\n\n"

  /// The query in one string: streams that ask the same are answered with one encoding.
  static func listKey(_ q: FleetModel.TaskQuery) -> String {
    let label = q.label.map { $0.0 + "=" + ($0.1 ?? "") } ?? ""
    return [q.state ?? "", q.type ?? "", q.priority ?? "", label, q.text ?? "", "\(q.offset)", "\(q.limit)"].joined(separator: "\u{1}")
  }

  /// The object `GET /api/tasks` answers (this node's tasks).
  func taskList(_ q: FleetModel.TaskQuery) -> JSON {
    let (rows, total) = model.query(q)
    let node = cluster.map { JSON.string($0.node) }
    return .object([
      ("ok", .bool(true)), ("total", .int(Int64(total))), ("offset", .int(Int64(q.offset))), ("limit", .int(Int64(q.limit))),
      ("known", .int(Int64(model.taskCount))), ("seq", .int(Int64(model.lastSeq))),
      ("tasks", .array(rows.map { r in node.map { .object((r.summaryJSON().object ?? []) + [("node", $0)]) } ?? r.summaryJSON() })),
    ])
  }

  func listMessage(_ q: FleetModel.TaskQuery) -> [UInt8] {
    Array("event: tasks\ndata: ".utf8) + taskList(q).encodedBytes() + [10, 10]
  }

  /// Makes `c` a stream of the list `q` answers: the headers and the list as it is now.
  func startListStream(_ c: WebConnection, _ q: FleetModel.TaskQuery, now t: Int64) {
    var f = StreamFilter()
    f.events = false
    c.stream = f
    c.list = ListFollow(query: q, key: Self.listKey(q), sentSeq: model.taskChangeSeq, sentMs: t)
    streams.insert(c.id)
    c.queue(Array(Self.listStreamHead.utf8) + listMessage(q))
    flush(c, now: t)
  }

  /// Each followed list whose tasks changed since it was last sent, and that was sent at least
  /// `listIntervalMs` ago (half a tick of slack, as for the status) or whose send before the last
  /// was two intervals ago, gets its answer again; one query and one encoding per distinct list.
  func pushLists(now t: Int64) {
    var encoded: [String: [UInt8]] = [:]
    for id in streams {
      let slack = Self.tickMs / 2
      guard let c = connections[id], var l = c.list, !l.cluster, model.taskChangeSeq > l.sentSeq,
        t - l.sentMs >= Self.listIntervalMs - slack || t - l.sentBeforeMs >= 2 * Self.listIntervalMs - slack
      else { continue }
      let message = encoded[l.key] ?? listMessage(l.query)
      encoded[l.key] = message
      l.sentSeq = model.taskChangeSeq
      l.sentBeforeMs = l.sentMs
      l.sentMs = t
      c.list = l
      sendStream(c, message, now: t)
    }
  }
}
