import CortexCore
import Posix

/// One control-socket connection: newline-delimited JSON requests in, one JSON line per answer
/// out. It holds at most one unfinished request line (`requestLineLimit`), a bounded read of
/// complete ones, and answers the peer has not taken yet; the daemon stops reading it while
/// those pass `outboxLimit` (docs/security.md, "Limits per client").
final class ClientConnection {
  let id: ClientID
  let fd: FileDescriptor
  var lines: LineBuffer
  /// Accepted past `max_clients`, into the reserve: may only `ping` and `stop`.
  let reserved: Bool
  /// Close now: the peer is gone or a write failed.
  var closing = false
  /// The peer sent EOF: handle what it sent, flush the answers, then close.
  var inputEnded = false
  var closed = false
  /// Requests read whose answer has not been sent yet (a `wait`, `cancel` or `stop` may take long).
  var owed = 0
  /// When a request last arrived or the last owed answer was sent: idle time counts from here.
  var lastActivityMs: Int64
  /// Parts of a batch sent as several requests (`"more": true`), held until its last part.
  var heldSpecs: [TaskSpec] = []
  var heldBytes = 0
  /// Size of the request line being handled.
  var currentLineBytes = 0
  /// Input bytes as last added to the daemon's total (`Daemon.clientInputBytes`).
  var countedInput = 0
  /// Not read until the total of buffered input falls below its limit.
  var inputPaused = false
  /// Complete requests wait in `lines` (the per-iteration share was used up, or the outbox is full).
  var backlogged = false
  /// What epoll watches now, to skip needless epoll_ctl calls.
  var registered: Epoll.Events = .input
  private var outbox: [UInt8] = []
  private var outboxStart = 0

  /// Answers the peer has not read past this stop the reading of its requests.
  static let outboxLimit = 1 << 20
  /// Bytes read from one connection per wake-up (in 64 KiB reads).
  static let readBudget = 4 << 16

  init(id: ClientID, fd: FileDescriptor, maxLine: Int, reserved: Bool, now: Int64) {
    self.id = id
    self.fd = fd
    self.reserved = reserved
    lines = LineBuffer(maxLine: maxLine)
    lastActivityMs = now
  }

  /// Bytes of input this connection holds: unread lines, the unfinished one, batch parts.
  var inputBytes: Int { lines.bufferedCount + heldBytes }
  var unsentCount: Int { outbox.count - outboxStart }
  var wantsWritable: Bool { unsentCount > 0 }
  /// The peer has not read enough of its answers: read and handle nothing more from it.
  var outboxFull: Bool { unsentCount >= Self.outboxLimit }

  func send(_ v: JSON) {
    outbox.append(contentsOf: v.encodedBytes())
    outbox.append(10)
    flush()
  }

  /// Writes what the socket takes now; the rest waits for EPOLLOUT.
  func flush() {
    while outboxStart < outbox.count {
      var n = 0
      var failure: PosixError?
      outbox.withUnsafeBytes { p in
        do throws(PosixError) { n = try fd.write(UnsafeRawBufferPointer(rebasing: p[outboxStart...])) } catch { failure = error }
      }
      if let error = failure {
        if !error.isWouldBlock {
          outbox = []
          outboxStart = 0
          closing = true
        }
        break
      }
      outboxStart += n
    }
    if outboxStart == outbox.count {
      if outbox.capacity > 1 << 16 { outbox = [] } else { outbox.removeAll(keepingCapacity: true) }
      outboxStart = 0
    } else if outboxStart >= 1 << 16 && outboxStart * 2 >= outbox.count {
      outbox.removeFirst(outboxStart)
      outboxStart = 0
    }
  }

  enum ReadResult { case open, closed, paused }

  /// Reads up to `readBudget` bytes. Before each read, `mayGrow` says whether the daemon's total
  /// still has room; when it has not, an unfinished request is dropped (and answered in its place),
  /// and a connection with nothing unfinished is paused instead.
  func read(mayGrow: () -> Bool) -> ReadResult {
    var budget = Self.readBudget
    var chunk: [UInt8] = []
    while budget > 0 {
      if !mayGrow() && !lines.skipping {
        if lines.partialCount > 0 {
          lines.dropPartial()
        } else if heldSpecs.isEmpty {
          return .paused
        }
      }
      chunk.removeAll(keepingCapacity: true)
      do throws(PosixError) {
        let n = try fd.read(appendingTo: &chunk, max: 1 << 16)
        if n == 0 { return .closed }
        lines.append(chunk)
        budget -= n
      } catch {
        return error.isWouldBlock ? .open : .closed
      }
    }
    return .open
  }

  /// Forgets a held batch (refused, or the connection is going).
  func dropHeldBatch() {
    heldSpecs = []
    heldBytes = 0
  }
}
