import CortexCluster
import CortexCore
import Posix

/// `cluster-outbox.jsonl`: terminal states of tasks claimed here that the cluster has not yet
/// confirmed, kept on disk while PostgreSQL is unreachable (and until each is confirmed), so a
/// daemon restarted during an outage still delivers them — before it joins again, under the
/// claims they end (`ClusterLink.start(replay:)`). While the database answers, states are
/// confirmed within milliseconds and nothing is written; a crash in that window makes the task
/// run again (at least once, docs/cluster.md).
struct ClusterOutbox {
  let path: String
  /// Sent to the link, not yet accepted or refused by the fence.
  private(set) var undelivered: [Int: ClusterLink.Completion] = [:]
  private var onDisk: Bool
  private var keeping = false
  private var dirty = false

  init(path: String) {
    self.path = path
    onDisk = FileSystem.exists(path)
  }

  /// What a previous run left (a torn last line is skipped: it was never written whole).
  static func load(_ path: String) -> [ClusterLink.Completion] {
    guard let bytes = (try? FileSystem.read(path)) ?? nil else { return [] }
    return bytes.split(separator: 10).compactMap { line in (try? JSON.parse(line)).flatMap(ClusterLink.Completion.init(json:)) }
  }

  mutating func sent(_ c: ClusterLink.Completion) {
    undelivered[c.id] = c
    if keeping { dirty = true }
  }

  mutating func confirmed(_ id: Int) {
    if undelivered.removeValue(forKey: id) != nil && onDisk { dirty = true }
  }

  /// The database is unreachable: keep every undelivered state on disk from now on.
  mutating func keep() {
    keeping = true
    dirty = true
  }

  /// The database answers again: states are confirmed as they are delivered; the file shrinks
  /// with them and is removed when empty.
  mutating func release() { keeping = false }

  /// Once per loop iteration: the file rewritten (temp → fsync → rename) when it changed. A
  /// failure (a full disk) is retried at the next iteration.
  mutating func flush() {
    guard dirty else { return }
    do throws(PosixError) {
      if undelivered.isEmpty {
        if onDisk { try FileSystem.remove(path) }
      } else {
        var bytes: [UInt8] = []
        for id in undelivered.keys.sorted() {
          bytes += undelivered[id]!.json().encodedBytes()
          bytes.append(10)
        }
        try FileSystem.writeAtomically(path, bytes, durable: true, mode: 0o600)
      }
      onDisk = !undelivered.isEmpty
      dirty = false
    } catch {
      // Left dirty: written at the next iteration.
    }
  }
}
