import CortexCore
import CortexDaemon
import Posix

/// `cortex doctor`'s checks of the snapshots against the log.
extension DoctorCommand {
  /// task-queue.json and token-budget.json parse, are not ahead of the log, and agree with it.
  static func checkSnapshots(_ p: Paths, log: LogSummary, _ add: (Finding.Level, String) -> Void) {
    if let bytes = (try? FileSystem.read(p.taskQueue)) ?? nil {
      guard let q = try? JSON.parse(bytes), let seq = q["seq"]?.int else {
        add(.fail, "task-queue.json does not parse (the daemon sets it aside and replays the whole log)")
        return
      }
      var disagree: [String] = []
      for (state, nums) in q["finished"]?.object ?? [] {
        guard let ranges = FinishedStates.ranges(nums) else {
          disagree.append("finished.\(state) is not a list of task-number ranges")
          continue
        }
        for i in ranges.joined() {
          guard let t = log.terminal[i] else { continue }
          if t.seq <= UInt64(seq) && t.state != state { disagree.append("\(TaskID.format(i)) \(state) vs log \(t.state)") }
        }
      }
      if UInt64(seq) > log.lastSeq {
        add(.warn, "task-queue.json is at seq \(seq), ahead of the log (\(log.lastSeq))")
      } else if !disagree.isEmpty {
        add(.fail, "task-queue.json disagrees with the log: \(disagree.prefix(5).joined(separator: "; "))")
      } else {
        add(.ok, "task-queue.json (seq \(seq)) agrees with the log")
      }
    }
    if let bytes = (try? FileSystem.read(p.tokenBudget)) ?? nil {
      guard let b = try? JSON.parse(bytes), let total = b["total"]?.int, let reserved = b["reserved"]?.int,
        let used = b["used"]?.int, let avail = b["available"]?.int
      else {
        add(.fail, "token-budget.json does not parse or lacks total/reserved/used/available")
        return
      }
      // In cluster mode the node's budget is a placeholder (2^60, so that the database's check
      // is the one that refuses): its numbers say nothing to a reader (`cortex budget` has the
      // cluster's), only that the node's own accounts add up.
      let clustered = ((try? FileSystem.read(p.config)) ?? nil).flatMap { try? JSON.parse($0) }?["cluster"] != nil
      if total == reserved + used + avail && avail >= 0 && reserved >= 0 && used >= 0 {
        add(
          .ok,
          clustered
            ? "this node's token accounts add up (\(reserved) reserved, \(used) used); the budget is the cluster's: cortex budget"
            : "budget invariant holds: \(total) = \(reserved) reserved + \(used) used + \(avail) available")
      } else {
        add(.fail, "budget invariant broken: total \(total), reserved \(reserved), used \(used), available \(avail)")
      }
    }
  }

  /// Each snapshot's `"log"` position carries the CRC32C of the segment being written up to that
  /// point (no seal has checked it yet); a start compares it and refuses a segment that changed.
  /// When the bytes changed but every line is still a valid event (a letter edited, `sed -i` on
  /// the log), `--repair` records the checksum again in the snapshot, as it does for a sealed
  /// segment in the manifest; a broken line is the log check's to repair.
  static func checkSnapshotPositions(_ p: Paths, log: LogSummary, repair: Bool, _ add: (Finding.Level, String) -> Void) {
    let sealed = Set(
      ((try? FileSystem.read(p.manifest)) ?? nil).flatMap { try? Manifest.decode($0) }.map { $0.segments.map(\.index) } ?? [])
    for path in [p.taskQueue, p.taskQueuePrevious] {
      let file = FileSystem.basename(path)
      guard let bytes = (try? FileSystem.read(path)) ?? nil, let v = try? JSON.parse(bytes), let at = v["log"],
        let name = at["segment"]?.string, let index = LogSegments.indexes([name]).first, let offset = at["offset"]?.int,
        offset > 0, let recorded = at["crc32c"]?.string.flatMap({ UInt32($0, radix: 16) }), !sealed.contains(index),
        let segment = (try? FileSystem.read(p.events + "/" + name)) ?? nil, segment.count >= Int(offset)
      else { continue }  // no position, or one a start does not compare (sealed, cut, or gone)
      let now = segment[..<Int(offset)].withUnsafeBytes { FastCRC32C.checksum($0) }
      if now == recorded { continue }
      // A start recovers from task-queue.json; from the previous snapshot only when that one is unusable.
      let start = path == p.taskQueue ? "a start refuses it" : "a start that falls back to this older snapshot refuses it"
      let what =
        "events/\(name) before byte \(offset) does not match the CRC32C \(file) recorded for it (\(Manifest.hex(recorded))): it changed after that snapshot, and \(start)"
      // Only a segment whose every line is valid is taken as it is now.
      let whole = log.files[index] != nil && log.repairedFrom.map { index < $0 } ?? true
      guard repair, whole else {
        add(.fail, what + (whole ? "" : "; its lines are not all valid"))
        continue
      }
      guard case .object(var fields) = v, let i = fields.firstIndex(where: { $0.0 == "log" }), case .object(var position) = fields[i].1
      else { continue }
      position.removeAll { $0.0 == "crc32c" }
      position.append(("crc32c", .string(Manifest.hex(now))))
      fields[i].1 = .object(position)
      do throws(PosixError) {
        try FileSystem.writeAtomically(path, Array((JSON.object(fields).pretty() + "\n").utf8))
        add(.fixed, what + "; every line of it is valid, so its checksum is recorded again as it is now (\(Manifest.hex(now)))")
      } catch {
        add(.fail, what + "; could not rewrite \(file): \(error)")
      }
    }
  }
}
