/// A look at /proc: every process with its parent, state and command line. Used to prove that
/// nothing of a pool survives (`cortex demo`, `cortex doctor`, the end-to-end tests).
public struct ProcessEntry: Sendable, Equatable {
  public var pid: Int32
  public var parent: Int32
  /// The one-letter state of proc(5): R, S, D, Z, T, ...
  public var state: Character
  public var commandLine: [String]
  public var isZombie: Bool { state == "Z" }
}

extension Processes {
  /// Every process visible in /proc (a process that ends while being read is skipped).
  public static func all() -> [ProcessEntry] {
    var out: [ProcessEntry] = []
    for name in (try? FileSystem.list("/proc")) ?? [] {
      guard let pid = Int32(name), let info = info(pid) else { continue }
      out.append(info)
    }
    return out
  }

  /// This process's children, zombies included, from `/proc/self/task/*/children` (a few bytes
  /// per thread; the kernel has it since 3.5 with CONFIG_PROC_CHILDREN, as Debian's does), or
  /// from a scan of /proc where that file is missing.
  public static func children() -> [Int32] {
    let tasks = (try? FileSystem.list("/proc/self/task")) ?? []
    var out: [Int32] = []
    for t in tasks {
      guard let bytes = (try? FileSystem.read("/proc/self/task/\(t)/children")) ?? nil else {
        let me = currentID
        return all().filter { $0.parent == me }.map(\.pid)
      }
      for word in bytes.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") }) {
        if let pid = Int32(String(decoding: word, as: UTF8.self)) { out.append(pid) }
      }
    }
    return out
  }

  public static func info(_ pid: Int32) -> ProcessEntry? {
    guard let stat = (try? FileSystem.read("/proc/\(pid)/stat")) ?? nil else { return nil }
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    guard let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
    let rest = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
    guard rest.count >= 2, let ppid = Int32(String(decoding: rest[1], as: UTF8.self)) else { return nil }
    let state = Character(UnicodeScalar(rest[0].first ?? UInt8(ascii: "?")))
    let cmd = ((try? FileSystem.read("/proc/\(pid)/cmdline")) ?? nil) ?? []
    let argv = cmd.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    return ProcessEntry(pid: pid, parent: ppid, state: state, commandLine: argv)
  }

  /// The environment of a process, when readable.
  public static func environment(_ pid: Int32) -> [String]? {
    guard let bytes = (try? FileSystem.read("/proc/\(pid)/environ")) ?? nil else { return nil }
    return bytes.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
  }

  /// Processes that belong to the Cortex directory `root`: its daemon and workers (their command
  /// line names it) and the tasks they started (their environment has CORTEX_DIR=root).
  public static func belonging(toDirectory root: String) -> [ProcessEntry] {
    let me = currentID
    let tag = "CORTEX_DIR=" + root
    return all().filter { p in
      guard p.pid != me else { return false }
      if p.commandLine.contains(root) { return true }
      return environment(p.pid)?.contains(tag) ?? false
    }
  }
}
