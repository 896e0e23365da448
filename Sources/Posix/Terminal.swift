internal import CShim

/// termios(3): a terminal's mode, saved so it can be put back exactly.
public struct TerminalMode: Equatable, Sendable {
  let bytes: [UInt8]

  /// tcgetattr(3) of `fd`.
  public static func current(_ fd: FileDescriptor) throws(PosixError) -> TerminalMode {
    var b = [UInt8](repeating: 0, count: cshim_termios_size())
    _ = try retryOnInterrupt("tcgetattr") { b.withUnsafeMutableBytes { cshim_tty_get(fd.raw, $0.baseAddress) } }
    return TerminalMode(bytes: b)
  }

  /// Switches `fd` to input byte by byte without echo and without signal keys (Ctrl-C arrives as
  /// byte 3), output untouched; returns the previous mode for `restore`.
  public static func rawInput(_ fd: FileDescriptor) throws(PosixError) -> TerminalMode {
    let saved = try current(fd)
    _ = try retryOnInterrupt("tcsetattr") { cshim_tty_raw_input(fd.raw) }
    return saved
  }

  /// tcsetattr(3): puts this mode back on `fd`.
  public func restore(_ fd: FileDescriptor) {
    _ = bytes.withUnsafeBytes { cshim_tty_set(fd.raw, $0.baseAddress) }
  }

  /// Whether `fd` is in the mode `rawInput` sets (no ICANON, ECHO or ISIG).
  public static func isRawInput(_ fd: FileDescriptor) -> Bool { cshim_tty_is_raw_input(fd.raw) == 1 }

  /// ioctl(2) TIOCGWINSZ: the rows and columns of the terminal on `fd`; nil when `fd` is no
  /// terminal or its size is not set.
  public static func size(_ fd: FileDescriptor) -> (rows: Int, columns: Int)? {
    var rows: Int32 = 0
    var columns: Int32 = 0
    guard cshim_tty_size(fd.raw, &rows, &columns) == 0, rows > 0, columns > 0 else { return nil }
    return (Int(rows), Int(columns))
  }
}

/// posix_openpt(3): a pseudo-terminal pair, for driving a full-screen command in tests.
public enum PseudoTerminal {
  /// Returns the master's descriptor and the slave's path (open it to get the terminal side).
  public static func open() throws(PosixError) -> (master: FileDescriptor, slavePath: String) {
    var name = [CChar](repeating: 0, count: 128)
    let fd = try retryOnInterrupt("posix_openpt") { cshim_openpt(&name, name.count) }
    let path = name.withUnsafeBufferPointer { p in
      String(decoding: p.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    return (FileDescriptor(raw: fd), path)
  }
}

/// poll(2) on several descriptors for input.
public enum Poll {
  /// The index in `fds` (at most 8) of the first one readable (or hung up), nil after `timeoutMs`.
  public static func firstReadable(_ fds: [FileDescriptor], timeoutMs: Int32) -> Int? {
    let raw = fds.map(\.raw)
    let r = cshim_poll_readable(raw, Int32(raw.count), timeoutMs)
    return r >= 0 ? Int(r) : nil
  }
}
