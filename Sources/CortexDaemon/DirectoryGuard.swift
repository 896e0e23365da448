public import CortexCore
public import Posix

/// Refuses a coordination directory that another user could change (SPEC §9). Whoever can write
/// `config.json`, a snapshot, a log segment or the inbox chooses what the daemon runs, as the
/// daemon's user; whoever can rename a directory above the root can swap the whole directory for
/// one of their own. So, with `user` the effective uid:
///
/// - every directory above the root, on the path as given and on its real path (symbolic links
///   resolved), is owned by `user` or root, and is not writable by its group or others unless it
///   is sticky (like /tmp, where only an entry's owner may rename or remove it);
/// - the root, and the entries in it that Cortex reads or writes into (`config.json`,
///   `task-queue.json`, `events/` and its segments, `tasks/`, `fifo/`, `inbox/` with `accepted/`
///   and `rejected/`), are owned by `user` and not writable by their group or others.
///
/// Missing entries pass: `init` creates them owner-only. Group membership and ACLs are not
/// examined: a group-writable entry is refused even when the group has no other member.
/// `Daemon.initialize` runs this check, so `init`, `start` and `daemon` all refuse (exit 1).
public enum DirectoryGuard {
  /// What is wrong with one path, and the command that fixes it.
  public struct Refusal: Error, CustomStringConvertible, Equatable, Sendable {
    public let path: String
    public let problem: String
    public let fix: String
    public var description: String { "\(path) \(problem). Fix: \(fix)" }
  }

  /// The first problem found, top-down (so the message names the highest path at fault), or nil.
  public static func check(
    _ paths: Paths, user: UInt32 = Processes.effectiveUserID,
    status: (String) throws(PosixError) -> FileStatus? = { (p: String) throws(PosixError) in try FileSystem.status(p) },
    list: (String) -> [String] = { (try? FileSystem.list($0)) ?? [] },
    realPath: (String) -> String? = { FileSystem.realPath($0) }
  ) -> Refusal? {
    let root = paths.root
    let why = "another user could change what Cortex runs as uid \(user)"
    func stat(_ p: String) -> Result<FileStatus?, Refusal> {
      do throws(PosixError) { return .success(try status(p)) } catch {
        return .failure(Refusal(path: p, problem: "cannot be examined (\(error))", fix: "make it readable by uid \(user)"))
      }
    }

    // The directories above the root.
    var above = ancestors(of: root)
    if let real = realPathOfNearestExisting(root, realPath) {
      for a in ancestors(of: real) where !above.contains(a) { above.append(a) }
    }
    for dir in above {
      let st: FileStatus
      switch stat(dir) {
      case .failure(let r): return r
      case .success(nil): continue  // created by init, mode 0700
      case .success(let s?): st = s
      }
      if st.owner != user && st.owner != 0 {
        return Refusal(
          path: dir, problem: "is owned by uid \(st.owner), who could replace \(root) with a directory of their own",
          fix: "use a directory under one that you (uid \(user)) or root own")
      }
      if st.isWritableByOthers && !st.isSticky {
        return Refusal(
          path: dir,
          problem: "is writable by \(writers(st)) (mode \(octal(st.permissions))) and not sticky, so another user could replace \(root)",
          fix: "chmod go-w \(dir) (or chmod +t \(dir)), or use a directory elsewhere")
      }
    }

    // The root and what Cortex reads or writes into.
    var entries = [root, paths.config, paths.taskQueue, paths.events]
    if case .success(let ev?) = stat(paths.events), ev.isDirectory {
      entries += LogSegments.indexes(list(paths.events)).map { paths.events + "/" + LogSegments.name($0) }
    }
    entries += [paths.tasks, paths.fifo, paths.inbox, paths.inboxAccepted, paths.inboxRejected]
    for path in entries {
      let st: FileStatus
      switch stat(path) {
      case .failure(let r): return r
      case .success(nil): continue
      case .success(let s?): st = s
      }
      if path == root && !st.isDirectory {
        return Refusal(path: path, problem: "is not a directory", fix: "remove it, or give --dir another path")
      }
      if st.owner != user {
        return Refusal(
          path: path, problem: "is owned by uid \(st.owner), not by uid \(user) who runs cortex: \(why)",
          fix: "chown \(user) \(path) if its contents are yours, or use another directory")
      }
      if st.isWritableByOthers {
        return Refusal(
          path: path, problem: "is writable by \(writers(st)) (mode \(octal(st.permissions))): \(why)",
          fix: "chmod \(st.isDirectory ? "700" : "600") \(path) once you have checked what is in it")
      }
    }
    return nil
  }

  /// "/a/b/c" → ["/", "/a", "/a/b"]
  static func ancestors(of path: String) -> [String] {
    var out = ["/"]
    var current = ""
    for part in path.split(separator: "/").dropLast() {
      current += "/" + part
      out.append(current)
    }
    return out
  }

  /// The real path of `path`, or of its nearest existing ancestor with the rest appended.
  static func realPathOfNearestExisting(_ path: String, _ realPath: (String) -> String?) -> String? {
    var head = path
    var tail: [Substring] = []
    while head != "/" && !head.isEmpty {
      if let r = realPath(head) { return ([r == "/" ? "" : r] + tail.reversed().map(String.init)).joined(separator: "/") }
      tail.append(Substring(FileSystem.basename(head)))
      // A relative path whose start cannot be resolved (".", in a deleted working directory) is
      // its own parent: stop there rather than loop.
      let parent = FileSystem.dirname(head)
      if parent == head { return nil }
      head = parent
    }
    return nil
  }

  private static func writers(_ st: FileStatus) -> String {
    switch (st.mode & 0o020 != 0, st.mode & 0o002 != 0) {
    case (true, true): "its group and others"
    case (true, false): "its group"
    default: "others"
    }
  }

  private static func octal(_ v: UInt32) -> String {
    let s = String(v, radix: 8)
    return String(repeating: "0", count: max(0, 4 - s.count)) + s
  }
}
