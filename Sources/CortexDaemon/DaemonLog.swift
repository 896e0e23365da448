import CortexCore
import Posix

/// `daemon.log` kept under `retention.daemon_log_bytes`: the detached daemon's messages, and the
/// output of its workers and on_finish hooks (a hook that prints for every task grew it for ever).
/// Past the limit, what it holds (its newest `limit` bytes) moves to `daemon.log.1`, replacing the
/// one before, and it starts again empty with a line saying so.
///
/// Every writer appends (O_APPEND): the daemon's stderr, its workers and its hooks, whose
/// descriptors stay open on this file. So the file is copied and then truncated in place (as
/// logrotate's `copytruncate`) and every writer goes on at its new end; renaming it would leave
/// the workers writing to the renamed file. What is written between the copy's last read and the
/// truncation (a few microseconds) is lost. The size is looked at every `checkIntervalMs`, the
/// copy made on the files thread.
enum DaemonLog {
  static let checkIntervalMs: Int64 = 5_000

  /// Moves `path`'s content to `path.1` and empties it. Returns why it could not, or nil.
  static func rotate(_ path: String, limit: Int, now t: Int64) -> String? {
    do throws(PosixError) {
      let fd = try FileDescriptor.open(path, .readWrite)
      defer { fd.close() }
      let size = try fd.size()
      guard size > limit else { return nil }
      // Its newest `limit` bytes (a daemon.log grown to gigabytes before this limit existed is
      // not read whole into memory), then what came while they were written, then the cut.
      try FileSystem.writeAtomically(path + ".1", try fd.read(count: limit, at: size - limit), durable: false, mode: 0o600)
      let more = try fd.readToEnd(from: size)
      try fd.truncate(to: 0)
      if !more.isEmpty {
        let old = try FileDescriptor.open(path + ".1", [.writeOnly, .append])
        defer { old.close() }
        try old.writeAll(more)
      }
      let note = try FileDescriptor.open(path, [.writeOnly, .append])
      defer { note.close() }
      try note.writeAll(
        "cortex daemon: \(Timestamp.rfc3339(ms: t)): daemon.log passed retention.daemon_log_bytes (\(limit)); what it held is in daemon.log.1\n"
      )
      return nil
    } catch {
      return "\(error)"
    }
  }
}

extension Daemon {
  /// Every `DaemonLog.checkIntervalMs`: daemon.log's size against the limit, and the move on the
  /// files thread when it is past it.
  func checkDaemonLog(now t: Int64) {
    lastDaemonLogCheckMs = t
    let limit = config.retention.daemonLogBytes
    guard limit > 0, let size = try? workerLog?.size(), size > limit else { return }
    let path = paths.daemonLog
    files.async {
      if DaemonLog.rotate(path, limit: limit, now: t) == nil {
        // The space kept past daemon.log's end for messages on a full disk went with the cut.
        try? FileDescriptor.standardError.reserveBeyondEnd(Daemon.messageReserveBytes)
      }
    }
  }
}
