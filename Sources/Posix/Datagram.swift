internal import CShim
internal import Glibc

/// Unix domain datagram sockets: what sd_notify(3) speaks. A name starting with `@` is in the
/// abstract namespace, as systemd's `$NOTIFY_SOCKET` may be.
public enum Datagram {
  /// socket + bind(2) to `name`, for receiving (tests play systemd with it).
  public static func bind(_ name: String) throws(PosixError) -> FileDescriptor {
    FileDescriptor(raw: try retryOnInterrupt("bind", path: name) { cshim_dgram_bind(name) })
  }

  /// sendto(2) of one datagram to `name` from a fresh socket (a few calls per message; the
  /// daemon sends a handful a minute). Never blocks: when the receiver's queue is full the
  /// message is dropped and EAGAIN thrown.
  public static func send(_ message: String, to name: String) throws(PosixError) {
    let bytes = Array(message.utf8)
    let sent = bytes.withUnsafeBytes { b in cshim_dgram_send(name, b.baseAddress, UInt(b.count)) }
    if sent < 0 { throw PosixError("sendto", path: name) }
  }
}

extension Environment {
  /// unsetenv(3): children spawned later do not inherit `name`.
  public static func unset(_ name: String) { _ = Glibc.unsetenv(name) }
}
