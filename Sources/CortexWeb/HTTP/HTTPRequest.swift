/// One parsed HTTP/1.1 request.
public struct HTTPRequest: Sendable {
  public var method: String
  /// The path, percent-decoded, without the query.
  public var path: String
  /// Query parameters, percent-decoded, in order.
  public var query: [(String, String)]
  public var version: String
  /// Header names in lower case, in order.
  public var headers: [(String, String)]
  public var body: [UInt8]

  public func header(_ name: String) -> String? {
    for (k, v) in headers where k == name { return v }
    return nil
  }

  public func param(_ name: String) -> String? {
    for (k, v) in query where k == name { return v }
    return nil
  }

  /// HTTP/1.1 keeps the connection unless told `close`; HTTP/1.0 closes unless told `keep-alive`.
  public var keepAlive: Bool {
    let c = header("connection")?.lowercased() ?? ""
    return version == "HTTP/1.1" ? !c.contains("close") : c.contains("keep-alive")
  }
}

/// An incremental request parser: feed it bytes as they arrive, take requests out. Header and
/// body sizes are bounded; anything malformed is a `Failure` with the status to answer (after
/// which the connection is closed: the parser does not try to find the next request).
public struct HTTPRequestParser: Sendable {
  public struct Failure: Error, Equatable, Sendable {
    public var status: Int
    public var message: String
  }
  public enum Next: Sendable {
    case incomplete
    case request(HTTPRequest)
    case failure(Failure)
  }

  public static let maxHeaderBytes = 16 << 10
  public static let maxBodyBytes = 64 << 10
  public static let maxHeaders = 100

  private var buffer: [UInt8] = []
  private var start = 0
  public init() {}

  /// Bytes received and not yet part of a request taken out.
  public var buffered: Int { buffer.count - start }

  public mutating func append(_ bytes: [UInt8]) {
    if start > 0 && start == buffer.count {
      buffer.removeAll(keepingCapacity: true)
      start = 0
    }
    buffer.append(contentsOf: bytes)
  }

  public mutating func next() -> Next {
    // Find the end of the head: CRLF CRLF (a bare LF LF is accepted too).
    var i = start
    var headEnd = -1
    var bodyStart = -1
    let n = buffer.count
    while i < n {
      if buffer[i] == 10 {
        if i + 1 < n && buffer[i + 1] == 10 {
          headEnd = i
          bodyStart = i + 2
          break
        }
        if i + 2 < n && buffer[i + 1] == 13 && buffer[i + 2] == 10 {
          headEnd = i
          bodyStart = i + 3
          break
        }
      }
      i += 1
    }
    if headEnd < 0 {
      if n - start > Self.maxHeaderBytes {
        return .failure(Failure(status: 431, message: "request head larger than \(Self.maxHeaderBytes) bytes"))
      }
      return .incomplete
    }
    if headEnd - start > Self.maxHeaderBytes {
      return .failure(Failure(status: 431, message: "request head larger than \(Self.maxHeaderBytes) bytes"))
    }
    var lines: [ArraySlice<UInt8>] = []
    var ls = start
    for j in start...headEnd where buffer[j] == 10 || j == headEnd {
      var e = j
      if j == headEnd && buffer[j] != 10 { e = j + 1 }
      var line = buffer[ls..<e]
      if line.last == 13 { line = line.dropLast() }
      lines.append(line)
      ls = j + 1
    }
    // Tolerate empty lines before the request line (RFC 9112 §2.2).
    while let f = lines.first, f.isEmpty { lines.removeFirst() }
    guard let requestLine = lines.first else { return .failure(Failure(status: 400, message: "empty request")) }
    for b in buffer[start..<headEnd] where b == 0 || (b < 32 && b != 9 && b != 10 && b != 13) || b == 127 {
      return .failure(Failure(status: 400, message: "control character in the request head"))
    }
    let parts = requestLine.split(separator: 32, omittingEmptySubsequences: false)
    guard parts.count == 3 else { return .failure(Failure(status: 400, message: "malformed request line")) }
    let method = String(decoding: parts[0], as: UTF8.self)
    let target = String(decoding: parts[1], as: UTF8.self)
    let version = String(decoding: parts[2], as: UTF8.self)
    guard !method.isEmpty, method.utf8.allSatisfy({ $0 >= 65 && $0 <= 90 }) else {
      return .failure(Failure(status: 400, message: "malformed method"))
    }
    guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
      return .failure(Failure(status: 505, message: "only HTTP/1.1 and HTTP/1.0 are served"))
    }
    guard target.hasPrefix("/") else { return .failure(Failure(status: 400, message: "the request target must be an absolute path")) }
    var headers: [(String, String)] = []
    for line in lines.dropFirst() {
      guard let colon = line.firstIndex(of: 58), colon > line.startIndex else {
        return .failure(Failure(status: 400, message: "malformed header line"))
      }
      let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
      guard !name.contains(" "), !name.contains("\t") else { return .failure(Failure(status: 400, message: "whitespace in a header name")) }
      let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces
      headers.append((name, value))
      if headers.count > Self.maxHeaders { return .failure(Failure(status: 431, message: "more than \(Self.maxHeaders) headers")) }
    }
    if version == "HTTP/1.1" && !headers.contains(where: { $0.0 == "host" }) {
      return .failure(Failure(status: 400, message: "an HTTP/1.1 request needs a Host header"))
    }
    if headers.contains(where: { $0.0 == "transfer-encoding" }) {
      return .failure(Failure(status: 501, message: "Transfer-Encoding is not supported; send Content-Length"))
    }
    var length = 0
    let lengths = headers.filter { $0.0 == "content-length" }
    if let l = lengths.first {
      guard lengths.count == 1, !l.1.isEmpty, l.1.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), l.1.utf8.count <= 12, let v = Int(l.1) else {
        return .failure(Failure(status: 400, message: "malformed Content-Length"))
      }
      length = v
    }
    if length > Self.maxBodyBytes { return .failure(Failure(status: 413, message: "request body larger than \(Self.maxBodyBytes) bytes")) }
    if buffer.count - bodyStart < length { return .incomplete }
    let body = Array(buffer[bodyStart..<(bodyStart + length)])
    start = bodyStart + length
    if start == buffer.count {
      buffer.removeAll(keepingCapacity: true)
      start = 0
    } else if start > 64 << 10 {
      buffer.removeFirst(start)
      start = 0
    }
    let (path, query) = Self.splitTarget(target)
    guard let decodedPath = path else { return .failure(Failure(status: 400, message: "malformed percent-encoding in the path")) }
    return .request(HTTPRequest(method: method, path: decodedPath, query: query, version: version, headers: headers, body: body))
  }

  static func splitTarget(_ target: String) -> (String?, [(String, String)]) {
    let bytes = Array(target.utf8)
    let q = bytes.firstIndex(of: 63) ?? bytes.count
    let path = percentDecode(bytes[0..<q], plus: false)
    var query: [(String, String)] = []
    if q < bytes.count {
      for pair in bytes[(q + 1)...].split(separator: 38) {
        let eq = pair.firstIndex(of: 61)
        let k = percentDecode(pair[pair.startIndex..<(eq ?? pair.endIndex)], plus: true) ?? ""
        let v = eq.map { percentDecode(pair[($0 + 1)...], plus: true) ?? "" } ?? ""
        query.append((k, v))
      }
    }
    return (path, query)
  }

  /// %XX decoding (and `+` as space in queries); nil on a malformed escape or a NUL byte.
  public static func percentDecode(_ s: ArraySlice<UInt8>, plus: Bool) -> String? {
    var out: [UInt8] = []
    out.reserveCapacity(s.count)
    var i = s.startIndex
    func hex(_ b: UInt8) -> UInt8? {
      switch b {
      case 48...57: b - 48
      case 65...70: b - 55
      case 97...102: b - 87
      default: nil
      }
    }
    while i < s.endIndex {
      let b = s[i]
      if b == 37 {
        guard i + 2 < s.endIndex, let h = hex(s[i + 1]), let l = hex(s[i + 2])
        else { return nil }
        let v = h << 4 | l
        if v == 0 { return nil }
        out.append(v)
        i += 3
      } else {
        out.append(plus && b == 43 ? 32 : b)
        i += 1
      }
    }
    return String(decoding: out, as: UTF8.self)
  }
}

extension String {
  var trimmingSpaces: String {
    var s = Substring(self)
    while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
    while let l = s.last, l == " " || l == "\t" { s.removeLast() }
    return String(s)
  }
}
