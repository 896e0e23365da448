import CortexCore
import Posix

/// Re-adoption of the previous daemon's workers at start (SPEC §14, docs/readopt.md).
///
/// Every spawn is recorded in `fifo/worker-NNN.id` (pid, /proc start time, a random token the
/// worker gets in its environment). A starting daemon reads those records, checks each pid's start
/// time, reopens the slot's FIFOs, drops whatever the old daemon left unread on `.out` (the worker
/// repeats its state in its `hello`), sends `adopt` and waits briefly for every `hello`.
/// `Readoption.decide` (pure, in CortexCore) then says adopt, kill or gone, and
/// `Scheduler.applyReadoption` puts the result into the recovered state before
/// `settleAfterRecovery` retries what no adopted worker holds.
///
/// An adopted worker is not our child after a kill -9 of the old daemon (it was re-parented), so
/// its exit is seen through a pidfd rather than waitpid; after `cortex restart` (execve, same pid)
/// it still is, and whichever notices first handles it.
extension Daemon {
  /// How long the start waits for the `hello` of every live worker.
  static let handshakeMs: Int64 = 3000

  struct ReadoptSummary {
    var adopted = 0
    var running = 0
    var completed = 0
    var killed = 0
    var gone = 0
  }

  /// Finds, proves and re-adopts the previous daemon's workers; the rest of their files are
  /// removed and any other worker process of this directory is told to stop.
  @discardableResult
  func readoptWorkers(_ s: inout Scheduler, now t: Int64, into out: inout [Action]) -> ReadoptSummary {
    var summary = ReadoptSummary()
    var adoptedSlots: Set<Int> = []
    var adoptedPids: Set<Int32> = []
    // Cluster mode hands a dead node's tasks to other nodes; re-adoption there is not built.
    let identities = config.cluster == nil ? Self.readIdentities(paths) : []
    let expected = s.inFlightBySlot()

    // Handshake with every live process that is still the one recorded (pid and start time).
    var probes: [Int: Readoption.Probe] = [:]
    var pending: [Int: WorkerChannel] = [:]
    for id in identities {
      let st = Processes.info(id.pid)?.isZombie == true ? nil : Processes.startTime(id.pid)
      let probe: Readoption.Probe = st.map { .alive(startTime: $0) } ?? .gone
      probes[id.slot] = probe
      guard probe == .alive(startTime: id.startTime), let ch = try? WorkerChannel(slot: id.slot, paths: paths) else { continue }
      Self.discardOutput(ch)
      ch.send(DaemonToWorker.adopt.encodedLine())
      pending[id.slot] = ch
    }
    var hellos: [Int: WorkerReport] = [:]
    var leftovers: [Int: [WorkerToDaemon]] = [:]
    let deadline = Clock.monotonicMs() + Self.handshakeMs
    var waiting = Set(pending.keys)
    while !waiting.isEmpty && Clock.monotonicMs() < deadline {
      for slot in waiting {
        guard let ch = pending[slot] else { continue }
        ch.flush()
        _ = ch.readAvailable()
        while case .line(let line) = ch.lines.next() {
          guard let msg = try? WorkerToDaemon.decode(line) else { continue }
          if case .hello(let r) = msg, hellos[slot] == nil {
            hellos[slot] = r
          } else if hellos[slot] != nil {
            leftovers[slot, default: []].append(msg)  // said after the hello: current
          }  // before the hello: stale, repeated by the hello
        }
        if hellos[slot] != nil { waiting.remove(slot) }
      }
      if !waiting.isEmpty { sleepMs(2) }
    }

    for id in identities {
      let spool = Self.readSpool(paths, id.slot)
      let decision = Readoption.decide(
        identity: id, probe: probes[id.slot] ?? .gone, hello: hellos[id.slot], spool: spool, expected: expected[id.slot])
      switch decision {
      case .adopt(let d):
        guard let ch = pending.removeValue(forKey: id.slot), adopt(ch, pid: id.pid) else {
          // Proven, but it cannot be watched: treat it as one that cannot be adopted.
          Self.kill(id.pid, taskGroup: hellos[id.slot]?.taskPid ?? 0)
          s.applyReadoption(
            slot: id.slot, pid: id.pid, .kill(reason: "unwatchable", detail: "cannot watch pid \(id.pid)"), now: t, into: &out)
          summary.killed += 1
          continue
        }
        adoptedSlots.insert(id.slot)
        adoptedPids.insert(id.pid)
        summary.adopted += 1
        if case .running = d { summary.running += 1 }
        if case .completed = d { summary.completed += 1 }
        s.applyReadoption(slot: id.slot, pid: id.pid, decision, now: t, into: &out)
        for msg in leftovers[id.slot] ?? [] { s.handle(.worker(id.slot, msg), now: t, into: &out) }
      case .kill:
        Self.kill(id.pid, taskGroup: hellos[id.slot]?.taskPid ?? 0)
        summary.killed += 1
        s.applyReadoption(slot: id.slot, pid: id.pid, decision, now: t, into: &out)
      case .gone(_, let completed):
        summary.gone += 1
        if completed != nil { summary.completed += 1 }
        s.applyReadoption(slot: id.slot, pid: id.pid, decision, now: t, into: &out)
      }
    }
    for (_, ch) in pending { ch.close() }
    sweepUnadopted(keeping: adoptedSlots, pids: adoptedPids)
    if !identities.isEmpty {
      out.append(
        .log(
          Event(
            "daemon.readopted", reason: "restart",
            detail:
              "\(summary.adopted) workers re-adopted (\(summary.running) with a running task, \(summary.completed) completions accepted), \(summary.killed) killed, \(summary.gone) gone",
            fields: [
              ("adopted", .int(Int64(summary.adopted))), ("running", .int(Int64(summary.running))),
              ("completed", .int(Int64(summary.completed))), ("killed", .int(Int64(summary.killed))),
              ("gone", .int(Int64(summary.gone))),
            ])))
    }
    return summary
  }

  /// Takes a proven worker's channel into the loop and watches its pid. False when it cannot.
  func adopt(_ ch: WorkerChannel, pid: Int32) -> Bool {
    do throws(PosixError) {
      let pidFD = try Processes.openPidFD(pid)
      try epoll.add(ch.output, .input, token: Self.kindWorkerOut | UInt64(ch.slot))
      try epoll.add(pidFD, .input, token: Self.kindWorkerPid | UInt64(ch.slot))
      ch.pidFD = pidFD
      ch.pid = pid
      channels[ch.slot] = ch
      pidToSlot[pid] = ch.slot
      return true
    } catch {
      return false
    }
  }

  /// An adopted worker's pidfd became readable: it exited. Reaped here if it is our child (after
  /// `cortex restart`); otherwise its new parent reaps it and its status is unknown.
  func adoptedWorkerExited(_ slot: Int, now t: Int64) {
    guard let ch = channels[slot], let fd = ch.pidFD else { return }
    epoll.remove(fd)
    fd.close()
    ch.pidFD = nil
    let pid = ch.pid
    guard pidToSlot[pid] == slot else { return }  // already reaped as a child
    var text = "exited (adopted: not our child, status unknown)"
    var crashed = scheduler.workers.indices.contains(slot - 1) && scheduler.workers[slot - 1].state != .stopping
    if let (_, status) = Processes.reap(pid) {
      switch status {
      case .exited(let c):
        text = "exit code \(c)"
        crashed = c != 0
      case .signaled(let sig):
        text = "killed by \(Signal.name(sig))"
        crashed = true
      }
    }
    pidToSlot[pid] = nil
    _ = ch.readAvailable()
    processWorkerLines(ch, now: t)
    feed(.workerExited(slot, pid: pid, status: text, crashed: crashed), now: t)
  }

  /// Spawns the slot's worker with a fresh token and records who it is for a later daemon.
  func spawnRecorded(_ ch: WorkerChannel) throws(PosixError) -> Int32 {
    if let fd = ch.pidFD {
      epoll.remove(fd)
      fd.close()
      ch.pidFD = nil
    }
    let token = Self.newToken()
    let pid = try ch.spawn(
      executable: executable, paths: paths, heartbeatMs: Int(Numbers.ms(fromSeconds: config.heartbeatIntervalS)),
      orphanTimeoutMs: orphanTimeoutMs, token: token, log: workerLog)
    var w = JSONWriter(capacity: 128)
    w.beginObject()
    w.field("slot", ch.slot)
    w.field("pid", pid)
    w.field("start_time", Processes.startTime(pid) ?? 0)
    w.field("token", token)
    w.endObject()
    w.bytes.append(10)
    // Not durable: it must outlive the daemon, not the machine (the worker would not either).
    try? FileSystem.writeAtomically(paths.workerIdentity(ch.slot), w.bytes, durable: false)
    return pid
  }

  /// In cluster mode another node takes over a dead node's tasks, so its workers must not keep
  /// them: they leave at once, as before SPEC §14.
  var orphanTimeoutMs: Int { config.cluster != nil ? 0 : Int(Numbers.ms(fromSeconds: config.orphanTimeoutS)) }

  static func newToken() -> String {
    var bytes: [UInt8] = []
    if let fd = try? FileDescriptor.open("/dev/urandom", .readOnly) {
      _ = try? fd.read(appendingTo: &bytes, max: 16)
      fd.close()
    }
    if bytes.count < 16 {
      var rng = SplitMix64(seed: UInt64(truncatingIfNeeded: Clock.monotonicNs() ^ Clock.wallMs()))
      bytes = (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }
    let hex = Array("0123456789abcdef".utf8)
    return String(decoding: bytes.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
  }

  /// Every readable `fifo/worker-NNN.id`.
  static func readIdentities(_ paths: Paths) -> [Readoption.Identity] {
    var out: [Readoption.Identity] = []
    for name in ((try? FileSystem.list(paths.fifo)) ?? []).sorted() where name.hasSuffix(".id") {
      guard let slot = WorkerID.parse(String(name.dropLast(3))),
        let bytes = (try? FileSystem.read(paths.workerIdentity(slot))) ?? nil, let v = try? JSON.parse(bytes),
        let pid = v["pid"]?.int, pid > 0, pid <= Int64(Int32.max), let st = v["start_time"]?.int, st > 0,
        let token = v["token"]?.string
      else { continue }
      out.append(Readoption.Identity(slot: slot, pid: Int32(pid), startTime: UInt64(st), token: token))
    }
    return out
  }

  static func readSpool(_ paths: Paths, _ slot: Int) -> WorkerReport? {
    guard let bytes = (try? FileSystem.read(paths.workerSpool(slot))) ?? nil,
      let line = bytes.split(separator: 10, omittingEmptySubsequences: true).first,
      let v = try? JSON.parse(line)
    else { return nil }
    return try? WorkerReport.decode(v)
  }

  /// Drops what the previous daemon left unread on `.out`; the `hello` restates it.
  static func discardOutput(_ ch: WorkerChannel) {
    var scratch: [UInt8] = []
    while let n = try? ch.output.read(appendingTo: &scratch, max: 65536), n > 0 { scratch.removeAll(keepingCapacity: true) }
    ch.lines.reset()
  }

  static func kill(_ pid: Int32, taskGroup: Int32) {
    if taskGroup > 1 { Processes.signalGroup(taskGroup, Signal.kill) }
    Processes.signal(pid, Signal.kill)
  }

  /// Every slot not adopted starts from fresh FIFOs (a worker that was not adopted may still hold
  /// the old ones for a moment: it must never read a command meant for its successor), and any
  /// other worker process of this directory is told to stop (SIGTERM: it ends its task's group).
  func sweepUnadopted(keeping slots: Set<Int>, pids: Set<Int32>) {
    for name in (try? FileSystem.list(paths.fifo)) ?? [] {
      guard let dot = name.firstIndex(of: "."), let slot = WorkerID.parse(String(name[..<dot])), !slots.contains(slot) else { continue }
      try? FileSystem.remove(paths.fifo + "/" + name)
    }
    let me = Processes.currentID
    for p in Processes.all() where p.pid != me && !pids.contains(p.pid) && !p.isZombie {
      let argv = p.commandLine
      guard argv.count >= 4, argv[1] == "worker", let i = argv.firstIndex(of: "--dir"), i + 1 < argv.count, argv[i + 1] == paths.root
      else { continue }
      Processes.signal(p.pid, Signal.term)
    }
  }
}
