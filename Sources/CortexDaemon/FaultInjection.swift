import Posix
import Synchronization

/// Crash points for tests: with `CORTEX_FAULT=STEP` (or `STEP@N`, the Nth time) in its
/// environment the daemon `_exit`s at that step of writing a snapshot, the manifest, sealing or
/// removing a segment, cleaning task files, or moving an accepted inbox file — as a `kill -9` at
/// that moment would. Unset, each
/// point is one comparison. `EndToEndTests/CompactionCrashTests` crashes at every step.
enum Fault {
  /// Every step, in the order a segment goes through them.
  static let steps = [
    "snapshot.records", "snapshot.temp", "snapshot.rotated", "snapshot.renamed",
    "seal.checked", "manifest.temp", "manifest.renamed",
    "removal.listed", "removal.unlinked", "removal.compressed", "removal.reported", "removal.confirmed",
    "clean.partial",
    // Not a segment's: an inbox file's tasks are durable, the file is not moved yet.
    "inbox.settle",
    // A hot-state write that found events buffered for the loop's commit, just after it.
    "hot.buffered",
  ]

  static let armed: (step: String, count: Int)? = {
    guard let v = Environment.get("CORTEX_FAULT"), !v.isEmpty else { return nil }
    let parts = v.split(separator: "@", maxSplits: 1)
    return (String(parts[0]), parts.count == 2 ? max(1, Int(parts[1]) ?? 1) : 1)
  }()

  private static let hits = Mutex<Int>(0)

  /// Exits the whole process at once (exit code 70) when `step` is the armed one.
  static func point(_ step: String) {
    guard let a = armed, a.step == step else { return }
    let n = hits.withLock { h -> Int in
      h += 1
      return h
    }
    guard n >= a.count else { return }
    try? FileDescriptor.standardError.writeAll("cortex daemon: CORTEX_FAULT: exiting at \(step) (occurrence \(n))\n")
    Processes.exitImmediately(70)
  }
}
