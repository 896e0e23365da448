import Posix

/// One browser or script connection: a request parser on the way in, a byte queue on the way
/// out. A connection is either answering requests (keep-alive, one at a time, in order) or, after
/// `GET /api/events`, a Server-Sent Events stream that only receives.
final class WebConnection {
  let id: UInt64
  let fd: FileDescriptor
  var parser = HTTPRequestParser()
  private var out: [UInt8] = []
  private var outStart = 0
  /// Set once the connection became an event stream.
  var stream: StreamFilter?
  /// Set when that stream follows a task list (`GET /api/tasks?…&follow=1`).
  var list: ListFollow?
  /// A control-socket request is being answered for it; later requests wait.
  var waiting = false
  /// The request being answered is a HEAD: an answer that arrives later (from the daemon or
  /// another node) goes without its body too.
  var head = false
  var closeAfterFlush = false
  var closed = false
  var lastActivityMs: Int64
  /// When the first byte of a request not yet complete arrived (slow-client timeout).
  var partialSinceMs: Int64?
  /// When output last could not all be written and is still waiting (stuck-reader timeout).
  var blockedSinceMs: Int64?
  var watchingOutput = false

  init(id: UInt64, fd: FileDescriptor, now: Int64) {
    self.id = id
    self.fd = fd
    lastActivityMs = now
  }

  var pendingOutput: Int { out.count - outStart }
  /// Idle: no request in progress, nothing waiting, not a stream (first to go when full).
  var isIdle: Bool { stream == nil && !waiting && pendingOutput == 0 && parser.buffered == 0 }

  func queue(_ bytes: [UInt8]) {
    if outStart == out.count {
      out.removeAll(keepingCapacity: true)
      outStart = 0
    }
    out.append(contentsOf: bytes)
  }

  /// Writes as much as the socket takes. Returns false when the connection failed.
  func flush(now: Int64) -> Bool {
    while outStart < out.count {
      var failure: PosixError?
      let start = outStart
      let n = out.withUnsafeBytes { p -> Int in
        do throws(PosixError) { return try fd.write(UnsafeRawBufferPointer(rebasing: p[start...])) } catch {
          failure = error
          return -1
        }
      }
      if let failure {
        if failure.isWouldBlock {
          if blockedSinceMs == nil { blockedSinceMs = now }
          return true
        }
        return false
      }
      if n <= 0 { return false }
      outStart += n
      lastActivityMs = now
    }
    blockedSinceMs = nil
    if outStart > 0 {
      out.removeAll(keepingCapacity: out.capacity <= 256 << 10)
      outStart = 0
    }
    return true
  }
}

/// What an event stream asked for.
struct StreamFilter: Hashable {
  /// Log events to send (false: only status and series).
  var events = true
  /// Event types: exact names, and prefixes ending in "." (`task.`); both empty: all. Sets, so
  /// a match costs a lookup per dot of the event's type, however long the list.
  var exactTypes: Set<String> = []
  var typePrefixes: Set<String> = []
  var task: Int?
  /// Status snapshots and chart series.
  var status = false
  /// All events of one poll in one `logs` message (a JSON array), instead of one `log` each.
  var batch = false
  /// At most this many events per message, the newest (nil: all); an `event: skipped` message
  /// before them says how many of that tick's events were left out. A page that shows the newest
  /// 100 asks for 100: at thousands of events a second, the rest would be sent, parsed and dropped.
  var newest: Int?

  /// The most entries a `type` list may have: the pages send a few; a filter is hashed per
  /// stream on every tick, so an unbounded one would cost that often.
  static let maxTypes = 64

  /// Takes a `type` parameter: names and prefixes separated by commas (empty entries skipped).
  /// More than `maxTypes` entries is refused (400) naming the limit.
  mutating func setTypes(_ text: String) throws(HTTPRequestParser.Failure) {
    let list = text.split(separator: ",")
    if list.count > Self.maxTypes {
      throw HTTPRequestParser.Failure(
        status: 400,
        message:
          "type: \(list.count) event types given; at most \(Self.maxTypes) are accepted (a prefix such as task. matches every task event)"
      )
    }
    for t in list {
      if t.hasSuffix(".") { typePrefixes.insert(String(t)) } else { exactTypes.insert(String(t)) }
    }
  }

  func matches(type: String, task n: Int?) -> Bool {
    guard events else { return false }
    if let task, n != task { return false }
    if exactTypes.isEmpty && typePrefixes.isEmpty { return true }
    if exactTypes.contains(type) { return true }
    if typePrefixes.isEmpty { return false }
    // `type` starts with a prefix ending in "." exactly when the prefix is `type` up to one of its dots.
    var i = type.startIndex
    while let dot = type[i...].firstIndex(of: ".") {
      if typePrefixes.contains(String(type[...dot])) { return true }
      i = type.index(after: dot)
    }
    return false
  }
}
