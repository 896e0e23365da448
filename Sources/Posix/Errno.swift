internal import CShim
internal import Glibc

/// An errno value with the call that produced it. The only place that retries on EINTR is
/// `retryOnInterrupt`.
public struct PosixError: Error, CustomStringConvertible, Sendable, Equatable {
  public let code: Int32
  public let call: String
  public let path: String?

  public init(_ call: String, code: Int32, path: String? = nil) {
    self.code = code
    self.call = call
    self.path = path
  }

  /// An error from the calling thread's current errno.
  init(_ call: String, path: String? = nil) {
    self.init(call, code: cshim_errno(), path: path)
  }

  public var description: String {
    let msg = String(cString: strerror(code))
    if let path { return "\(call) \(path): \(msg)" }
    return "\(call): \(msg)"
  }

  public var isWouldBlock: Bool { code == EAGAIN || code == EWOULDBLOCK }
  public var isNotFound: Bool { code == ENOENT }
  public var isExists: Bool { code == EEXIST }
  public static let ENOENT_ = Glibc.ENOENT
  public static let ESRCH_ = Glibc.ESRCH
  public static let EPIPE_ = Glibc.EPIPE
  public static let EEXIST_ = Glibc.EEXIST
  public static let ENOSPC_ = Glibc.ENOSPC
  public static let EIO_ = Glibc.EIO
}

/// Runs `body` until it stops failing with EINTR; a result of -1 becomes a thrown `PosixError`.
@inline(__always)
func retryOnInterrupt<T: BinaryInteger>(
  _ call: String, path: String? = nil, _ body: () -> T
) throws(PosixError) -> T {
  while true {
    let r = body()
    if r != -1 { return r }
    let e = errno
    if e == EINTR { continue }
    throw PosixError(call, code: e, path: path)
  }
}
