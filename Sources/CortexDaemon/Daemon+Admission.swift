import CortexCore
import Posix

/// Admission while the disk is full or the log cannot be written (docs/design.md, "I/O errors").
///
/// Two causes stop admission: the log's last write or sync failed (`logFailure`), or the file
/// system holding the directory has less than `minFreeBytes` free (`diskLowFreeBytes`). Either
/// one makes `submit` exit 75 with `log_unavailable` at once and stops dispatch; the log is
/// retried with backoff, free space is checked every second and before each batch of submits, and
/// admission resumes (`daemon.resumed`) when both are fine again.
extension Daemon {
  /// A write or sync of the log failed: nothing is acknowledged, the bytes stay pending, and the
  /// next attempt waits 10 ms, doubling up to 1 s while the failures go on.
  func logFailed(_ error: PosixError, now t: Int64) {
    if logFailure == nil {
      logFailingSinceMs = t
      logRetryDelayMs = 10
      writeStderr(
        "cortex daemon: cannot write the decision log (\(error)); not admitting work until it can be written (retrying with backoff up to 1 s)\n"
      )
    } else {
      logRetryDelayMs = min(1000, logRetryDelayMs * 2)
    }
    logRetryAtMs = t + logRetryDelayMs
    logFailure = error
    updateAdmission(now: t, resumedBecause: "log_writable")
  }

  /// A write of the log succeeded after failures.
  func logWritable(now t: Int64) {
    writeStderr("cortex daemon: the decision log can be written again (it failed for \(t - logFailingSinceMs) ms)\n")
    logFailure = nil
    logRetryDelayMs = 0
    updateAdmission(now: t, resumedBecause: "log_writable")
  }

  /// statvfs(3) of the directory, at most once per loop iteration (a burst of submits costs one
  /// call). Called before submits are handled and every `spaceCheckIntervalMs`.
  func checkFreeSpace(now t: Int64) {
    guard t != lastSpaceCheckMs else { return }
    lastSpaceCheckMs = t
    guard let free = try? FileSystem.availableBytes(paths.root) else { return }
    let low = free < Self.minFreeBytes ? free : nil
    if low == diskLowFreeBytes { return }
    diskLowFreeBytes = low
    updateAdmission(now: t, resumedBecause: "disk_space")
  }

  /// Sets `scheduler.admitting` from the two causes. Stopping is said on stderr (daemon.log) and,
  /// when the log still works, with `daemon.paused`; resuming with `daemon.resumed`.
  func updateAdmission(now t: Int64, resumedBecause reason: String) {
    let blocked: String?
    if let e = logFailure {
      blocked = "the decision log cannot be written (\(e)); admitting nothing until it can"
    } else if let free = diskLowFreeBytes {
      blocked =
        "the file system of \(paths.root) has \(free / 1024) KiB free; admitting nothing until \(Self.minFreeBytes / 1024) KiB are"
    } else {
      blocked = nil
    }
    let wasAdmitting = scheduler.admitting
    scheduler.admissionBlockedReason = blocked
    if let blocked {
      guard wasAdmitting else { return }
      scheduler.admitting = false
      hotDirty = true
      // A failing log has been reported by `logFailed`, and cannot take an event.
      if logFailure == nil {
        writeStderr("cortex daemon: \(blocked)\n")
        log.append(Event("daemon.paused", reason: "disk_full", detail: blocked), nowMs: t)
      }
    } else {
      guard !wasAdmitting else { return }
      scheduler.admitting = true
      hotDirty = true
      let detail = reason == "disk_space" ? "there is free space again" : "the decision log can be written again"
      log.append(Event("daemon.resumed", reason: reason, detail: detail), nowMs: t)
      writeStderr(reason == "disk_space" ? "cortex daemon: \(detail); admitting work again\n" : "cortex daemon: admitting work again\n")
      feed(.tick, now: t)
    }
  }

  /// While the log cannot be written, answers that acknowledge nothing (refusals and errors,
  /// `"ok": false`) still go out, so `submit` exits 75 at once rather than waiting for the disk.
  /// An answer never overtakes an earlier one to the same client that still waits for the log.
  func sendRefusals(now t: Int64) {
    guard !deferred.isEmpty else { return }
    var waiting: Set<ClientID> = []
    var kept: [Action] = []
    for a in deferred {
      guard case .reply(let c, let v, _) = a else {
        kept.append(a)
        continue
      }
      if v["ok"]?.bool == false && !waiting.contains(c) {
        reply(c, v, now: t)
      } else {
        waiting.insert(c)
        kept.append(a)
      }
    }
    deferred = kept
  }

  /// A stop cannot finish while the log fails: its events and the actions behind them wait. After
  /// `abandonStopAfterMs` of failures during a stop the daemon gives up on a clean stop.
  func mustAbandonStop(now t: Int64) -> Bool {
    logFailure != nil && scheduler.phase != .running && t - logFailingSinceMs >= Self.abandonStopAfterMs
  }

  /// Exits as a `kill -9` would, but tidily: says why on stderr, answers `cortex stop`, closes the
  /// workers' FIFOs (each kills its task's group and exits when its input closes), removes the
  /// socket and pid file. What the log holds is complete up to its last good line, so the next
  /// start recovers as after a crash: tasks that were running are requeued. Returns exit code 1.
  func abandonStop() -> Int32 {
    let t = now()
    let why = logFailure.map { "\($0)" } ?? "the decision log cannot be written"
    writeStderr(
      "cortex daemon: stopping without the final events: \(why); the next start recovers from the log and requeues running tasks\n")
    for c in stopClients {
      reply(c, .object([("ok", .bool(true)), ("stopped", .bool(true)), ("clean", .bool(false)), ("error", .string(why))]), now: t)
    }
    answerOwedAtStop(now: t)
    for (_, c) in clients { c.flush() }
    if let l = listener { l.close() }
    try? FileSystem.remove(paths.socket)
    try? FileSystem.remove(paths.pid)
    for (_, ch) in channels { ch.close() }
    for w in scheduler.workers where w.pid > 0 { Processes.signal(w.pid, Signal.term) }
    let deadline = Clock.monotonicMs() + 2000
    while !pidToSlot.isEmpty && Clock.monotonicMs() < deadline {
      while let (pid, _) = Processes.reap() { pidToSlot[pid] = nil }
      sleepMs(10)
    }
    log.close()
    lockFD.close()
    return 1
  }
}
