import CortexCore
import Posix

/// `secrets.jsonl` (mode 0600): one line per task that had secret values,
/// `{"task":12,"secrets":[["env.API_KEY","…"],…]}`. Lines are appended during a loop iteration
/// and made durable (write + fdatasync) *before* the log is written, so a `task.submitted` that
/// names secrets never reaches the disk ahead of them. A failed write is never taken for success:
/// the file is cut back and the bytes stay pending, and the log is not written either.
/// At start the file is read back and rewritten with only the tasks that may still run.
final class SecretStore {
  let path: String
  private var fd: FileDescriptor
  private var size: Int
  private var pending: [UInt8] = []
  /// Lines in the file (a rewrite keeps only the tasks that may still run).
  private(set) var lines = 0
  /// The values of every task in the file, so a rewrite needs no read.
  private var values: [Int: SpecSecrets] = [:]

  init(path: String) throws(PosixError) {
    self.path = path
    fd = try FileDescriptor.open(path, [.writeOnly, .create, .append], mode: 0o600)
    try FileSystem.setMode(path, 0o600)
    size = try fd.size()
  }

  var hasPending: Bool { !pending.isEmpty }

  func append(task n: Int, _ secrets: SpecSecrets) {
    var w = JSONWriter()
    w.beginObject()
    w.field("task", n)
    w.field("secrets", json: secrets.json())
    w.endObject()
    pending.append(contentsOf: w.bytes)
    pending.append(10)
    lines += 1
    values[n] = secrets
  }

  /// Writes and syncs what is pending. Throws (keeping it pending) when either fails.
  func flush() throws(PosixError) {
    guard !pending.isEmpty else { return }
    do throws(PosixError) {
      try fd.writeAll(pending)
      try fd.fdatasync()
      size += pending.count
      pending.removeAll(keepingCapacity: true)
    } catch {
      try? fd.truncate(to: size)
      throw error
    }
  }

  /// Every task's values, from the file (a torn or unreadable line is skipped: it was never
  /// acknowledged, since the log line after it was not written before it was synced).
  static func load(_ path: String) -> [Int: SpecSecrets] {
    guard let bytes = (try? FileSystem.read(path)) ?? nil else { return [:] }
    var out: [Int: SpecSecrets] = [:]
    for line in bytes.split(separator: 10) {
      guard let v = try? JSON.parse(line), let n = v["task"]?.int, let s = v["secrets"].flatMap(SpecSecrets.decode) else {
        continue
      }
      out[Int(n)] = s
    }
    return out
  }

  /// Rewrites the file (temp → fsync → rename → fsync dir) with only `keep`.
  func rewrite(keeping keep: [Int: SpecSecrets]) throws(PosixError) {
    var bytes: [UInt8] = []
    for n in keep.keys.sorted() {
      var w = JSONWriter()
      w.beginObject()
      w.field("task", n)
      w.field("secrets", json: keep[n]!.json())
      w.endObject()
      bytes.append(contentsOf: w.bytes)
      bytes.append(10)
    }
    try flush()
    try FileSystem.writeAtomically(path, bytes, durable: true, mode: 0o600)
    let fresh = try FileDescriptor.open(path, [.writeOnly, .create, .append], mode: 0o600)
    fd.close()
    fd = fresh
    size = bytes.count
    lines = keep.count
    values = keep
  }

  /// Drops finished tasks' values once they are most of the file (called from the loop every
  /// snapshot interval; a failure leaves the file as it was).
  func compact(isLive: (Int) -> Bool) {
    guard lines >= 256 else { return }
    let keep = values.filter { isLive($0.key) }
    guard keep.count * 2 < lines else { return }
    try? rewrite(keeping: keep)
  }
}
