internal import CShim
internal import Glibc

/// What stat(2) says about a file: its type, permission bits, owner and size, and how much of it
/// is allocated on disk.
public struct FileStatus: Sendable, Equatable {
  /// st_mode: file type and permission bits.
  public var mode: UInt32
  public var owner: UInt32
  public var group: UInt32
  public var size: Int
  /// Bytes allocated on disk (st_blocks * 512). Less than `size` means the file has holes: touching
  /// a hole through a mapping needs new space, and on a full file system that is SIGBUS.
  public var allocatedBytes: Int

  public init(mode: UInt32, owner: UInt32, group: UInt32, size: Int, allocatedBytes: Int) {
    self.mode = mode
    self.owner = owner
    self.group = group
    self.size = size
    self.allocatedBytes = allocatedBytes
  }

  init(_ st: cshim_file_status) {
    self.init(
      mode: st.mode, owner: st.uid, group: st.gid, size: Int(st.size), allocatedBytes: Int(st.blocks) * 512)
  }

  /// The permission bits (rwx for owner, group, others; no setuid, setgid or sticky).
  public var permissions: UInt32 { mode & 0o777 }
  public var isDirectory: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFDIR) }
  public var isRegularFile: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFREG) }
  public var isSymbolicLink: Bool { mode & UInt32(S_IFMT) == UInt32(S_IFLNK) }
  /// The sticky bit: in such a directory only an entry's owner may rename or remove it (/tmp).
  public var isSticky: Bool { mode & UInt32(S_ISVTX) != 0 }
  /// Writable by the group or by everyone (mode bits 020 or 002).
  public var isWritableByOthers: Bool { mode & 0o022 != 0 }
}
