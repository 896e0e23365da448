import CortexCore
import Posix
import Synchronization

/// Cluster mode: reads the other nodes' web views over HTTP (docs/web.md, "Cluster mode"), off
/// the web thread. Each peer node has its own lane (one thread, started at its first request),
/// so a node that does not answer delays only the requests to it, each by at most the connect
/// and answer timeouts; the web thread hands in jobs and collects answers through `wakeFD` in
/// its epoll, and never blocks on a peer.
final class PeerFetcher: Sendable {
  struct Job: Sendable {
    var ticket: UInt64
    /// The peer's published address, `http://IPv4:PORT/`.
    var url: String
    /// Its read-only peer token.
    var token: String
    /// Path and query to GET.
    var path: String
  }

  struct Answer: Sendable {
    var ticket: UInt64
    /// The HTTP status, 0 when there was no answer.
    var status: Int
    var body: [UInt8]
    /// Why there is no answer (connection refused, timed out, …).
    var error: String?
  }

  final class Lane: Sendable {
    let jobs = Mutex<[Job]>([])
    let kickRead: FileDescriptor
    let kickWrite: FileDescriptor
    init() throws(PosixError) { (kickRead, kickWrite) = try makePipe(nonBlocking: true) }
  }

  let lanes = Mutex<[String: Lane]>([:])
  let answers = Mutex<[Answer]>([])
  /// Readable when answers wait in `take()`.
  let wakeFD: FileDescriptor
  let wakeWrite: FileDescriptor

  static let connectTimeoutMs: Int32 = 1000
  static let answerTimeoutMs: Int64 = 3000
  /// An answer larger than this is cut off and reported as an error.
  static let maxAnswerBytes = 4 << 20
  /// Jobs waiting in one lane, at most: past that a new one is answered at once as refused.
  static let maxQueued = 16

  init() throws(PosixError) { (wakeFD, wakeWrite) = try makePipe(nonBlocking: true) }

  /// Queues `job` on `node`'s lane; its answer comes back through `take()`.
  func fetch(node: String, _ job: Job) {
    let lane: Lane? = lanes.withLock { l in
      if let existing = l[node] { return existing }
      guard let lane = try? Lane() else { return nil }
      do throws(PosixError) {
        try startThread { [self] in
          nameThisThread("cortex-peer")
          run(lane)
        }
      } catch {
        return nil
      }
      l[node] = lane
      return lane
    }
    let queued = lane?.jobs.withLock { q in
      guard q.count < Self.maxQueued else { return false }
      q.append(job)
      return true
    }
    guard let lane, queued == true else {
      post(Answer(ticket: job.ticket, status: 0, body: [], error: "too many requests to node \(node) are waiting"))
      return
    }
    _ = try? lane.kickWrite.writeSome([1])
  }

  /// The answers since the last call.
  func take() -> [Answer] {
    var b: [UInt8] = []
    _ = try? wakeFD.read(appendingTo: &b, max: 256)
    return answers.withLock { a in
      let out = a
      a.removeAll()
      return out
    }
  }

  func post(_ a: Answer) {
    answers.withLock { $0.append(a) }
    _ = try? wakeWrite.writeSome([1])
  }

  /// A lane's thread: sleeps until a job arrives, answers jobs in order.
  func run(_ lane: Lane) {
    var b: [UInt8] = []
    while true {
      _ = lane.kickRead.waitReadable(timeoutMs: -1)
      b.removeAll(keepingCapacity: true)
      _ = try? lane.kickRead.read(appendingTo: &b, max: 256)
      while let job = lane.jobs.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
        post(Self.get(job))
      }
    }
  }

  /// One GET with `Connection: close`, bounded in time and size.
  static func get(_ job: Job) -> Answer {
    func failed(_ why: String) -> Answer { Answer(ticket: job.ticket, status: 0, body: [], error: why) }
    guard let (address, port) = parse(job.url) else { return failed("its published address \(job.url) is not http://IPv4:PORT/") }
    let fd: FileDescriptor
    do throws(PosixError) { fd = try TCPSocket.connect(address: address, port: port, timeoutMs: connectTimeoutMs) } catch {
      return failed("\(error)")
    }
    defer { fd.close() }
    let req = "GET \(job.path) HTTP/1.1\r\nHost: \(address):\(port)\r\nAuthorization: Bearer \(job.token)\r\nConnection: close\r\n\r\n"
    let deadline = Clock.monotonicMs() + answerTimeoutMs
    var out = Array(req.utf8)[...]
    while !out.isEmpty {
      guard fd.waitWritable(timeoutMs: Int32(max(1, deadline - Clock.monotonicMs()))), Clock.monotonicMs() < deadline else {
        return failed("it took no request within \(answerTimeoutMs) ms")
      }
      do throws(PosixError) { out = out.dropFirst(try fd.writeSome(Array(out))) } catch {
        if !error.isWouldBlock { return failed("\(error)") }
      }
    }
    var buf: [UInt8] = []
    while true {
      let left = deadline - Clock.monotonicMs()
      if left <= 0 { return failed("no answer within \(answerTimeoutMs) ms") }
      guard fd.waitReadable(timeoutMs: Int32(left)) else { continue }
      let n: Int
      do throws(PosixError) { n = try fd.read(appendingTo: &buf, max: 1 << 16) } catch {
        if error.isWouldBlock { continue }
        return failed("\(error)")
      }
      if n == 0 { break }
      if buf.count > maxAnswerBytes { return failed("its answer is larger than \(maxAnswerBytes) bytes") }
    }
    guard let end = ByteSearch.firstIndex(of: [13, 10, 13, 10], in: buf[...]) else { return failed("it sent no whole HTTP answer") }
    let head = String(decoding: buf[..<end], as: UTF8.self)
    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
    return Answer(ticket: job.ticket, status: status, body: Array(buf[(end + 4)...]), error: nil)
  }

  /// `http://A.B.C.D:PORT/…` → ("A.B.C.D", PORT); 0.0.0.0 (a server listening on every
  /// address) is reached at 127.0.0.1.
  static func parse(_ url: String) -> (String, Int)? {
    guard url.hasPrefix("http://") else { return nil }
    let rest = url.dropFirst(7).prefix { $0 != "/" }
    let parts = rest.split(separator: ":")
    guard parts.count == 2, let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
    let host = String(parts[0])
    return (host == "0.0.0.0" ? "127.0.0.1" : host, port)
  }
}
