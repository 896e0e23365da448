internal import CShim
internal import Glibc

/// File-system calls on paths. Durable writes follow temp → fsync → rename → fsync(dir).
public enum FileSystem {
  /// mkdir(2); an existing directory is fine.
  public static func makeDirectory(_ path: String, mode: UInt32 = 0o700) throws(PosixError) {
    if Glibc.mkdir(path, mode_t(mode)) == 0 { return }
    let e = errno
    if e == EEXIST && isDirectory(path) { return }
    throw PosixError("mkdir", code: e, path: path)
  }

  /// mkdir -p
  public static func makeDirectories(_ path: String, mode: UInt32 = 0o700) throws(PosixError) {
    if isDirectory(path) { return }
    let parent = dirname(path)
    if parent != path && !parent.isEmpty { try makeDirectories(parent, mode: mode) }
    try makeDirectory(path, mode: mode)
  }

  /// chmod(2)
  public static func setMode(_ path: String, _ mode: UInt32) throws(PosixError) {
    _ = try retryOnInterrupt("chmod", path: path) { Glibc.chmod(path, mode_t(mode)) }
  }

  /// rename(2)
  public static func rename(_ from: String, _ to: String) throws(PosixError) {
    _ = try retryOnInterrupt("rename", path: from) { Glibc.rename(from, to) }
  }

  /// unlink(2); a missing file is fine.
  public static func remove(_ path: String) throws(PosixError) {
    if Glibc.unlink(path) == 0 || errno == ENOENT { return }
    throw PosixError("unlink", path: path)
  }

  /// rmdir(2); a missing directory is fine.
  public static func removeDirectory(_ path: String) throws(PosixError) {
    if Glibc.rmdir(path) == 0 || errno == ENOENT { return }
    throw PosixError("rmdir", path: path)
  }

  /// mkfifo(3); an existing FIFO is fine.
  public static func makeFIFO(_ path: String, mode: UInt32 = 0o600) throws(PosixError) {
    if Glibc.mkfifo(path, mode_t(mode)) == 0 { return }
    let e = errno
    if e == EEXIST && isFIFO(path) { return }
    throw PosixError("mkfifo", code: e, path: path)
  }

  public static func exists(_ path: String) -> Bool { Glibc.access(path, F_OK) == 0 }
  /// access(2) X_OK of something that is not a directory: what execvp(3) would run.
  public static func isExecutable(_ path: String) -> Bool { Glibc.access(path, X_OK) == 0 && !isDirectory(path) }

  private static func mode(_ path: String) -> UInt32? { (try? status(path))??.mode }
  public static func isDirectory(_ path: String) -> Bool { (try? status(path))??.isDirectory ?? false }
  public static func isFIFO(_ path: String) -> Bool {
    guard let m = mode(path) else { return false }
    return m & UInt32(S_IFMT) == UInt32(S_IFIFO)
  }
  /// Permission bits of `path`, or nil when it does not exist.
  public static func permissions(_ path: String) -> UInt32? { mode(path).map { $0 & 0o777 } }
  /// Size in bytes, or nil when it does not exist.
  public static func size(_ path: String) -> Int? { (try? status(path))??.size }

  /// stat(2) (or lstat(2) when `followLinks` is false); nil when `path` does not exist.
  public static func status(_ path: String, followLinks: Bool = true) throws(PosixError) -> FileStatus? {
    var st = cshim_file_status()
    if cshim_stat(path, followLinks ? 1 : 0, &st) == 0 { return FileStatus(st) }
    let e = errno
    if e == ENOENT || e == ENOTDIR { return nil }
    throw PosixError(followLinks ? "stat" : "lstat", code: e, path: path)
  }

  /// statvfs(3): bytes an unprivileged user may still write on the file system holding `path`.
  public static func availableBytes(_ path: String) throws(PosixError) -> Int {
    var available: Int64 = 0
    var total: Int64 = 0
    _ = try retryOnInterrupt("statvfs", path: path) { cshim_statvfs(path, &available, &total) }
    return Int(available)
  }

  /// chown(2)
  public static func setOwner(_ path: String, user: UInt32, group: UInt32) throws(PosixError) {
    _ = try retryOnInterrupt("chown", path: path) { Glibc.chown(path, uid_t(user), gid_t(group)) }
  }

  /// The names in a directory, without "." and "..", sorted.
  public static func list(_ path: String) throws(PosixError) -> [String] {
    guard let d = Glibc.opendir(path) else { throw PosixError("opendir", path: path) }
    defer { Glibc.closedir(d) }
    var names: [String] = []
    while let e = Glibc.readdir(d) {
      let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
        String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
      }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }

  /// The whole file, or nil when it does not exist.
  public static func read(_ path: String) throws(PosixError) -> [UInt8]? {
    let fd: FileDescriptor
    do throws(PosixError) {
      fd = try FileDescriptor.open(path, .readOnly)
    } catch {
      if error.isNotFound { return nil }
      throw error
    }
    defer { fd.close() }
    var bytes: [UInt8] = []
    while try fd.read(appendingTo: &bytes, max: 1 << 16) > 0 {}
    return bytes
  }

  /// fsync(2) of a directory, so a rename or create inside it is durable.
  public static func syncDirectory(_ path: String) throws(PosixError) {
    let fd = try FileDescriptor.open(path, [.readOnly, .directory])
    defer { fd.close() }
    try fd.fsync()
  }

  /// Writes `bytes` so a reader never sees half of them: temp → (fsync) → rename → (fsync dir).
  /// With `durable == false` the two fsyncs are skipped (atomic for readers, not for power loss).
  public static func writeAtomically(
    _ path: String, _ bytes: [UInt8], durable: Bool = true, mode: UInt32 = 0o600
  )
    throws(PosixError)
  {
    let tmp = path + ".tmp"
    let fd = try FileDescriptor.open(tmp, [.writeOnly, .create, .truncate], mode: mode)
    do throws(PosixError) {
      try fd.writeAll(bytes)
      if durable { try fd.fsync() }
    } catch {
      fd.close()
      try? remove(tmp)
      throw error
    }
    fd.close()
    try rename(tmp, path)
    if durable { try syncDirectory(dirname(path)) }
  }

  public static func dirname(_ path: String) -> String {
    guard let i = path.lastIndex(of: "/") else { return "." }
    if i == path.startIndex { return "/" }
    return String(path[..<i])
  }

  public static func basename(_ path: String) -> String {
    guard let i = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: i)...])
  }

  /// realpath(3) of an existing path.
  public static func realPath(_ path: String) -> String? {
    guard let p = Glibc.realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
  }

  /// readlink(2): what a symbolic link holds, e.g. `net:[4026531840]` for /proc/self/ns/net;
  /// nil when it is not a link or cannot be read.
  public static func readLink(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = Glibc.readlink(path, &buf, buf.count - 1)
    guard n > 0 else { return nil }
    buf[n] = 0
    return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }

  /// getcwd(3)
  public static func currentDirectory() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    guard Glibc.getcwd(&buf, buf.count) != nil else { return "." }
    return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }

  /// getcwd(3) when its bytes are not UTF-8, written out for a message: each byte that is not part
  /// of UTF-8 text as `\xNN` (`/home/a/caf\xe9`); nil when the path is UTF-8 or cannot be read.
  /// `currentDirectory()` turns such bytes into U+FFFD, which names another directory.
  public static func currentDirectoryNotUTF8() -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    guard Glibc.getcwd(&buf, buf.count) != nil else { return nil }
    let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    guard String(validating: bytes, as: UTF8.self) == nil else { return nil }
    var out = ""
    var i = 0
    while i < bytes.count {
      let b = bytes[i]
      let n = b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0
      if n > 0, i + n <= bytes.count, let s = String(validating: bytes[i..<i + n], as: UTF8.self) {
        out += s
        i += n
      } else {
        let hex = Array("0123456789abcdef")
        out += "\\x" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 15)])
        i += 1
      }
    }
    return out
  }

  /// An absolute form of `path` (relative to the current directory), without resolving links.
  public static func absolute(_ path: String) -> String {
    if path.hasPrefix("/") { return path }
    let cwd = currentDirectory()
    if path == "." { return cwd }
    return cwd + "/" + (path.hasPrefix("./") ? String(path.dropFirst(2)) : path)
  }

  /// mkdtemp(3) under `base`.
  public static func makeTemporaryDirectory(prefix: String, base: String = "/tmp") throws(PosixError) -> String {
    var template = Array((base + "/" + prefix + "XXXXXX").utf8CString)
    guard Glibc.mkdtemp(&template) != nil else { throw PosixError("mkdtemp", path: base) }
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }

  /// rm -rf (for temporary directories only).
  public static func removeTree(_ path: String) {
    if isDirectory(path) {
      for name in (try? list(path)) ?? [] { removeTree(path + "/" + name) }
      _ = Glibc.rmdir(path)
    } else {
      _ = Glibc.unlink(path)
    }
  }
}
