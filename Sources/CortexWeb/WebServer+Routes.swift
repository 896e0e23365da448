import CortexCore
import Posix

/// Routing: every path the server answers, with authentication first (docs/web.md lists them).
extension WebServer {
  func handle(_ r: HTTPRequest, on c: WebConnection, now t: Int64) {
    let keep = r.keepAlive
    let head = r.method == "HEAD"
    c.head = head
    func send(_ resp: HTTPResponse) { respond(c, resp, keepAlive: keep, head: head, now: t) }

    if r.path == "/favicon.ico" { return send(HTTPResponse(status: 204, headers: [("Cache-Control", "max-age=86400")])) }
    guard auth.hostAllowed(r) else {
      return send(.error(403, "unknown Host header (this server answers to \(auth.hosts.sorted().joined(separator: ", ")))"))
    }
    let cred = auth.credential(r)
    if cred == .peer {
      // Another node's web view (cluster mode): reads only, and only what its pages need.
      guard Auth.peerReadable(r) else {
        return send(.error(403, "the peer token reads only status, recent events, and tasks and their output"))
      }
      return get(r, on: c, send: send, keep: keep, peer: true, now: t)
    }
    if cred == .query && (r.method == "GET" || r.method == "HEAD") {
      // The token from the printed URL becomes a cookie, and leaves the address bar.
      // The rest of the query stays (the events page's filter in the printed link, say).
      let rest = r.query.filter { $0.0 != "token" }.map { Self.percentEncode($0.0) + "=" + Self.percentEncode($0.1) }
      // The path is the decoded one: encoded again, so no byte of it (a CR LF) reaches the header
      // as it is, and with one leading slash (`//host/` would send the browser to another site).
      let path = "/" + r.path.drop { $0 == "/" }
      let location = Self.percentEncode(path, keep: "/") + (rest.isEmpty ? "" : "?" + rest.joined(separator: "&"))
      var resp = HTTPResponse(status: 303, headers: [("Location", location), ("Set-Cookie", auth.setCookie())])
      resp.headers.append(("Cache-Control", "no-store"))
      return send(resp)
    }
    guard cred == .cookie || cred == .bearer else {
      if r.path.hasPrefix("/api/") || r.path == "/metrics" {
        return send(
          .error(401, "authentication required: open the URL `cortex start` printed, or send Authorization: Bearer <contents of web.token>")
        )
      }
      return send(
        HTTPResponse(
          status: 401, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")],
          body: Array(Pages.unauthorized.utf8)))
    }

    peers?.lastViewerMs = t
    guard let allow = Self.methods(r.path) else { return send(.error(404, Self.noEndpoint(r.path))) }
    guard allow.contains(r.method) else {
      var resp = HTTPResponse.error(
        405, "method \(r.method) not allowed on \(Self.shown(r.path)) (it answers \(allow.joined(separator: ", ")))")
      resp.headers.append(("Allow", allow.joined(separator: ", ")))
      return send(resp)
    }
    switch r.method {
    case "GET", "HEAD": get(r, on: c, send: send, keep: keep, peer: false, now: t)
    default:
      guard auth.originAllowed(r, cred) else {
        return send(.error(403, "cross-origin request refused: a state-changing request needs an Origin header naming this server"))
      }
      guard (r.header("content-type") ?? "").lowercased().hasPrefix("application/json") else {
        return send(.error(415, "send the request body as Content-Type: application/json"))
      }
      post(r, on: c, send: send, keep: keep, now: t)
    }
  }

  /// The methods `path` answers to (another gets 405 with `Allow`); nil for an API path that does
  /// not exist (404 whatever the method). Pages, static files and `/metrics` are read-only; which
  /// of those exist is for `get` to say.
  static func methods(_ path: String) -> [String]? {
    let p = path.split(separator: "/", omittingEmptySubsequences: true)
    let read = ["GET", "HEAD"]
    guard p.first == "api" else { return read }
    switch (p.count, p.count > 1 ? p[1] : "") {
    case (2, "status"), (2, "cluster"), (2, "workers"), (2, "tasks"), (2, "events"), (3, "tasks"): return read
    case (3, "events") where p[2] == "recent": return read
    case (4, "tasks") where p[3] == "output": return read
    case (4, "tasks") where ["cancel", "retry", "priority"].contains(p[3]): return ["POST"]
    case (2, "scale"): return ["POST"]
    case (2, "groups"): return read
    case (4, "groups") where ["pause", "resume", "parallel"].contains(p[3]): return ["POST"]
    default: return nil
    }
  }

  /// What a 404 for an API path says.
  static func noEndpoint(_ path: String) -> String {
    let p = path.split(separator: "/", omittingEmptySubsequences: true)
    if p.count == 4 && p[1] == "tasks" {
      return "no action \(shown(String(p[3]))) on a task (GET output; POST cancel, retry or priority)"
    }
    if p.count == 4 && p[1] == "groups" {
      return "no action \(shown(String(p[3]))) on a group (POST pause, resume or parallel)"
    }
    return "no API endpoint \(shown(path))"
  }

  /// A path or value as an error message quotes it: at most 80 characters.
  static func shown(_ s: String) -> String { s.count > 80 ? String(s.prefix(80)) + "…" : s }

  private func get(_ r: HTTPRequest, on c: WebConnection, send: (HTTPResponse) -> Void, keep: Bool, peer: Bool, now t: Int64) {
    let parts = r.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    switch parts.first {
    case nil, "tasks", "events":
      guard parts.count <= 2, parts.count < 2 || (parts[0] == "tasks" && TaskID.parse(parts[1]) != nil) else {
        return send(Self.noPage(r.path))
      }
      send(
        HTTPResponse(
          status: 200, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")], body: Pages.shell))
    case "static":
      switch r.path {
      case "/static/app.js":
        send(
          HTTPResponse(
            status: 200, headers: [("Content-Type", "text/javascript; charset=utf-8"), ("Cache-Control", "no-cache")], body: Pages.script))
      case "/static/app.css":
        send(
          HTTPResponse(
            status: 200, headers: [("Content-Type", "text/css; charset=utf-8"), ("Cache-Control", "no-cache")], body: Pages.style))
      default: send(.error(404, "no file \(Self.shown(r.path))"))
      }
    case "metrics":
      guard parts.count == 1 else { return send(.error(404, "no page \(Self.shown(r.path))")) }
      send(.text(metricsText(now: t), type: "text/plain; version=0.0.4; charset=utf-8"))
    case "api":
      api(Array(parts.dropFirst()), r, on: c, send: send, keep: keep, peer: peer, now: t)
    default:
      send(Self.noPage(r.path))
    }
  }

  /// A page that does not exist, for a person at a browser: a short HTML page with a link to
  /// the overview (the API's 404s stay JSON).
  static func noPage(_ path: String) -> HTTPResponse {
    let shownPath = shown(path).replacing("&", with: "&amp;").replacing("<", with: "&lt;").replacing(">", with: "&gt;")
    let body =
      // Styled by the pages' own sheet: an inline style would break the Content-Security-Policy
      // (`default-src 'self'`), which the browser reports as an error in its console.
      "<!doctype html><html><head><meta charset=\"utf-8\"><title>Cortex: no such page</title>"
      + "<link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main><h1>No page " + shownPath + "</h1>"
      + "<p>The pages are the <a href=\"/\">overview</a>, <a href=\"/tasks\">tasks</a> and <a href=\"/events\">events</a>; "
      + "the JSON API is under /api/ (docs/web.md).</p></main></body></html>\n"
    return HTTPResponse(
      status: 404, headers: [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")], body: Array(body.utf8))
  }

  /// `peer`: asked by another node's web view, which gets this node's own data only (no
  /// cluster field, nothing fetched from a third node).
  private func api(
    _ p: [String], _ r: HTTPRequest, on c: WebConnection, send: (HTTPResponse) -> Void, keep: Bool, peer: Bool, now t: Int64
  ) {
    switch (p.first, p.count) {
    case ("status", 1):
      guard let view = hot.read() else { return send(.error(503, "hot-state.mmap cannot be read yet")) }
      var o = statusJSON(view, now: t, withCluster: !peer).object ?? []
      model.metrics.series.advance(to: t / 1000)
      o.append(("series", seriesJSON(now: t, withNodes: !peer)))
      send(.json(.object(o)))
    case ("cluster", 1):
      send(clusterAnswer())
    case ("groups", 1):
      groupsList(on: c, keepAlive: keep, now: t)
    case ("workers", 1):
      guard let view = hot.read() else { return send(.error(503, "hot-state.mmap cannot be read yet")) }
      let rows: [JSON] = Self.shownWorkers(view).map { w in
        .object([
          ("id", .string(WorkerID.format(w.slot))), ("state", .string(w.state)), ("pid", .int(Int64(w.pid))),
          ("task_id", w.task.map { .string(TaskID.format($0)) } ?? .null), ("tasks_done", .int(Int64(w.tasksDone))),
          ("last_seen_ms", .int(w.lastSeenMs)), ("restarts", .int(Int64(w.restarts))),
        ])
      }
      send(.json(.object([("ok", .bool(true)), ("workers", .array(rows))])))
    case ("tasks", 1):
      switch taskQuery(r) {
      case .failure(let e): send(.error(400, e.message))
      case .success(let q):
        let clusterWide = cluster != nil && q.label == nil && r.param("scope") != "node"
        let follow: Bool
        do { follow = try Self.flag(r, "follow", default: false) } catch { return send(.error(400, error.message)) }
        if follow {
          // HEAD: what a stream would answer, without becoming one.
          if c.head { return send(HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream")])) }
          return clusterWide ? startClusterListStream(c, q, now: t) : startListStream(c, q, now: t)
        }
        if clusterWide { return clusterTasks(q, on: c, keepAlive: keep, now: t) }
        send(.json(taskList(q)))
      }
    case ("tasks", 2):
      guard let n = TaskID.parse(p[1]) else { return send(.error(404, "\(quoted(Self.shown(p[1]))) is not a task id like task-000012")) }
      let local = model.task(n)
      let node = cluster?.node
      control(.object([("op", .string("show")), ("id", .string(TaskID.format(n)))]), for: c, keepAlive: keep, now: t) {
        [self] answer in
        var task: [(String, JSON)] = answer?["task"]?.object ?? []
        if answer?["ok"]?.bool != true && local == nil { return Self.showRefused(answer, n) }
        // Cluster mode: a task that ran on another node gets its detail (history, worker,
        // timings) from that node's web view, or a note saying why not.
        if !peer, local == nil, let ranOn = task.first(where: { $0.0 == "node" })?.1.string, ranOn != node {
          remoteTask(n, record: task, node: ranOn, on: c, keepAlive: keep)
          return nil
        }
        task.removeAll { $0.0 == "dir" }
        if let node, local != nil, !task.contains(where: { $0.0 == "node" }) { task.append(("node", .string(node))) }
        if let local {
          for (k, v) in local.detailJSON().object ?? [] where !task.contains(where: { $0.0 == k }) || k == "history" || k == "state" {
            task.removeAll { $0.0 == k }
            task.append((k, v))
          }
        }
        return .json(.object([("ok", .bool(true)), ("task", .object(task))]))
      }
    case ("tasks", 3) where p[2] == "output":
      guard let n = TaskID.parse(p[1]) else { return send(.error(404, "\(quoted(Self.shown(p[1]))) is not a task id like task-000012")) }
      let offset: Int
      do { offset = try Self.number(r, "offset", 0...UInt64(Int.max)).map { Int($0) } ?? 0 } catch {
        return send(.error(error.status, error.message))
      }
      guard model.task(n) == nil, !FileSystem.exists(paths.taskDir(n) + "/output.log") else { return send(output(n, offset: offset)) }
      // Cluster mode: a task whose output is not on this node's disk may have run on another.
      if !peer, peers != nil { return remoteOutput(n, offset: offset, on: c, keepAlive: keep, now: t) }
      // Not one this view knows (forgotten past its cap, or no such task): the daemon's `show`
      // says whether it exists, as `cortex log` would.
      control(.object([("op", .string("show")), ("id", .string(TaskID.format(n)))]), for: c, keepAlive: keep, now: t) {
        [self] answer in
        guard let answer else { return .error(502, "the daemon did not answer") }
        guard answer["ok"]?.bool == true else { return Self.showRefused(answer, n) }
        return output(n, offset: offset)
      }
    case ("events", 1):
      let f: StreamFilter
      let since: UInt64?
      switch streamQuery(r) {
      case .failure(let e): return send(.error(e.status, e.message))
      case .success(let q): (f, since) = q
      }
      // HEAD: what a stream would answer, without becoming one.
      if c.head { return send(HTTPResponse(status: 200, headers: [("Content-Type", "text/event-stream"), ("Cache-Control", "no-store")])) }
      startStream(c, f, since: since, now: t)
    case ("events", 2) where p[1] == "recent":
      if !peer, r.param("scope") == "cluster", peers != nil { return send(clusterRecent(r, now: t)) }
      let f: StreamFilter
      let limit: Int
      let after: UInt64
      switch recentQuery(r) {
      case .failure(let e): return send(.error(e.status, e.message))
      case .success(let q): (f, limit, after) = q
      }
      var lines: [[UInt8]] = []
      for e in model.events(after: after).reversed() where f.matches(type: e.type, task: e.task) {
        lines.append(e.line)
        if lines.count >= limit { break }
      }
      // `now_ms`: this node's clock, for a node that merges these with its own (its clock may differ).
      var body = Array("{\"ok\":true,\"now_ms\":\(now()),\"events\":[".utf8)
      for (i, l) in lines.reversed().enumerated() {
        if i > 0 { body.append(44) }
        body.append(contentsOf: l)
      }
      body.append(contentsOf: Array("]}\n".utf8))
      send(HTTPResponse(status: 200, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body: body))
    default:
      send(.error(404, "no API endpoint \(Self.shown(r.path))"))
    }
  }

  /// The answer when the daemon's `show` refused: 404 for a task nobody knows, 503 when it could
  /// not say (75: in cluster mode, the cluster's record cannot be read while the database is
  /// unreachable; it was a 404, "not found", for a task that exists).
  static func showRefused(_ answer: JSON?, _ n: Int) -> HTTPResponse {
    .error(answer?["code"]?.int == 75 ? 503 : 404, answer?["error"]?.string ?? "unknown task \(TaskID.format(n))")
  }

  /// The HTTP answer to the daemon's answer to an action. A refusal keeps the daemon's fields and
  /// adds `status`, as every error answer has: 404 when the task does not exist (cancel says so
  /// in its `results`; retry and edit in `error`), 400 for a bad request (64, 65), 409 when the
  /// task's state does not allow it (1: edit a running task, retry an unfinished one), 409 for
  /// backpressure (75), 503 when the daemon is not taking requests (69).
  static func httpAnswer(_ answer: JSON?) -> HTTPResponse {
    guard let answer else { return .error(502, "the daemon did not answer") }
    let unknown = "unknown task"
    let results = answer["results"]?.object ?? []
    if answer["ok"]?.bool == true {
      // A cancel of one task the daemon does not know.
      guard results.count == 1, let why = results[0].1.string, why.hasPrefix(unknown) else { return .json(answer) }
      return .error(404, "id: unknown task \(results[0].0)")
    }
    let code = answer["code"]?.int ?? 1
    let message = answer["error"]?.string ?? ""
    let status =
      message.contains(unknown) ? 404 : code == 64 || code == 65 ? 400 : code == 75 || code == 1 ? 409 : code == 69 ? 503 : 500
    var o = answer.object ?? []
    o.removeAll { $0.0 == "status" }
    o.insert(("status", .int(Int64(status))), at: min(1, o.count))
    return .json(.object(o), status: status)
  }

  /// Query-string encoding: letters, digits, `-._~,` and the bytes of `keep` as they are, every
  /// other byte as %XX.
  static func percentEncode(_ s: String, keep: String = "") -> String {
    var out = ""
    for b in s.utf8 {
      switch b {
      case 48...57, 65...90, 97...122, 45, 46, 95, 126, 44: out.unicodeScalars.append(Unicode.Scalar(b))
      case _ where keep.utf8.contains(b): out.unicodeScalars.append(Unicode.Scalar(b))
      default:
        let h = String(b, radix: 16, uppercase: true)
        out += "%" + (h.count == 1 ? "0" + h : h)
      }
    }
    return out
  }

  /// Up to 64 KiB of a task's `output.log` from `offset`, ending on a whole UTF-8 character:
  /// a character cut by the 64 KiB bound, or not yet written whole by a running task, is left
  /// for the next read (`next_offset` stops before it). Decoded as it came, its halves became
  /// two U+FFFD on the page (a task printing `é` or `✓` past 64 KiB showed `��`).
  func output(_ n: Int, offset: Int) -> HTTPResponse {
    let path = paths.taskDir(n) + "/output.log"
    guard let fd = try? FileDescriptor.open(path, .readOnly) else {
      return .json(
        .object([("ok", .bool(true)), ("offset", .int(0)), ("next_offset", .int(0)), ("size", .int(0)), ("text", .string(""))]))
    }
    defer { fd.close() }
    let size = (try? fd.size()) ?? 0
    let from = min(max(0, offset), size)
    var buf = [UInt8](repeating: 0, count: min(64 << 10, size - from))
    let got = buf.withUnsafeMutableBytes { (try? fd.read(at: from, into: $0)) ?? 0 }
    buf.removeSubrange(got...)
    // At the file's end of a finished task nothing more will come: its bytes are sent as they are.
    let finished = model.task(n).map { $0.state.isTerminal } ?? true
    if from + got < size || !finished { buf.removeLast(Self.incompleteUTF8Tail(buf)) }
    let got2 = buf.count
    return .json(
      .object([
        ("ok", .bool(true)), ("offset", .int(Int64(from))), ("next_offset", .int(Int64(from + got2))), ("size", .int(Int64(size))),
        ("text", .string(String(decoding: buf, as: UTF8.self))),
      ]))
  }

  /// How many bytes at the end of `b` begin a UTF-8 character that is not whole (0 to 3): a
  /// lead byte followed by fewer continuation bytes than it announces.
  static func incompleteUTF8Tail(_ b: [UInt8]) -> Int {
    var k = 0
    while k < min(3, b.count) && b[b.count - 1 - k] & 0xC0 == 0x80 { k += 1 }
    guard k < b.count else { return 0 }
    let lead = b[b.count - 1 - k]
    let needs = lead >= 0xF0 && lead < 0xF8 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
    return needs > k + 1 && lead >= 0xC0 && lead < 0xF8 ? k + 1 : 0
  }

  private func post(_ r: HTTPRequest, on c: WebConnection, send: (HTTPResponse) -> Void, keep: Bool, now t: Int64) {
    let body: JSON
    if r.body.isEmpty {
      body = .object([])
    } else {
      do { body = try JSON.parse(r.body) } catch { return send(.error(400, "the body must be a JSON object; it is \(error)")) }
      guard body.object != nil else { return send(.error(400, "the body must be a JSON object, not \(Self.shown(body.encoded()))")) }
    }
    let parts = r.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    // A field the action does not take is refused rather than dropped (a typo, or a field a
    // script expects to matter).
    let takes =
      parts.last == "scale" ? ["workers"] : parts.last == "priority" ? ["priority"] : parts.last == "parallel" ? ["parallel"] : []
    if let extra = body.object?.first(where: { !takes.contains($0.0) }) {
      let what = takes.isEmpty ? "no fields (send {})" : takes.joined(separator: ", ")
      return send(.error(400, "\(Self.shown(extra.0)): unknown field; this request takes \(what)"))
    }
    func passThrough(_ answer: JSON?) -> HTTPResponse { Self.httpAnswer(answer) }
    switch (parts.count, parts.count > 1 ? parts[1] : "") {
    case (2, "scale") where parts[0] == "api":
      guard let w = body["workers"] else { return send(.error(400, "workers: required, the new pool size (1 to 1024)")) }
      control(.object([("op", .string("scale")), ("workers", w)]), for: c, keepAlive: keep, now: t, finish: passThrough)
    case (4, "groups") where parts[0] == "api":
      groupAction(parts[2], parts[3], body, on: c, send: send, keep: keep, now: t)
    case (4, "tasks") where parts[0] == "api":
      guard let n = TaskID.parse(parts[2]) else {
        return send(.error(404, "\(quoted(Self.shown(parts[2]))) is not a task id like task-000012"))
      }
      let id = JSON.string(TaskID.format(n))
      switch parts[3] {
      case "cancel":
        control(.object([("op", .string("cancel")), ("ids", .array([id]))]), for: c, keepAlive: keep, now: t, finish: passThrough)
      case "retry":
        // The same request as `cortex retry`: the daemon submits its own copy of the spec (with
        // any secrets, which the web view never holds) as a new task with `retry_of`.
        control(.object([("op", .string("retry")), ("ids", .array([id]))]), for: c, keepAlive: keep, now: t, finish: passThrough)
      case "priority":
        // The same request as `cortex edit ID --priority P`: logged as task.edited with before and after.
        guard let p = body["priority"]?.string, Priority(name: p) != nil else {
          let given = body["priority"].map { "not \(Self.shown($0.encoded()))" } ?? "required"
          return send(.error(400, "priority: \(given); one of critical, high, medium, low"))
        }
        control(
          .object([("op", .string("edit")), ("id", id), ("set", .object([("priority", .string(p))]))]), for: c, keepAlive: keep, now: t,
          finish: passThrough)
      default:
        send(.error(404, "no action \(parts[3]) (use cancel, retry or priority)"))
      }
    default:
      send(.error(404, "no API endpoint \(Self.shown(r.path))"))
    }
  }
}
