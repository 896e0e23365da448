internal import CShim
internal import Glibc

/// A raw file descriptor. The owner closes it explicitly; every method is one system call
/// (plus the EINTR retry).
public struct FileDescriptor: Hashable, Sendable {
  public let raw: Int32
  public init(raw: Int32) { self.raw = raw }

  public static let standardInput = FileDescriptor(raw: 0)
  public static let standardOutput = FileDescriptor(raw: 1)
  public static let standardError = FileDescriptor(raw: 2)

  public struct OpenFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let readOnly = OpenFlags([])
    public static let writeOnly = OpenFlags(rawValue: O_WRONLY)
    public static let readWrite = OpenFlags(rawValue: O_RDWR)
    public static let create = OpenFlags(rawValue: O_CREAT)
    public static let truncate = OpenFlags(rawValue: O_TRUNC)
    public static let append = OpenFlags(rawValue: O_APPEND)
    public static let exclusive = OpenFlags(rawValue: O_EXCL)
    public static let nonBlocking = OpenFlags(rawValue: O_NONBLOCK)
    public static let directory = OpenFlags(rawValue: O_DIRECTORY)
  }

  /// open(2), always with O_CLOEXEC.
  public static func open(
    _ path: String, _ flags: OpenFlags, mode: UInt32 = 0o600
  ) throws(PosixError)
    -> FileDescriptor
  {
    let fd = try retryOnInterrupt("open", path: path) {
      Glibc.open(path, flags.rawValue | O_CLOEXEC, mode_t(mode))
    }
    return FileDescriptor(raw: fd)
  }

  /// close(2). Errors are ignored: after close the descriptor is gone either way.
  public func close() { _ = Glibc.close(raw) }

  /// read(2) into `buffer`; returns the count (0 at end of file).
  public func read(into buffer: UnsafeMutableRawBufferPointer) throws(PosixError) -> Int {
    try retryOnInterrupt("read") { Glibc.read(raw, buffer.baseAddress, buffer.count) }
  }

  /// Appends up to `max` bytes to `bytes`; returns the count read (0 at end of file).
  @discardableResult
  public func read(appendingTo bytes: inout [UInt8], max: Int = 65536) throws(PosixError) -> Int {
    var failure: Int32 = 0
    let chunk = [UInt8](unsafeUninitializedCapacity: max) { buf, count in
      while true {
        let n = Glibc.read(raw, buf.baseAddress, max)
        if n >= 0 {
          count = n
          return
        }
        if errno == EINTR { continue }
        failure = errno
        count = 0
        return
      }
    }
    if failure != 0 { throw PosixError("read", code: failure) }
    if bytes.isEmpty { bytes = chunk } else { bytes.append(contentsOf: chunk) }
    return chunk.count
  }

  /// write(2) once; returns how much was written.
  public func write(_ buffer: UnsafeRawBufferPointer) throws(PosixError) -> Int {
    try retryOnInterrupt("write") { Glibc.write(raw, buffer.baseAddress, buffer.count) }
  }

  /// write(2) once from `bytes`; returns how much was written (may be short).
  public func writeSome(_ bytes: [UInt8]) throws(PosixError) -> Int {
    var n = 0
    var failure: PosixError?
    bytes.withUnsafeBytes { p in
      do throws(PosixError) { n = try write(p) } catch { failure = error }
    }
    if let failure { throw failure }
    return n
  }

  /// Writes all of `bytes`, looping on short writes (blocking descriptors only).
  public func writeAll(_ bytes: [UInt8]) throws(PosixError) {
    var failure: PosixError?
    bytes.withUnsafeBytes { p in
      var off = 0
      while off < p.count {
        do throws(PosixError) {
          off += try write(UnsafeRawBufferPointer(rebasing: p[off...]))
        } catch {
          failure = error
          return
        }
      }
    }
    if let failure { throw failure }
  }

  public func writeAll(_ s: String) throws(PosixError) { try writeAll(Array(s.utf8)) }

  /// fsync(2)
  public func fsync() throws(PosixError) { _ = try retryOnInterrupt("fsync") { Glibc.fsync(raw) } }
  /// fdatasync(2)
  public func fdatasync() throws(PosixError) {
    _ = try retryOnInterrupt("fdatasync") { Glibc.fdatasync(raw) }
  }
  /// ftruncate(2)
  public func truncate(to size: Int) throws(PosixError) {
    _ = try retryOnInterrupt("ftruncate") { Glibc.ftruncate(raw, off_t(size)) }
  }
  /// lseek(2) to the end; returns the size.
  public func seekToEnd() throws(PosixError) -> Int {
    Int(try retryOnInterrupt("lseek") { Glibc.lseek(raw, 0, SEEK_END) })
  }
  /// lseek(2) to an absolute offset.
  public func seek(to offset: Int) throws(PosixError) {
    _ = try retryOnInterrupt("lseek") { Glibc.lseek(raw, off_t(offset), SEEK_SET) }
  }
  /// fstat(2) size.
  public func size() throws(PosixError) -> Int {
    Int(try retryOnInterrupt("fstat") { cshim_fstat_size(raw) })
  }
  /// fstat(2)
  public func status() throws(PosixError) -> FileStatus {
    var st = cshim_file_status()
    _ = try retryOnInterrupt("fstat") { cshim_fstat(raw, &st) }
    return FileStatus(st)
  }

  /// posix_fallocate(3): allocates the blocks of [offset, offset + length), growing the file when
  /// that range ends past its size. Afterwards writes there (also through a shared mapping) need no
  /// new space, so a full file system cannot fail them (through a mapping that would be SIGBUS).
  public func allocate(offset: Int = 0, length: Int) throws(PosixError) {
    _ = try retryOnInterrupt("posix_fallocate") { cshim_posix_fallocate(raw, Int64(offset), Int64(length)) }
  }

  /// fallocate(2) with FALLOC_FL_KEEP_SIZE: sets `bytes` of space aside past the current end
  /// without changing the size, so that many bytes can still be appended on a full file system.
  /// Fails with EOPNOTSUPP where the file system cannot do it (callers treat it as best effort).
  public func reserveBeyondEnd(_ bytes: Int) throws(PosixError) {
    let end = try size()
    _ = try retryOnInterrupt("fallocate") { cshim_fallocate_keep_size(raw, Int64(end), Int64(bytes)) }
  }

  /// pread(2) into `buffer` from `offset`; returns the count (0 at end of file).
  public func read(at offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(PosixError) -> Int {
    try retryOnInterrupt("pread") { Glibc.pread(raw, buffer.baseAddress, buffer.count, off_t(offset)) }
  }

  /// pwrite(2) of all of `bytes` at `offset` (retried until written; the file offset is unchanged).
  public func writeAll(_ bytes: [UInt8], at offset: Int) throws(PosixError) {
    var done = 0
    while done < bytes.count {
      let r = bytes.withUnsafeBytes { p in
        Result { () throws(PosixError) in
          try retryOnInterrupt("pwrite") { Glibc.pwrite(raw, p.baseAddress! + done, p.count - done, off_t(offset + done)) }
        }
      }
      done += try r.get()
    }
  }

  /// Up to `count` bytes from `offset` (pread(2) until that many or the end of the file).
  public func read(count: Int, at offset: Int) throws(PosixError) -> [UInt8] {
    var failure: PosixError? = nil
    let out = [UInt8](unsafeUninitializedCapacity: max(0, count)) { buf, initialized in
      var got = 0
      while got < buf.count {
        let n = Glibc.pread(raw, buf.baseAddress! + got, buf.count - got, off_t(offset + got))
        if n > 0 {
          got += n
        } else if n == 0 {
          break
        } else if errno != EINTR {
          failure = PosixError("pread")
          break
        }
      }
      initialized = got
    }
    if let failure { throw failure }
    return out
  }

  /// The bytes from `offset` to the end of the file (pread(2) until it returns 0), read straight
  /// into one buffer of the file's size.
  public func readToEnd(from offset: Int) throws(PosixError) -> [UInt8] {
    var out = try read(count: max(0, try size() - offset), at: offset)
    // The file may have grown since its size was taken.
    while true {
      let more = try read(count: 1 << 16, at: offset + out.count)
      if more.isEmpty { return out }
      out.append(contentsOf: more)
    }
  }

  public func setNonBlocking(_ on: Bool) throws(PosixError) {
    _ = try retryOnInterrupt("fcntl") { cshim_set_nonblock(raw, on ? 1 : 0) }
  }
  public func setCloseOnExec(_ on: Bool) throws(PosixError) {
    _ = try retryOnInterrupt("fcntl") { cshim_set_cloexec(raw, on ? 1 : 0) }
  }

  /// dup(2) with O_CLOEXEC.
  public func duplicate() throws(PosixError) -> FileDescriptor {
    FileDescriptor(raw: try retryOnInterrupt("fcntl") { Glibc.fcntl(raw, F_DUPFD_CLOEXEC, 3) })
  }

  /// flock(2) exclusive, non-blocking; returns false when another process holds it.
  public func tryLockExclusive() throws(PosixError) -> Bool {
    let r = cshim_flock_try(raw)
    if r < 0 { throw PosixError("flock") }
    return r == 1
  }

  /// poll(2) on this one descriptor for input; returns true when readable (or hung up).
  public func waitReadable(timeoutMs: Int32) -> Bool { poll(Int16(POLLIN), timeoutMs) }

  /// poll(2) on this one descriptor for output space.
  public func waitWritable(timeoutMs: Int32) -> Bool { poll(Int16(POLLOUT), timeoutMs) }

  /// poll(2) on several descriptors for input: which of them are readable (all false on timeout).
  public static func waitReadable(_ fds: [Int32], timeoutMs: Int32) -> [Bool] {
    var p = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    while true {
      let r = Glibc.poll(&p, nfds_t(p.count), timeoutMs)
      if r < 0 && errno == EINTR { continue }
      return p.map { r > 0 && $0.revents != 0 }
    }
  }

  private func poll(_ events: Int16, _ timeoutMs: Int32) -> Bool {
    var p = pollfd(fd: raw, events: events, revents: 0)
    while true {
      let r = Glibc.poll(&p, 1, timeoutMs)
      if r < 0 && errno == EINTR { continue }
      return r > 0
    }
  }

  /// poll(2) asking for nothing: true when this is an output whose reader has gone (a pipe or
  /// socket with its other end closed: POLLERR or POLLHUP), as tail(1) checks before following on.
  /// False for files and terminals.
  public var peerClosed: Bool {
    var p = pollfd(fd: raw, events: 0, revents: 0)
    while true {
      let r = Glibc.poll(&p, 1, 0)
      if r < 0 && errno == EINTR { continue }
      return r > 0 && (Int32(p.revents) & (POLLERR | POLLHUP)) != 0
    }
  }

  public var isTerminal: Bool { Glibc.isatty(raw) == 1 }
}

/// pipe2(2) with O_CLOEXEC (and O_NONBLOCK when asked): (read end, write end).
public func makePipe(
  nonBlocking: Bool = false
) throws(PosixError) -> (
  read: FileDescriptor, write: FileDescriptor
) {
  var fds: [Int32] = [0, 0]
  _ = try retryOnInterrupt("pipe2") { cshim_pipe(&fds, nonBlocking ? 1 : 0) }
  return (FileDescriptor(raw: fds[0]), FileDescriptor(raw: fds[1]))
}
