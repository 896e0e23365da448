public import CortexCore

/// An HTTP/1.1 response, encoded whole (headers and body) into bytes for a connection's output.
public struct HTTPResponse: Sendable {
  public var status: Int
  public var headers: [(String, String)]
  public var body: [UInt8]
  /// Close the connection after sending (errors that leave the input unreadable).
  public var close = false

  public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], close: Bool = false) {
    self.status = status
    self.headers = headers
    self.body = body
    self.close = close
  }

  public static func json(_ v: JSON, status: Int = 200) -> HTTPResponse {
    var b = v.encodedBytes()
    b.append(10)
    return HTTPResponse(status: status, headers: [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body: b)
  }

  /// `{"ok":false,"error":…}` with the status.
  public static func error(_ status: Int, _ message: String, close: Bool = false) -> HTTPResponse {
    var r = json(.object([("ok", .bool(false)), ("status", .int(Int64(status))), ("error", .string(message))]), status: status)
    r.close = close
    return r
  }

  public static func text(_ s: String, type: String = "text/plain; charset=utf-8", status: Int = 200) -> HTTPResponse {
    HTTPResponse(status: status, headers: [("Content-Type", type), ("Cache-Control", "no-store")], body: Array(s.utf8))
  }

  static func reason(_ status: Int) -> String {
    switch status {
    case 200: "OK"
    case 204: "No Content"
    case 303: "See Other"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 408: "Request Timeout"
    case 409: "Conflict"
    case 413: "Content Too Large"
    case 415: "Unsupported Media Type"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 505: "HTTP Version Not Supported"
    default: "Status"
    }
  }

  /// Headers every answer carries: no sniffing, no framing, nothing loaded from elsewhere.
  static let securityHeaders: String =
    "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n"
    + "Content-Security-Policy: default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n"

  /// The bytes on the wire; `head` leaves the body out (HEAD requests).
  public func encoded(keepAlive: Bool, head: Bool = false) -> [UInt8] {
    var s = "HTTP/1.1 \(status) \(Self.reason(status))\r\n"
    for (k, v) in headers { s += "\(k): \(v)\r\n" }
    s += "Content-Length: \(body.count)\r\n"
    s += Self.securityHeaders
    s += keepAlive && !close ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"
    var out = Array(s.utf8)
    if !head { out.append(contentsOf: body) }
    return out
  }
}
