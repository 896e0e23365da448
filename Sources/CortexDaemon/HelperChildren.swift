import Posix
import Synchronization

/// The processes the daemon starts for its own work (gzip of an archived segment, on the
/// lifecycle thread), so that the loop's sweep of orphans (`Daemon.killOrphanedTasks`) leaves
/// them alone: every other child that is not a worker or a hook is something a task or hook left
/// behind. A helper is spawned and listed under the same lock the sweep holds, so the sweep never
/// sees one it does not know.
final class HelperChildren: Sendable {
  static let shared = HelperChildren()
  private let pids = Mutex<Set<Int32>>([])

  func spawn(_ start: () throws(PosixError) -> Int32) throws(PosixError) -> Int32 {
    try pids.withLock { (set: inout Set<Int32>) throws(PosixError) -> Int32 in
      let pid = try start()
      set.insert(pid)
      return pid
    }
  }

  func done(_ pid: Int32) { _ = pids.withLock { $0.remove(pid) } }

  /// Runs `body` with the helpers running now; none starts meanwhile.
  func withoutNewOnes(_ body: (Set<Int32>) -> Void) { pids.withLock { body($0) } }
}
