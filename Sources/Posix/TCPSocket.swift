internal import Glibc

/// TCP/IPv4 stream sockets, for the web view (SPEC §12).
public enum TCPSocket {
  /// socket(2) + setsockopt(SO_REUSEADDR) + bind(2) + listen(2) on `address:port` (dotted IPv4;
  /// port 0 lets the kernel pick one), non-blocking and close-on-exec.
  public static func listen(address: String, port: Int, backlog: Int32 = 1024) throws(PosixError) -> FileDescriptor {
    var addr = try ipv4(address, port)
    let fd = try streamSocket(nonBlocking: true)
    var one: Int32 = 1
    _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    let bound = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if bound != 0 {
      let e = errno
      _ = Glibc.close(fd)
      throw PosixError("bind", code: e, path: "\(address):\(port)")
    }
    if Glibc.listen(fd, backlog) != 0 {
      let e = errno
      _ = Glibc.close(fd)
      throw PosixError("listen", code: e)
    }
    return FileDescriptor(raw: fd)
  }

  /// getsockname(2): the port a listening socket is bound to.
  public static func localPort(_ fd: FileDescriptor) -> Int {
    var addr = sockaddr_in()
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let r = withUnsafeMutablePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd.raw, $0, &len) }
    }
    return r == 0 ? Int(UInt16(bigEndian: addr.sin_port)) : 0
  }

  /// socket(2) + connect(2) to `address:port` (blocking); for tests and benchmarks.
  public static func connect(address: String, port: Int) throws(PosixError) -> FileDescriptor {
    var addr = try ipv4(address, port)
    let fd = try streamSocket(nonBlocking: false)
    let r = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if r != 0 {
      let e = errno
      _ = Glibc.close(fd)
      throw PosixError("connect", code: e, path: "\(address):\(port)")
    }
    return FileDescriptor(raw: fd)
  }
}

extension TCPSocket {
  /// socket(2) + connect(2) to `address:port` that gives up after `timeoutMs` (a host that does
  /// not answer costs no more than that): non-blocking connect, poll(2) for the outcome, then
  /// SO_ERROR. The descriptor it returns is non-blocking.
  public static func connect(address: String, port: Int, timeoutMs: Int32) throws(PosixError) -> FileDescriptor {
    var addr = try ipv4(address, port)
    let fd = try streamSocket(nonBlocking: true)
    let desc = FileDescriptor(raw: fd)
    let r = withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if r != 0 {
      let e = errno
      guard e == EINPROGRESS else {
        desc.close()
        throw PosixError("connect", code: e, path: "\(address):\(port)")
      }
      guard desc.waitWritable(timeoutMs: timeoutMs) else {
        desc.close()
        throw PosixError("connect", code: ETIMEDOUT, path: "\(address):\(port)")
      }
      var err: Int32 = 0
      var len = socklen_t(MemoryLayout<Int32>.size)
      _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
      if err != 0 {
        desc.close()
        throw PosixError("connect", code: err, path: "\(address):\(port)")
      }
    }
    return desc
  }
}

/// Random bytes from /dev/urandom.
public enum Random {
  public static func bytes(_ n: Int) throws(PosixError) -> [UInt8] {
    let fd = try FileDescriptor.open("/dev/urandom", .readOnly)
    defer { fd.close() }
    var b: [UInt8] = []
    while b.count < n {
      if try fd.read(appendingTo: &b, max: n - b.count) == 0 { throw PosixError("read", code: EIO, path: "/dev/urandom") }
    }
    return b
  }
}

extension TCPSocket {
  /// `address:port` (dotted IPv4) as a sockaddr_in.
  fileprivate static func ipv4(_ address: String, _ port: Int) throws(PosixError) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
    guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else {
      throw PosixError("inet_pton", code: EINVAL, path: address)
    }
    return addr
  }

  /// socket(2): a close-on-exec TCP/IPv4 stream socket.
  fileprivate static func streamSocket(nonBlocking: Bool) throws(PosixError) -> Int32 {
    let flags = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
    return try retryOnInterrupt("socket") { Glibc.socket(AF_INET, flags, 0) }
  }
}
