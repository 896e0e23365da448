import CortexCore
import Posix

/// One request to the daemon's control socket on behalf of an HTTP request, answered without
/// blocking the web thread: the answer arrives through the web epoll and then completes the
/// HTTP response. The daemon handles it exactly like a CLI request (same decoding, same logged
/// decisions). A request of the web view's own (a followed cluster list's `list`) has no
/// connection: its `finish` is called with the answer and returns nil.
final class ControlRequest {
  let id: UInt64
  let fd: FileDescriptor
  let connection: UInt64?
  let keepAlive: Bool
  let startedMs: Int64
  /// The response to the daemon's answer; nil when it started something else that will answer
  /// the connection itself (a read from another node).
  let finish: (JSON?) -> HTTPResponse?
  var lines = LineBuffer(maxLine: 64 << 20)
  static let timeoutMs: Int64 = 60_000

  init(id: UInt64, fd: FileDescriptor, connection: UInt64?, keepAlive: Bool, now: Int64, finish: @escaping (JSON?) -> HTTPResponse?) {
    self.id = id
    self.fd = fd
    self.connection = connection
    self.keepAlive = keepAlive
    startedMs = now
    self.finish = finish
  }
}

extension WebServer {
  /// Sends `request` to the daemon; `finish` turns its answer (nil: no answer) into the response.
  func control(_ request: JSON, for c: WebConnection, keepAlive: Bool, now t: Int64, finish: @escaping (JSON?) -> HTTPResponse?) {
    let fd: FileDescriptor
    do throws(PosixError) { fd = try sendToDaemon(request) } catch {
      respond(c, .error(503, "the daemon's control socket is not answering: \(error)"), keepAlive: keepAlive, head: c.head, now: t)
      return
    }
    let id = nextID
    nextID += 1
    let r = ControlRequest(id: id, fd: fd, connection: c.id, keepAlive: keepAlive, now: t, finish: finish)
    do throws(PosixError) { try epoll.add(fd, .input, token: id) } catch {
      fd.close()
      respond(c, .error(503, "cannot watch the control socket: \(error)"), keepAlive: keepAlive, head: c.head, now: t)
      return
    }
    controls[id] = r
    c.waiting = true
  }

  /// Sends `request` to the daemon for the web view itself (no HTTP request waits for it): `then`
  /// gets the answer, nil when there is none (the socket refused, or no answer within the timeout).
  func controlQuery(_ request: JSON, now t: Int64, then: @escaping (JSON?) -> Void) {
    let fd: FileDescriptor
    do throws(PosixError) { fd = try sendToDaemon(request) } catch { return then(nil) }
    let id = nextID
    nextID += 1
    do throws(PosixError) { try epoll.add(fd, .input, token: id) } catch {
      fd.close()
      return then(nil)
    }
    controls[id] = ControlRequest(id: id, fd: fd, connection: nil, keepAlive: false, now: t) { answer in
      then(answer)
      return nil
    }
  }

  /// Connects to the daemon's control socket and writes `request` as one line; the socket is
  /// non-blocking for the answer, read from the web epoll.
  private func sendToDaemon(_ request: JSON) throws(PosixError) -> FileDescriptor {
    let fd = try UnixSocket.connect(path: paths.socket)
    do throws(PosixError) {
      try fd.setNonBlocking(true)
      var line = request.encodedBytes()
      line.append(10)
      try fd.writeAll(line)
    } catch {
      fd.close()
      throw error
    }
    return fd
  }

  func controlReadable(_ r: ControlRequest, now t: Int64) {
    var buf: [UInt8] = []
    while true {
      let n: Int
      do throws(PosixError) { n = try r.fd.read(appendingTo: &buf, max: 1 << 20) } catch {
        if error.isWouldBlock { break }
        finishControl(r, answer: nil, now: t)
        return
      }
      if n == 0 {
        r.lines.append(buf)
        if case .line(let l) = r.lines.next() {
          finishControl(r, answer: try? JSON.parse(l), now: t)
        } else {
          finishControl(r, answer: nil, now: t)
        }
        return
      }
    }
    r.lines.append(buf)
    if case .line(let l) = r.lines.next() { finishControl(r, answer: try? JSON.parse(l), now: t) }
  }

  func finishControl(_ r: ControlRequest, answer: JSON?, now t: Int64) {
    guard controls.removeValue(forKey: r.id) != nil else { return }
    epoll.remove(r.fd)
    r.fd.close()
    guard let cid = r.connection else {
      _ = r.finish(answer)
      return
    }
    guard let c = connections[cid], let response = r.finish(answer) else { return }
    c.waiting = false
    respond(c, response, keepAlive: r.keepAlive, head: c.head, now: t)
    processRequests(c, now: t)
  }
}

/// Reads `hot-state.mmap` (the same consistent view `cortex status` prints) with pread(2): the
/// header, then only the table entries in use (`HotState.usedRegions`).
///
/// The attempts are bounded in time, not in number: a write holds the seqlock odd for as long as
/// it takes (with a long queue, 10–20 ms in a debug build, where the daemon writes 50 times a
/// second), and a round of 200 attempts that each find it odd is over in well under a
/// millisecond. Five such rounds back to back failed whenever they started inside a write, which
/// was most of the time: `/api/status` answered 503 and the overview stood still. Between rounds
/// the thread now sleeps 1 ms, for at most `patienceMs` in all (the writer is the daemon's loop,
/// in this same process, so a write always ends). The writer now holds the seqlock odd only while
/// it copies a state composed aside (`HotState.Writer`): composed in place, back-to-back writes
/// of a long queue on a loaded machine left it odd for most of those 100 ms, and 503s came again.
struct HotStateReader {
  let path: String
  static let patienceMs: Int64 = 100
  func read() -> HotState.View? {
    guard let fd = try? FileDescriptor.open(path, .readOnly) else { return nil }
    defer { fd.close() }
    let deadline = Clock.monotonicMs() + Self.patienceMs
    while true {
      if let v = readOnce(fd) { return v }
      if Clock.monotonicMs() >= deadline { return nil }
      sleepMs(1)
    }
  }

  private func readOnce(_ fd: FileDescriptor) -> HotState.View? {
    let r = try? HotState.readConsistent(size: HotState.fileSize) { (off, b) throws(PosixError) in try fd.read(at: off, into: b) }
    if case .success(let v) = r { return v }
    return nil
  }
}
