internal import Glibc

/// A file mapped with mmap(2). Shared writable mappings are for the owning daemon; read-only
/// mappings are for readers. Unmapped on deinit.
///
/// Touching a page of a mapping that the file system cannot back is SIGBUS, not an error
/// return: past the end of the file, or a hole in a sparse file on a full file system (tmpfs and
/// ext4 allocate a hole's page on first touch). So a writable mapping has every block allocated
/// before it is mapped, and a read-only one is refused unless the file is fully allocated.
public final class MappedFile: @unchecked Sendable {
  // @unchecked: the pointer is owned by this object and only used from the thread that holds it.
  public let base: UnsafeMutableRawPointer
  public let size: Int
  public let writable: Bool

  /// Maps `path`. Writable: creates it, sizes it to `size` bytes and allocates all of its blocks
  /// with posix_fallocate (ENOSPC is thrown here rather than met later as SIGBUS). Read-only: maps
  /// at most the file's size, and throws EFAULT when the file has holes.
  public init(path: String, size: Int, writable: Bool) throws(PosixError) {
    let fd = try FileDescriptor.open(path, writable ? [.readWrite, .create] : .readOnly, mode: 0o600)
    defer { fd.close() }
    var mapSize = size
    if writable {
      if try fd.size() > size { try fd.truncate(to: size) }
      do throws(PosixError) { try fd.allocate(length: size) } catch {
        throw PosixError("posix_fallocate", code: error.code, path: path)
      }
    } else {
      // Never map past the end of the file or over a hole: touching such a page can be SIGBUS.
      let st = try fd.status()
      mapSize = min(size, st.size)
      if mapSize == 0 { throw PosixError("mmap", code: EINVAL, path: path) }
      if st.allocatedBytes < mapSize { throw PosixError("mmap", code: EFAULT, path: path) }
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
