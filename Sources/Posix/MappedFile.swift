internal import Glibc

/// A file mapped with mmap(2). Shared writable mappings are for the owning daemon; read-only
/// mappings are for readers such as `cortex status`. Unmapped on deinit.
public final class MappedFile: @unchecked Sendable {
  // @unchecked: the pointer is owned by this object and only used from the thread that holds it.
  public let base: UnsafeMutableRawPointer
  public let size: Int
  public let writable: Bool

  /// Maps `path`, creating and sizing it to `size` bytes when writable.
  public init(path: String, size: Int, writable: Bool) throws(PosixError) {
    let fd = try FileDescriptor.open(path, writable ? [.readWrite, .create] : .readOnly, mode: 0o600)
    defer { fd.close() }
    var mapSize = size
    if writable {
      if try fd.size() != size { try fd.truncate(to: size) }
    } else {
      // Never map past the end of the file: touching such a page is SIGBUS.
      mapSize = min(size, try fd.size())
      if mapSize == 0 { throw PosixError("mmap", code: EINVAL, path: path) }
    }
    let prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ
    guard let p = Glibc.mmap(nil, mapSize, prot, MAP_SHARED, fd.raw, 0), p != MAP_FAILED else {
      throw PosixError("mmap", path: path)
    }
    base = p
    self.size = mapSize
    self.writable = writable
  }

  /// msync(2), asynchronous.
  public func flushAsync() { _ = Glibc.msync(base, size, MS_ASYNC) }

  deinit { _ = Glibc.munmap(base, size) }
}
