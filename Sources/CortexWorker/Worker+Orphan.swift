import CortexCore
import Posix

/// A worker without its daemon (docs/readopt.md): reports go to the spool and stay in memory,
/// `.in` is polled for a new daemon, and after `orphan_timeout_s` the task's group is ended.
extension Worker {
  /// The spool file: `report` as one line, rewritten before each report is sent. No fsync: it
  /// must survive the daemon, not the machine (a reboot ends the task anyway).
  /// One `pwrite` at the start of the file, no `ftruncate` (which cost a sixth of a busy
  /// worker's CPU on ext4): a shorter report leaves stale bytes after its newline, and the reader
  /// takes only the first line.
  func saveSpool() {
    guard let spool else { return }
    try? spool.writeAll(report.encodedLine(op: nil), at: 0)
  }

  /// The daemon is gone: keep the task, stop writing, watch for a new daemon by polling `.in`.
  func orphaned() {
    if orphanSinceMs == nil {
      orphanSinceMs = Clock.monotonicMs()
      writeStderr(
        "cortex worker \(slot): the daemon is gone; keeping \(report.running ? "its task" : "its state") for a new daemon for \(orphanTimeoutMs / 1000) s\n"
      )
    }
    if inputWatched {
      epoll.remove(input)
      inputWatched = false
    }
    lines.reset()
    nextPollMs = Clock.monotonicMs() + Self.orphanPollMs
  }

  /// While orphaned: a read of `.in` that returns 0 means still no writer; would-block means a
  /// new daemon holds it open (its `adopt` follows); data is read as usual.
  func pollInput(now: Int64) {
    var chunk: [UInt8] = []
    let n: Int
    do throws(PosixError) {
      n = try input.read(appendingTo: &chunk, max: 65536)
    } catch {
      guard error.isWouldBlock else {
        nextPollMs = now + Self.orphanPollMs
        return
      }
      n = -1
    }
    if n == 0 {
      nextPollMs = now + Self.orphanPollMs
      return
    }
    try? epoll.add(input, .input, token: Self.tokenInput)
    inputWatched = true
    if n > 0 {
      lines.append(chunk)
      readCommands()
    }
  }

  /// No daemon for `orphanTimeoutMs`, or SIGTERM (the sweep of a new daemon that did not adopt
  /// this worker, or a daemon abandoning its stop): end the task's group and leave.
  func daemonGone() {
    // Stopped by the worker, not finished: should its exit still be reaped below, the outcome
    // is marked so that no later daemon accepts it (the task is retried).
    current?.cancelled = true
    if let r = current, r.pid > 0 {
      Processes.signalGroup(r.pid, Signal.term)
      sleepMs(50)
      Processes.signalGroup(r.pid, Signal.kill)
    }
    exiting = true
  }
}
