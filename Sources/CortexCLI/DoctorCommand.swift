import CortexCore
import CortexDaemon
import Posix

/// `cortex doctor [--repair]`: checks a Cortex directory and says what is wrong, one finding per
/// line. `--repair` fixes what is safe to fix while no daemon runs: a corrupt or torn log tail is
/// moved aside (never deleted), stale socket and pid files are removed, an invalid hot state is
/// set aside, orphaned task groups are killed. Exit 0 when healthy (after repair), 1 otherwise.
enum DoctorCommand {
  struct Finding {
    enum Level: String { case ok, warn, fail, fixed }
    var level: Level
    var what: String
  }

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let repair = args.flag("--repair")
    try args.noPositionals()
    let p = ctx.paths
    guard FileSystem.exists(p.config) || FileSystem.isDirectory(p.events) else {
      throw CLIError(
        ExitCode.failure,
        ctx.lookup?.source == .fallback
          ? ctx.startAdvice
          : ctx.lookup?.namedDirectoryProblem()
            ?? "\(p.root) is not a Cortex directory (no config.json); create one with: cortex init --dir \(p.root)")
    }
    var findings: [Finding] = []
    func add(_ l: Finding.Level, _ s: String) { findings.append(Finding(level: l, what: s)) }

    // Lock, pid, socket.
    let running = StatusCommand.daemonRunning(p)
    if let pid = running {
      add(.ok, "daemon running (pid \(pid)) and holding daemon.lock")
    } else {
      add(.ok, "no daemon running")
      for (path, name) in [(p.socket, "cortex.sock"), (p.pid, "daemon.pid")] where FileSystem.exists(path) {
        if repair {
          try? FileSystem.remove(path)
          add(.fixed, "removed stale \(name) (no daemon holds the lock)")
        } else {
          add(.warn, "stale \(name) without a daemon (removed by the next start or --repair)")
        }
      }
    }
    if FileSystem.exists(p.socket), let mode = FileSystem.permissions(p.socket), mode != 0o600 {
      add(.fail, "cortex.sock has mode \(String(mode, radix: 8)), not 600")
    }

    // config.json, which the next start (or a SIGHUP) reads: a typo in it kept the daemon from
    // starting while doctor found every other thing ok.
    if let bytes = (try? FileSystem.read(p.config)) ?? nil {
      do {
        let cfg = try Config.decode(try JSON.parse(bytes))
        add(.ok, "config.json valid: \(cfg.workers) workers, \(cfg.workerTypes.count) worker types")
      } catch {
        let effect =
          running != nil
          ? "the running daemon keeps the config it read; the next start or SIGHUP refuses this one" : "cortex start refuses it"
        add(.fail, "config.json: \(error); \(effect)")
      }
    }

    // FIFOs.
    // Beside the FIFOs: each slot's spawn record (.id) and its worker's spool (.spool), SPEC §14.
    let fifos = ((try? FileSystem.list(p.fifo)) ?? []).sorted().filter {
      !$0.hasSuffix(".id") && !$0.hasSuffix(".spool") && !$0.hasSuffix(".tmp")
    }
    let notFIFO = fifos.filter { !FileSystem.isFIFO(p.fifo + "/" + $0) }
    let loose = fifos.filter { FileSystem.isFIFO(p.fifo + "/" + $0) && FileSystem.permissions(p.fifo + "/" + $0) != 0o600 }
    if notFIFO.isEmpty && loose.isEmpty {
      add(.ok, "\(fifos.count) worker FIFOs, all named pipes with mode 600")
    } else {
      if !notFIFO.isEmpty { add(.fail, "not named pipes in fifo/: \(notFIFO.joined(separator: ", "))") }
      if !loose.isEmpty { add(.fail, "FIFOs not mode 600: \(loose.joined(separator: ", "))") }
    }

    // The log.
    let log = checkLog(p, repair: repair && running == nil, add)

    // The manifest of sealed segments against the files.
    checkManifest(p, log: log, repair: repair && running == nil, add)

    // Snapshots against the log.
    checkSnapshots(p, log: log, add)
    checkSnapshotPositions(p, log: log, repair: repair && running == nil, add)

    // Hot state.
    var hot: HotState.View?
    switch Result(catching: { () throws(CLIError) in try DaemonControl.hotState(p) }) {
    case .success(let v):
      hot = v
      if v.lastSeq > log.lastSeq && log.lastSeq > 0 {
        add(.warn, "hot-state.mmap says seq \(v.lastSeq) but the log ends at \(log.lastSeq)")
      } else {
        add(.ok, "hot-state.mmap valid (seq \(v.lastSeq), CRC32C matches)")
      }
    case .failure(let e):
      if !FileSystem.exists(p.hotState) {
        add(.ok, "no hot-state.mmap yet")
      } else if repair && running == nil {
        let aside = p.hotState + ".bad-\(Clock.wallMs())"
        try? FileSystem.rename(p.hotState, aside)
        add(.fixed, "hot-state.mmap set aside as \(FileSystem.basename(aside)): \(e.description)")
      } else {
        add(.fail, e.description)
      }
    }

    // Processes: zombies of the daemon, orphans when no daemon runs, file descriptors.
    let mine = Processes.belonging(toDirectory: p.root).filter { $0.pid != running }
    let zombies = mine.filter(\.isZombie)
    if !zombies.isEmpty { add(.fail, "zombies: \(zombies.map { "\($0.pid)" }.joined(separator: ", "))") }
    func isWorker(_ e: ProcessEntry) -> Bool { e.commandLine.count > 1 && e.commandLine[1] == "worker" }
    if running == nil {
      // Workers outlive their daemon for orphan_timeout_s, keeping their tasks for the next one
      // to re-adopt (SPEC §14): they and their tasks are expected; anything else is an orphan.
      let waiting = Set(mine.filter { !$0.isZombie && isWorker($0) }.map(\.pid))
      let orphans = mine.filter { !$0.isZombie && !waiting.contains($0.pid) && !waiting.contains($0.parent) }
      if !waiting.isEmpty {
        add(.ok, waitingWorkers(waiting, hot))
      }
      if orphans.isEmpty {
        add(.ok, "no orphaned workers or tasks")
      } else if repair {
        for o in orphans {
          _ = Processes.signalGroup(o.pid, Signal.kill)
          _ = Processes.signal(o.pid, Signal.kill)
        }
        add(.fixed, "killed \(orphans.count) orphaned processes: \(orphans.map { "\($0.pid)" }.joined(separator: ", "))")
      } else {
        add(
          .fail,
          "orphaned processes (no daemon runs): \(orphans.map { "\($0.pid) \($0.commandLine.prefix(3).joined(separator: " "))" }.joined(separator: "; "))"
        )
      }
    } else if let pid = running {
      let workers = mine.filter { !$0.isZombie && isWorker($0) }.count
      add(zombies.isEmpty ? .ok : .warn, "\(workers) worker processes, \(zombies.count) zombies")
      if let fds = try? FileSystem.list("/proc/\(pid)/fd") {
        let limit = openFileLimit(pid)
        let level: Finding.Level = limit.map { fds.count * 10 > $0 * 8 } == true ? .warn : .ok
        add(level, "daemon has \(fds.count) open file descriptors" + (limit.map { " (limit \($0))" } ?? ""))
      }
    }

    if ctx.json {
      ctx.printJSON(.array(findings.map { .object([("level", .string($0.level.rawValue)), ("finding", .string($0.what))]) }))
    } else {
      for f in findings {
        let tag: String
        switch f.level {
        case .ok: tag = "ok   "
        case .warn: tag = "warn "
        case .fail: tag = ctx.color ? "\u{1B}[31mFAIL\u{1B}[0m " : "FAIL "
        case .fixed: tag = "fixed"
        }
        ctx.out("\(tag) \(f.what)\n")
      }
    }
    let bad = findings.contains { $0.level == .fail }
    if bad && !repair && !ctx.json { ctx.err("cortex doctor: problems found; `cortex doctor --repair` fixes what is safe to fix\n") }
    return bad ? 1 : 0
  }

  struct LogSummary {
    var lastSeq: UInt64 = 0
    var terminal: [Int: (seq: UInt64, state: String)] = [:]
    /// The attempt each task's terminal event ended, on a node of a cluster (events with `node`).
    var clusterAttempt: [Int: Int64] = [:]
    var budgetOK = true
    /// What every segment read whole and valid would be sealed as, for the manifest check.
    var files: [Int: Manifest.Segment] = [:]
    /// The repair cut or moved aside this segment and every later one.
    var repairedFrom: Int?
    /// Seqs missing between one segment and the next: (first, last missing, the segment after).
    var gaps: [(first: UInt64, last: UInt64, before: String)] = []
  }

  /// Scans every segment; with `repair`, moves a corrupt or torn tail (and any later segment) aside.
  /// `vanished`: a listed segment was gone when read (the running daemon's retention removed it).
  static func checkLogOnce(
    _ p: Paths, repair: Bool, vanished: inout Bool, _ add: (Finding.Level, String) -> Void
  ) -> LogSummary {
    var s = LogSummary()
    let segments = LogSegments.indexes((try? FileSystem.list(p.events)) ?? [])
    var lines = 0
    var brokenAt: (segment: Int, offset: Int, why: String)? = nil
    for (i, idx) in segments.enumerated() {
      let path = p.events + "/" + LogSegments.name(idx)
      guard let bytes = (try? FileSystem.read(path)) ?? nil else {
        if !((try? FileSystem.list(p.events)) ?? []).contains(LogSegments.name(idx)) {
          vanished = true
          break
        }
        add(.fail, "cannot read \(LogSegments.name(idx))")
        continue
      }
      var firstSeq: UInt64? = nil
      var firstMs: Int64 = 0
      var lastMs: Int64 = 0
      let scan = LogSegments.scan(bytes, after: s.lastSeq) { v in
        let ms = v["ts"]?.string.flatMap(Timestamp.parse) ?? 0
        if firstSeq == nil {
          firstSeq = v["seq"]?.int.map { UInt64($0) }
          firstMs = ms
        }
        lastMs = ms
        guard let t = v["type"]?.string, let q = v["seq"]?.int else { return }
        if TaskState.terminalEventTypes.contains(t), let id = v["task_id"]?.string, let n = TaskID.parse(id) {
          // A node of a cluster ends a task once per attempt it claimed: a claim it lost (fenced, or
          // returned to the cluster) ends here, and the rescue may give the task back to it.
          let attempt = v["node"] != nil ? v["attempt"]?.int : nil
          if s.terminal[n] != nil && (attempt == nil || s.clusterAttempt[n] == attempt) {
            add(.fail, "\(id) has more than one terminal event (seq \(q))")
          }
          s.terminal[n] = (UInt64(q), String(t.dropFirst(5)))
          s.clusterAttempt[n] = attempt
        }
      }
      lines += scan.lines
      if let firstSeq, s.lastSeq > 0, firstSeq > s.lastSeq + 1 {
        s.gaps.append((s.lastSeq + 1, firstSeq - 1, LogSegments.name(idx)))
      }
      s.lastSeq = scan.lastSeq
      if scan.corruptAt == nil && !scan.tornTail, let firstSeq, scan.lines > 0 {
        s.files[idx] = Manifest.Segment(
          index: idx, bytes: bytes.count, crc32c: FastCRC32C.checksum(bytes), firstSeq: firstSeq, lastSeq: scan.lastSeq,
          firstMs: firstMs, lastMs: lastMs, lines: scan.lines)
      }
      if let at = scan.corruptAt {
        brokenAt = (i, at, scan.corruptReason ?? "bad line")
        break
      }
      if scan.tornTail {
        brokenAt = (i, scan.validEnd, "torn last line")
        break
      }
    }
    guard let b = brokenAt else {
      let first = segments.first.flatMap { s.files[$0]?.firstSeq } ?? 1
      add(
        .ok,
        "event log: \(segments.count) segment(s), \(lines) events, seq \(first)…\(s.lastSeq) strictly increasing\(s.gaps.isEmpty ? "" : " with gaps"), every line valid"
      )
      reportGaps(p, s, add)
      return s
    }
    let name = LogSegments.name(segments[b.segment])
    let later = segments[(b.segment + 1)...].map(LogSegments.name)
    let detail = "\(name) at byte \(b.offset): \(b.why)" + (later.isEmpty ? "" : "; \(later.count) later segment(s) follow")
    guard repair else {
      add(b.why == "torn last line" && later.isEmpty ? .warn : .fail, "event log: \(detail)")
      return s
    }
    let stamp = Clock.wallMs()
    s.repairedFrom = segments[b.segment]
    let path = p.events + "/" + name
    do throws(PosixError) {
      let bytes = try FileSystem.read(path) ?? []
      let aside = path + ".bad-\(stamp)"
      try FileSystem.writeAtomically(aside, Array(bytes[b.offset...]))
      let fd = try FileDescriptor.open(path, .writeOnly)
      try fd.truncate(to: b.offset)
      try fd.fsync()
      fd.close()
      for l in later { try FileSystem.rename(p.events + "/" + l, p.events + "/" + l + ".bad-\(stamp)") }
      try FileSystem.syncDirectory(p.events)
      add(
        .fixed,
        "event log: \(detail); moved \(bytes.count - b.offset) bytes to \(FileSystem.basename(aside))"
          + (later.isEmpty ? "" : " and \(later.count) later segment(s) to *.bad-\(stamp)") + "; the log now ends at seq \(s.lastSeq)")
    } catch {
      add(.fail, "event log: \(detail); could not move it aside: \(error)")
    }
    return s
  }

  /// Seqs missing inside the log (a segment removed by hand; events are numbered one by one, and
  /// retention removes only the oldest segments). A warning, not a failure: the log cannot get
  /// them back. It says whether the snapshot covers them (only their history is gone) or not
  /// (what they recorded, e.g. tasks submitted in them, is lost).
  static func reportGaps(_ p: Paths, _ s: LogSummary, _ add: (Finding.Level, String) -> Void) {
    guard !s.gaps.isEmpty else { return }
    let snapshot = ((try? FileSystem.read(p.taskQueue)) ?? nil).flatMap { try? JSON.parse($0) }?["seq"]?.int.map { UInt64($0) } ?? 0
    for g in s.gaps.prefix(5) {
      let covered = g.last <= snapshot
      add(
        .warn,
        "event log: seq \(g.first)–\(g.last) are missing before events/\(g.before) (a segment removed?); "
          + (covered
            ? "task-queue.json (seq \(snapshot)) covers them, so only their history is gone"
            : "no snapshot covers them (\(snapshot > 0 ? "task-queue.json is at seq \(snapshot)" : "there is no task-queue.json")): what they recorded is lost, e.g. tasks submitted in them")
      )
    }
  }

  /// `events/manifest.json` parses and every sealed segment it lists is there with the size and
  /// CRC32C it was sealed with. `--repair` sets an unreadable manifest aside (the daemon seals
  /// every segment again) and drops entries that no longer match, or that the log repair cut.
  static func checkManifest(_ p: Paths, log: LogSummary, repair: Bool, _ add: (Finding.Level, String) -> Void) {
    guard let bytes = (try? FileSystem.read(p.manifest)) ?? nil else {
      add(.ok, "no events/manifest.json yet (the daemon writes it when it seals a segment)")
      return
    }
    let m: Manifest
    do throws(Manifest.DecodeError) {
      m = try Manifest.decode(bytes)
    } catch {
      if repair {
        let aside = p.manifest + ".bad-\(Clock.wallMs())"
        try? FileSystem.rename(p.manifest, aside)
        add(.fixed, "events/manifest.json \(error): set aside as \(FileSystem.basename(aside)); the daemon seals every segment again")
      } else {
        add(.fail, "events/manifest.json \(error)")
      }
      return
    }
    var bad: [String] = []
    var keep = m
    keep.segments = []
    for s in m.segments {
      var why: String? = nil
      let whole = log.files[s.index]
      if let from = log.repairedFrom, s.index >= from {
        why = "\(s.name) was cut or moved aside by this repair"
      } else if let f = whole {
        if f.bytes != s.bytes {
          why = "\(s.name) is \(f.bytes) bytes, sealed at \(s.bytes)"
        } else if f.crc32c != s.crc32c {
          why = "\(s.name) does not match its CRC32C \(Manifest.hex(s.crc32c))"
        }
      } else if !FileSystem.exists(p.events + "/" + s.name) {
        why = "\(s.name) (seq \(s.firstSeq)–\(s.lastSeq)) is listed but missing"
      } else {
        why = "\(s.name) could not be checked (a broken segment before it)"
      }
      guard let why else {
        keep.segments.append(s)
        continue
      }
      bad.append(why)
      // Every line was just checked: a whole segment is sealed again as it is now.
      if let f = whole, log.repairedFrom.map({ s.index < $0 }) ?? true { keep.segments.append(f) }
    }
    let removing = m.removing.map(\.segment.name)
    let sealed = "\(m.segments.count) sealed segment(s)" + (m.removedThrough.map { ", log retained from seq \($0.lastSeq + 1)" } ?? "")
    if bad.isEmpty {
      add(
        .ok,
        "events/manifest.json: \(sealed), sizes and CRC32C match"
          + (removing.isEmpty ? "" : "; removal in progress: \(removing.joined(separator: ", "))"))
      return
    }
    guard repair else {
      add(.fail, "events/manifest.json: \(bad.prefix(5).joined(separator: "; "))")
      return
    }
    do throws(PosixError) {
      try FileSystem.writeAtomically(p.manifest, keep.encoded())
      add(
        .fixed,
        "events/manifest.json: \(bad.prefix(5).joined(separator: "; ")); whole segments recorded again as they are (every line checked), the rest dropped"
      )
    } catch {
      add(.fail, "events/manifest.json: \(bad.prefix(5).joined(separator: "; ")); could not rewrite it: \(error)")
    }
  }

  static func openFileLimit(_ pid: Int32) -> Int? {
    guard let b = (try? FileSystem.read("/proc/\(pid)/limits")) ?? nil else { return nil }
    for line in String(decoding: b, as: UTF8.self).split(separator: "\n") where line.hasPrefix("Max open files") {
      let parts = line.split(separator: " ")
      if parts.count >= 4 { return Int(parts[3]) }
    }
    return nil
  }
}

extension DoctorCommand {
  static let help = CommandHelp(
    "doctor", abstract: "check the directory: config, lock, socket, FIFOs, log, snapshots, budget, processes",
    usage: "cortex doctor [--repair]",
    details: "One finding per line; exit 0 when healthy (after a repair), 1 otherwise.",
    flags: [
      .flag(
        "--repair",
        help:
          "with no daemon running: move a corrupt or torn log tail aside (never deleted), remove stale socket and pid files, set a bad hot state aside, kill orphaned tasks"
      )
    ],
    examples: [
      ("cortex doctor", "check the directory, with the daemon running or not"),
      ("cortex doctor --repair", "after a crash, with no daemon running: set damage aside, then cortex start"),
    ])
}

extension DoctorCommand {
  /// Workers left by a daemon that died, waiting to be re-adopted, and how many of them hold a
  /// task (the hot state's worker slots, by pid). It said "2 workers keep their tasks" when one
  /// of the two was idle.
  static func waitingWorkers(_ pids: Set<Int32>, _ hot: HotState.View?) -> String {
    let n = pids.count
    let them = n == 1 ? "1 worker waits for the next daemon to re-adopt it" : "\(n) workers wait for the next daemon to re-adopt them"
    let wait = them + " (until orphan_timeout_s)"
    guard let hot else { return wait }
    let k = hot.workers.filter { pids.contains($0.pid) && $0.task != nil }.count
    if k == 0 { return wait + "; none holds a task" }
    if n == 1 { return wait + "; it holds its task" }
    return wait + "; \(k) of them hold\(k == 1 ? "s a task" : " tasks")"
  }
}
