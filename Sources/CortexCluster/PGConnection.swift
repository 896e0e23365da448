import CortexCore

/// One connection to PostgreSQL. Statements always carry their values as parameters (prepared
/// statements, text format); no SQL is built from values. Not thread-safe: one owner.
public final class PGConnection {
  let pq: PQ
  let conn: PQ.Conn

  /// The rows of a result, as text (nil for SQL NULL), with the column names.
  public struct Rows: Sendable {
    public var columns: [String]
    public var values: [[String?]]
    public var count: Int { values.count }
    public subscript(_ row: Int, _ column: String) -> String? {
      guard let c = columns.firstIndex(of: column), row < values.count else { return nil }
      return values[row][c]
    }
  }

  /// Connects with a libpq connection string (`postgresql://user@host/db` or `host=… dbname=…`).
  ///
  /// `sessionTimeoutMs` (a node's link): over TCP, a statement whose bytes the server has not
  /// acknowledged for that long fails (`tcp_user_timeout`) instead of waiting minutes for TCP to
  /// give up on a network that drops packets, and so does the wait for an answer whose keepalive
  /// probes go unanswered (`keepalives_idle`); and the server ends this session if it sits that
  /// long inside a transaction (`idle_in_transaction_session_timeout`), so that a node cut off or
  /// frozen in the middle of a claim does not hold the budget row, or the claim lock, from every
  /// other node until the server's TCP keepalive notices (two hours by default).
  public init(_ dsn: String, sessionTimeoutMs: Int? = nil) throws(ClusterError) {
    let pq: PQ
    switch PQ.shared {
    case .success(let p): pq = p
    case .failure(let e): throw e
    }
    // libpq waits for a connection without end by default: a host that drops packets, or a port
    // that accepts and never answers, held `cortex cluster status` and a node's start forever.
    // The DSN is expanded after this default, so its own connect_timeout wins.
    var keywords = ["connect_timeout"]
    var values = [String(Self.connectTimeoutS)]
    if let ms = sessionTimeoutMs {
      // A statement sent before a cut and acknowledged by the server's kernel leaves nothing
      // unacknowledged: the wait for its answer is bounded by keepalive probes instead, sent
      // after a quarter of the lease without traffic, each of them bounded by the user timeout.
      keywords += ["tcp_user_timeout", "keepalives", "keepalives_idle", "keepalives_interval"]
      values += [String(ms), "1", String(max(1, ms / 4000)), "1"]
    }
    keywords.append("dbname")
    values.append(dsn)
    let connected: PQ.Conn? = keywords.withCStrings { k in values.withCStrings { v in pq.connectdbParams(k, v, 1) } }
    guard let c = connected else { throw ClusterError(.connect, "cannot connect to PostgreSQL: out of memory") }
    if pq.status(c) != PQ.connectionOK {
      var why = (pq.errorMessage(c).map { String(cString: $0) } ?? "unknown error").trimmingNewlines
      if why.hasSuffix("timeout expired") {
        if let own = Self.connectTimeout(in: dsn) {
          why += " (no answer within the DSN's connect_timeout: \(own) s)"
        } else {
          why += " (no answer within connect_timeout: \(Self.connectTimeoutS) s, as the DSN sets none)"
        }
      }
      pq.finish(c)
      if let refusal = Self.loginRefusal(why) {
        throw ClusterError(
          .connect, "the PostgreSQL server \(refusal.server) refused the login: \(refusal.reason) (\(Self.redact(dsn)))",
          misconfigured: .login)
      }
      if Self.unreadable.contains(where: { why.contains($0) }) {
        throw ClusterError(
          .connect, "the PostgreSQL connection string cannot be used: \(why) (\(Self.redact(dsn)))", misconfigured: .connectionString)
      }
      throw ClusterError(.connect, "cannot connect to PostgreSQL (\(Self.redact(dsn))): \(why)")
    }
    self.pq = pq
    conn = c
    // Notices (e.g. "already exists, skipping") would go to stderr; warnings and errors still come back.
    try execute("SET client_min_messages = warning")
    if let ms = sessionTimeoutMs { try execute("SET idle_in_transaction_session_timeout = \(ms)") }
  }

  deinit { pq.finish(conn) }

  /// False once the connection is broken (server gone, network cut): make a new one.
  public var isConnected: Bool { pq.status(conn) == PQ.connectionOK }

  /// The server's version number (e.g. 150018).
  public var serverVersion: Int { Int(pq.serverVersion(conn)) }

  /// Runs one statement (one only: the extended protocol takes exactly one). A statement with
  /// parameters is prepared on this connection the first time it runs and executed by name
  /// afterwards, so PostgreSQL parses and plans each of cluster mode's statements once per
  /// connection instead of at every claim and completion.
  @discardableResult
  public func execute(_ sql: String, _ params: [String?] = []) throws(ClusterError) -> Rows {
    var cStrings: [UnsafeMutablePointer<CChar>?] = params.map { value in
      value.map { v in
        let bytes = v.utf8CString
        let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
        bytes.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: bytes.count) }
        return p
      }
    }
    defer { for p in cStrings { p?.deallocate() } }
    let name = params.isEmpty ? nil : try preparedName(sql, params.count)
    let result: PQ.Result? = cStrings.withUnsafeMutableBufferPointer { buf in
      buf.withMemoryRebound(to: UnsafePointer<CChar>?.self) { values in
        if let name {
          pq.execPrepared(conn, name, Int32(params.count), values.baseAddress, nil, nil, 0)
        } else {
          pq.execParams(conn, sql, 0, nil, nil, nil, nil, 0)
        }
      }
    }
    let checked = try check(result)
    defer { pq.clear(checked) }
    return rows(checked)
  }

  /// The statements prepared on this connection, by their text.
  private var prepared: [String: String] = [:]

  private func preparedName(_ sql: String, _ count: Int) throws(ClusterError) -> String {
    if let name = prepared[sql] { return name }
    let name = "cortex_\(prepared.count + 1)"
    let result = try check(pq.prepare(conn, name, sql, Int32(count), nil))
    pq.clear(result)
    prepared[sql] = name
    return name
  }

  /// The result when the statement succeeded; the server's message (and SQLSTATE) otherwise.
  private func check(_ result: PQ.Result?) throws(ClusterError) -> PQ.Result {
    guard let result else {
      throw ClusterError(.statement, "PostgreSQL: \(String(cString: pq.errorMessage(conn)!).trimmingNewlines)")
    }
    let status = pq.resultStatus(result)
    guard status == PQ.commandOK || status == PQ.tuplesOK else {
      let msg = pq.resultErrorMessage(result).map { String(cString: $0) } ?? "statement failed"
      let state = pq.resultErrorField(result, PQ.fieldSQLState).map { String(cString: $0) }
      pq.clear(result)
      throw ClusterError(.statement, "PostgreSQL: \(msg.trimmingNewlines)", sqlState: state)
    }
    return result
  }

  private func rows(_ result: PQ.Result) -> Rows {
    let nf = Int(pq.nfields(result))
    let nt = Int(pq.ntuples(result))
    var rows = Rows(columns: (0..<nf).map { String(cString: pq.fname(result, Int32($0))!) }, values: [])
    rows.values.reserveCapacity(nt)
    for r in 0..<nt {
      var row: [String?] = []
      row.reserveCapacity(nf)
      for f in 0..<nf {
        if pq.getisnull(result, Int32(r), Int32(f)) != 0 {
          row.append(nil)
        } else {
          row.append(String(cString: pq.getvalue(result, Int32(r), Int32(f))!))
        }
      }
      rows.values.append(row)
    }
    return rows
  }

  /// The socket libpq reads from, for poll(2) (-1 when not connected).
  public var socket: Int32 { pq.socket(conn) }

  /// Reads whatever the server sent without blocking and returns the channels of the
  /// notifications (LISTEN/NOTIFY) that arrived, oldest first.
  public func notifications() -> [String] {
    _ = pq.consumeInput(conn)
    var out: [String] = []
    while let n = pq.notifies(conn) {
      // struct pgNotify { char *relname; int be_pid; char *extra; … }: the channel comes first.
      if let name = n.load(as: UnsafePointer<CChar>?.self) { out.append(String(cString: name)) }
      pq.freemem(n)
    }
    return out
  }

  /// Runs `body` in a transaction: COMMIT when it returns, ROLLBACK when it throws. A connection
  /// that breaks during the COMMIT throws with `outcomeUnknown`: the server may have committed.
  public func transaction<T>(_ body: () throws(ClusterError) -> T) throws(ClusterError) -> T {
    try execute("BEGIN")
    do throws(ClusterError) {
      let v = try body()
      do throws(ClusterError) {
        try execute("COMMIT")
      } catch {
        guard !isConnected else { throw error }
        throw ClusterError(
          .connect, "the connection to PostgreSQL broke while it committed (\(error.message)): the transaction may have been committed",
          outcomeUnknown: true)
      }
      return v
    } catch {
      _ = try? execute("ROLLBACK")
      throw error
    }
  }

  /// The DSN's own `connect_timeout` (a URL's query parameter or a key=value pair), if it sets one:
  /// the timeout message said the default's 5 s whatever the DSN asked for.
  static func connectTimeout(in dsn: String) -> Int? {
    let b = Array(dsn.utf8)
    let key = Array("connect_timeout".utf8)
    let separators: [UInt8] = [UInt8(ascii: "?"), UInt8(ascii: "&"), UInt8(ascii: " "), UInt8(ascii: "\t")]
    var i = 0
    while i + key.count <= b.count {
      defer { i += 1 }
      guard i == 0 || separators.contains(b[i - 1]), b[i..<i + key.count].elementsEqual(key) else { continue }
      var j = i + key.count
      while j < b.count, b[j] == UInt8(ascii: " ") { j += 1 }
      guard j < b.count, b[j] == UInt8(ascii: "=") else { continue }
      j += 1
      while j < b.count, b[j] == UInt8(ascii: " ") || b[j] == UInt8(ascii: "'") { j += 1 }
      var n = 0
      var digits = 0
      while j < b.count, b[j] >= 48, b[j] <= 57, digits < 9 {
        n = n * 10 + Int(b[j] - 48)
        digits += 1
        j += 1
      }
      if digits > 0 { return n }
    }
    return nil
  }

  /// When libpq's message says the server answered and refused the login (it gives no SQLSTATE
  /// for a failed connection, so the server's words are read: the English ones), the server as
  /// libpq names it (`on socket "/run/postgresql/.s.PGSQL.5432"`, `at "db", port 5432`) and the
  /// server's reason (`password authentication failed for user "cortex"`); nil for anything else
  /// (a server down or unreachable). A wrong password exited 69, "daemon not running".
  static func loginRefusal(_ message: String) -> (server: String, reason: String)? {
    let refusals = [
      "password authentication failed", "authentication failed for user", "no password supplied", "no pg_hba.conf entry",
      "role \"", "database \"",
    ]
    let lines = message.split(separator: "\n").map { String($0) }
    guard
      let fatal = lines.first(where: { line in line.contains("FATAL:") && refusals.contains { line.contains($0) } })
        ?? lines.first(where: { $0.contains("fe_sendauth: no password supplied") })
    else { return nil }
    if fatal.contains("role \"") || fatal.contains("database \"") {
      guard fatal.contains("does not exist") else { return nil }
    }
    var reason = fatal
    if let r = fatal.firstRange(of: "FATAL:") { reason = String(fatal[r.upperBound...]) }
    if let r = reason.firstRange(of: "failed: ") { reason = String(reason[r.upperBound...]) }
    reason = String(reason.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    var server = "it connected to"
    if let start = message.firstRange(of: "connection to server "),
      let end = message[start.upperBound...].firstRange(of: " failed:")
    {
      server = String(message[start.upperBound..<end.lowerBound])
    }
    return (server, reason)
  }

  /// libpq's words for a connection string it cannot read (it connects to nothing then).
  static let unreadable = [
    "invalid URI", "invalid connection option", "invalid integer value", "invalid value for parameter", "missing \"=\" after",
    "unterminated quoted string", "end of string reached", "invalid percent-encoded", "invalid sslmode value",
  ]

  /// Seconds a connection attempt may take when the DSN does not say (`connect_timeout`).
  public static let connectTimeoutS = 5

  /// A DSN with its password hidden, for messages: the rules for every other secret, and the value
  /// of `password=` (a URL's query parameter or a key/value pair) however short it is, which
  /// those rules leave alone (they want a long value before they call it a secret).
  /// `redact` for the other modules' messages.
  public static func redacted(_ dsn: String) -> String { redact(dsn) }

  static func redact(_ dsn: String) -> String {
    let b = Array((Redaction.mask(dsn) ?? dsn).utf8)
    let key = Array("password".utf8)
    var out: [UInt8] = []
    var i = 0
    while i < b.count {
      let atStart = i == 0 || [UInt8(ascii: "?"), UInt8(ascii: "&"), UInt8(ascii: " "), UInt8(ascii: "\t")].contains(b[i - 1])
      guard atStart, i + key.count <= b.count, b[i..<i + key.count].map({ $0 | 0x20 }) == key else {
        out.append(b[i])
        i += 1
        continue
      }
      var j = i + key.count
      while j < b.count, b[j] == UInt8(ascii: " ") { j += 1 }
      guard j < b.count, b[j] == UInt8(ascii: "=") else {
        out.append(b[i])
        i += 1
        continue
      }
      j += 1
      while j < b.count, b[j] == UInt8(ascii: " ") { j += 1 }
      out.append(contentsOf: b[i..<j])
      var end = j
      if end < b.count, b[end] == UInt8(ascii: "'") {
        end += 1
        while end < b.count, b[end] != UInt8(ascii: "'") { end += b[end] == UInt8(ascii: "\\") ? 2 : 1 }
        end = min(end + 1, b.count)
      } else {
        while end < b.count, ![UInt8(ascii: "&"), UInt8(ascii: " "), UInt8(ascii: "#")].contains(b[end]) { end += 1 }
      }
      if end > j { out.append(contentsOf: Redaction.marker.utf8) }
      i = end
    }
    return String(decoding: out, as: UTF8.self)
  }
}

extension Array where Element == String {
  /// Runs `body` with these strings as a C array of `const char *`, NULL-terminated.
  func withCStrings<R>(_ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = map { s in
      let bytes = s.utf8CString
      let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count)
      bytes.withUnsafeBufferPointer { p.initialize(from: $0.baseAddress!, count: bytes.count) }
      return p
    }
    defer { for p in copies { p?.deallocate() } }
    let pointers: [UnsafePointer<CChar>?] = copies.map { $0.map { UnsafePointer($0) } } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
  }
}

extension String {
  var trimmingNewlines: String {
    var s = Substring(self)
    while let l = s.last, l == "\n" || l == " " { s.removeLast() }
    return String(s).replacingNewlines
  }
  var replacingNewlines: String {
    split(separator: "\n").map { $0.drop { $0 == "\t" || $0 == " " } }.joined(separator: "; ")
  }
}
