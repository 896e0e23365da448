import CortexCore
import Posix
import XCTest

/// A bare HTTP client over a TCP socket, for tests that must send what no well-behaved client
/// would (malformed requests, huge headers) and see exactly what comes back.
struct RawHTTP {
  struct Answer {
    var status: Int
    var head: String
    var body: String
    /// The server closed the connection after answering.
    var closed: Bool
  }

  let port: Int

  /// Sends `raw`, reads one answer (by Content-Length), waiting at most `timeoutMs`.
  func send(_ raw: [UInt8], timeoutMs: Int32 = 5000) throws -> Answer {
    let fd = try TCPSocket.connect(address: "127.0.0.1", port: port)
    defer { fd.close() }
    try? fd.writeAll(raw)  // the server may close before it read everything
    return try Self.read(fd, timeoutMs: timeoutMs)
  }

  func send(_ raw: String, timeoutMs: Int32 = 5000) throws -> Answer { try send(Array(raw.utf8), timeoutMs: timeoutMs) }

  func get(_ path: String, headers: [String] = [], timeoutMs: Int32 = 5000) throws -> Answer {
    try send(
      "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n",
      timeoutMs: timeoutMs)
  }

  func post(_ path: String, body: String, headers: [String]) throws -> Answer {
    try send(
      "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        + headers.map { $0 + "\r\n" }.joined() + "\r\n" + body)
  }

  static func read(_ fd: FileDescriptor, timeoutMs: Int32) throws -> Answer {
    var buf: [UInt8] = []
    let deadline = Clock.monotonicMs() + Int64(timeoutMs)
    var closed = false
    while true {
      if let a = parse(buf, closed: closed) { return a }
      if closed { throw HarnessError(message: "connection closed before a whole answer: \(String(decoding: buf, as: UTF8.self))") }
      let left = deadline - Clock.monotonicMs()
      if left <= 0 {
        throw HarnessError(message: "no whole answer within \(timeoutMs) ms: \(String(decoding: buf.prefix(300), as: UTF8.self))")
      }
      guard fd.waitReadable(timeoutMs: Int32(left)) else { continue }
      let n = (try? fd.read(appendingTo: &buf, max: 1 << 16)) ?? 0
      if n == 0 { closed = true }
    }
  }

  static func parse(_ buf: [UInt8], closed: Bool) -> Answer? {
    let s = String(decoding: buf, as: UTF8.self)
    guard let end = s.range(of: "\r\n\r\n") else { return nil }
    let head = String(s[..<end.lowerBound])
    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
    var length = 0
    for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
      length = Int(line.dropFirst(15).trimmingCharacters()) ?? 0
    }
    let bodyBytes = Array(s[end.upperBound...].utf8)
    guard bodyBytes.count >= length else { return nil }
    return Answer(
      status: status, head: head, body: String(decoding: bodyBytes.prefix(length), as: UTF8.self),
      closed: closed || head.lowercased().contains("connection: close"))
  }
}

extension Substring {
  fileprivate func trimmingCharacters() -> String { String(self).trimmed }
}

extension Cortex {
  var webPort: Int? {
    guard let b = (try? FileSystem.read(root + "/web.url")) ?? nil else { return nil }
    let s = String(decoding: b, as: UTF8.self).trimmed
    return s.split(separator: ":").last.flatMap { Int($0.filter(\.isNumber)) }
  }

  var webToken: String { String(decoding: ((try? FileSystem.read(root + "/web.token")) ?? nil) ?? [], as: UTF8.self).trimmed }

  /// Runs a program to completion (bounded); returns its exit code and combined output.
  func runProgram(_ argv: [String], timeoutS: Int64) throws -> (Int32, String) {
    let outPath = scratch + "/program-\(Clock.monotonicNs())"
    let o = try FileDescriptor.open(outPath, [.writeOnly, .create, .truncate])
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"]
    let pid = try Processes.spawn(argv, environment: env, stdin: nil, stdout: o, stderr: o, newProcessGroup: true)
    o.close()
    let deadline = Clock.monotonicMs() + timeoutS * 1000
    var status: ExitStatus?
    while status == nil {
      if let (_, s) = Processes.reap(pid) {
        status = s
        break
      }
      if Clock.monotonicMs() > deadline {
        _ = Processes.signalGroup(pid, Signal.kill)
        _ = Processes.wait(pid)
        let text = String(decoding: (try? FileSystem.read(outPath)) ?? nil ?? [], as: UTF8.self)
        throw HarnessError(message: "\(argv.joined(separator: " ")) did not finish within \(timeoutS) s; output:\n\(text)")
      }
      sleepMs(20)
    }
    // Anything it left in its group (a browser) goes too.
    _ = Processes.signalGroup(pid, Signal.kill)
    let text = String(decoding: (try? FileSystem.read(outPath)) ?? nil ?? [], as: UTF8.self)
    if case .exited(let c) = status! { return (c, text) }
    return (-1, text)
  }
}
