internal import CShim
internal import Glibc

/// epoll(7): one instance; each registration carries a 64-bit token chosen by the caller.
public struct Epoll: ~Copyable {
  public let fd: FileDescriptor

  public struct Events: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let input = Events(rawValue: CSHIM_EPOLLIN)
    public static let output = Events(rawValue: CSHIM_EPOLLOUT)
    public static let hangup = Events(rawValue: CSHIM_EPOLLHUP)
    public static let error = Events(rawValue: CSHIM_EPOLLERR)
  }

  public init() throws(PosixError) {
    fd = FileDescriptor(raw: try retryOnInterrupt("epoll_create1") { cshim_epoll_create() })
  }
  deinit { fd.close() }

  public func add(_ target: FileDescriptor, _ events: Events, token: UInt64) throws(PosixError) {
    _ = try retryOnInterrupt("epoll_ctl") { cshim_epoll_add(fd.raw, target.raw, events.rawValue, token) }
  }
  public func modify(_ target: FileDescriptor, _ events: Events, token: UInt64) throws(PosixError) {
    _ = try retryOnInterrupt("epoll_ctl") { cshim_epoll_mod(fd.raw, target.raw, events.rawValue, token) }
  }
  public func remove(_ target: FileDescriptor) { _ = cshim_epoll_del(fd.raw, target.raw) }

  /// epoll_wait(2); `timeoutMs` -1 waits forever. Returns (token, events) pairs.
  public func wait(timeoutMs: Int32, into out: inout [(token: UInt64, events: Events)]) {
    out.removeAll(keepingCapacity: true)
    var tokens = [UInt64](repeating: 0, count: 256)
    var evs = [UInt32](repeating: 0, count: 256)
    let n = cshim_epoll_wait(fd.raw, &tokens, &evs, 256, timeoutMs)
    if n <= 0 { return }
    for i in 0..<Int(n) { out.append((tokens[i], Events(rawValue: evs[i]))) }
  }
}

/// Unix domain stream sockets.
public enum UnixSocket {
  /// socket + bind + listen, non-blocking, created mode 0600.
  public static func listen(path: String, backlog: Int32 = 512) throws(PosixError) -> FileDescriptor {
    FileDescriptor(raw: try retryOnInterrupt("bind", path: path) { cshim_unix_listen(path, backlog) })
  }
  /// socket + connect (blocking).
  public static func connect(path: String) throws(PosixError) -> FileDescriptor {
    FileDescriptor(raw: try retryOnInterrupt("connect", path: path) { cshim_unix_connect(path) })
  }
  /// shutdown(2) of the sending side: the peer reads end of input, and can still answer.
  public static func shutdownWrite(_ fd: FileDescriptor) { _ = Glibc.shutdown(fd.raw, Int32(SHUT_WR)) }
  /// accept4(2), non-blocking; nil when no connection is pending.
  public static func accept(_ listener: FileDescriptor) -> FileDescriptor? {
    let c = cshim_accept(listener.raw)
    return c >= 0 ? FileDescriptor(raw: c) : nil
  }
}

/// Clocks.
public enum Clock {
  /// CLOCK_REALTIME in milliseconds since the epoch (for timestamps).
  public static func wallMs() -> Int64 { cshim_realtime_ms() }
  /// CLOCK_MONOTONIC in nanoseconds (for intervals and deadlines).
  public static func monotonicNs() -> Int64 { cshim_monotonic_ns() }
  /// CLOCK_MONOTONIC in milliseconds.
  public static func monotonicMs() -> Int64 { cshim_monotonic_ns() / 1_000_000 }
  /// CLOCK_THREAD_CPUTIME_ID in nanoseconds: CPU time the calling thread has used (what a step
  /// costs, whatever else the machine is doing).
  public static func threadCPUNs() -> Int64 {
    var ts = timespec()
    _ = clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
  }
}
