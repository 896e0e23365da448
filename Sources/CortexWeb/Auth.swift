/// Who may talk to the web view (SPEC §12): the holder of the token in `web.token`, given once in
/// the URL `cortex start` prints (then kept in an HttpOnly, SameSite=Strict cookie), or sent as
/// `Authorization: Bearer TOKEN` by scripts. A state-changing request also needs an `Origin` that
/// is this server (a browser always sends one with a cross-site POST; a script may leave it out
/// only when it authenticates with the header, which no other site's page can set).
struct Auth {
  let token: String
  /// Cluster mode: the read-only token this node publishes for the other nodes' web views
  /// (nil on a single host). It reads only what `peerReadable` lists, never a page or an action.
  let peerToken: String?
  let port: Int
  /// Host names this server answers to (a guard against DNS rebinding); empty: any.
  let hosts: Set<String>

  var cookieName: String { "cortex_\(port)" }

  init(token: String, peerToken: String? = nil, bind: String, port: Int) {
    self.token = token
    self.peerToken = peerToken
    self.port = port
    if bind == "0.0.0.0" {
      hosts = []
    } else {
      hosts = ["\(bind):\(port)", "localhost:\(port)", "127.0.0.1:\(port)"]
    }
  }

  enum Credential { case none, cookie, bearer, query, peer }

  func credential(_ r: HTTPRequest) -> Credential {
    // The scheme's name is case-insensitive (RFC 9110 §11.1): `bearer TOKEN` is the same.
    if let a = r.header("authorization"), a.count > 7, a.prefix(7).lowercased() == "bearer " {
      let given = String(a.dropFirst(7)).trimmingSpaces
      if Self.same(given, token) { return .bearer }
      if let peerToken, Self.same(given, peerToken) { return .peer }
    }
    if let c = r.header("cookie") {
      for part in c.split(separator: ";") {
        let kv = part.trimmingSpacesSub
        if kv.hasPrefix(cookieName + "="), Self.same(String(kv.dropFirst(cookieName.count + 1)), token) { return .cookie }
      }
    }
    if let q = r.param("token"), Self.same(q, token) { return .query }
    return .none
  }

  func hostAllowed(_ r: HTTPRequest) -> Bool {
    if hosts.isEmpty { return true }
    guard let h = r.header("host") else { return r.version == "HTTP/1.0" }
    return hosts.contains(h.lowercased())
  }

  /// A POST is same-origin when its `Origin` names this server; without one, only a bearer token
  /// (which a browser never attaches on its own) is accepted.
  func originAllowed(_ r: HTTPRequest, _ c: Credential) -> Bool {
    guard let origin = r.header("origin") else { return c == .bearer }
    guard let host = r.header("host") else { return false }
    return origin == "http://" + host && hostAllowed(r)
  }

  /// What another node's web view may read with the peer token: this node's status (workers,
  /// chart series), its recent events, and a task's record (with its history here) and output.
  static func peerReadable(_ r: HTTPRequest) -> Bool {
    guard r.method == "GET" else { return false }
    if r.path == "/api/status" || r.path == "/api/events/recent" { return true }
    let p = r.path.split(separator: "/")
    return p.count >= 3 && p.count <= 4 && p[0] == "api" && p[1] == "tasks" && (p.count == 3 || p[3] == "output")
  }

  func setCookie() -> String { "\(cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict" }

  /// Compares without stopping at the first difference.
  static func same(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    var diff = x.count ^ y.count
    for i in 0..<min(x.count, y.count) { diff |= Int(x[i] ^ y[i]) }
    return diff == 0
  }
}

extension Substring {
  var trimmingSpacesSub: Substring {
    var s = self
    while let f = s.first, f == " " { s.removeFirst() }
    while let l = s.last, l == " " { s.removeLast() }
    return s
  }
}
