internal import CShim
internal import Glibc

/// What it takes to recognise a process again later and to follow one that is not our child
/// (re-adoption of workers, SPEC §14), and to replace the running program in place.
extension Processes {
  /// Field 22 of /proc/PID/stat: when the process started, in clock ticks after boot. With the
  /// pid it names one process for the life of the boot (a reused pid has a later start time).
  /// Nil when there is no such process.
  public static func startTime(_ pid: Int32) -> UInt64? {
    guard pid > 0, let stat = (try? FileSystem.read("/proc/\(pid)/stat")) ?? nil else { return nil }
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    guard let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
    let rest = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
    // rest[0] is field 3 (state); field 22 is rest[19].
    guard rest.count > 19 else { return nil }
    return UInt64(String(decoding: rest[19], as: UTF8.self))
  }

  /// pidfd_open(2): readable once `pid` has exited; works for processes that are not our children.
  public static func openPidFD(_ pid: Int32) throws(PosixError) -> FileDescriptor {
    let fd = try retryOnInterrupt("pidfd_open") { cshim_pidfd_open(pid) }
    return FileDescriptor(raw: fd)
  }

  /// execve(2): replaces this program with `path`, same pid, same children, descriptors without
  /// FD_CLOEXEC kept. Returns only when it failed.
  public static func replaceProgram(_ path: String, arguments: [String], environment: [String]) -> PosixError {
    _ = withCStrings(arguments) { cargv in
      withCStrings(environment) { cenv in cshim_execve(path, cargv, cenv) }
    }
    return PosixError("execve", code: errno, path: path)
  }

  /// execve(2) of `path` with this process's own arguments and environment, byte for byte as
  /// the C runtime passed them. Returns only when it failed.
  public static func handOver(to path: String) -> PosixError {
    guard let argv = cshim_argv() else { return PosixError("execve", code: EINVAL, path: path) }
    _ = cshim_execve(path, argv, Glibc.environ)
    return PosixError("execve", code: errno, path: path)
  }
}
