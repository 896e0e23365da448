import CortexCore
import Posix

/// Drives a real daemon with synthetic agents over many control-socket connections in one epoll
/// loop: closed loop (N agents, each submitting and waiting for its task) or open loop (a rate).
/// Measures every acknowledgement and completion, samples the daemon every `sampleMs`, and can
/// inject chaos (kill -9 of workers and of the daemon, which it then restarts).
final class LoadEngine {
  enum Shape {
    case agents(Int)
    case rate(Double)
  }
  struct Phase {
    var shape: Shape
    var durationMs: Int64
    var label: String
  }
  struct Chaos {
    var workerKillEveryMs: Int64
    var daemonKillEveryMs: Int64
  }

  final class Conn {
    enum State {
      case idle
      case acking(t0: Int64, spec: Int)
      case waiting(t0: Int64, id: String)
      case rewaiting([String])
    }
    let fd: FileDescriptor
    var lines = LineBuffer(maxLine: 64 << 20)
    var state = State.idle
    var agent: Int
    var notBefore: Int64 = 0
    init(fd: FileDescriptor, agent: Int) {
      self.fd = fd
      self.agent = agent
    }
  }

  /// One row of the .ramp.csv.
  struct Sample {
    var t: Double, step: String, load: Double, completed: Int, throughput: Double, inFlight: Int
    var e2eP50: Double?, e2eP99: Double?, ackP99: Double?, completionPct: Double
    var daemonRSS: Double?, workerRSS: Double?, daemonFDs: Int?, zombies: Int, daemonThreads: Int?
  }

  let bench: Bench
  let options: LoadOptions
  let epoll: Epoll
  var rng = SplitMix64(seed: 2026)
  var conns: [Int32: Conn] = [:]
  /// Closed-loop agents' connections, by agent number (kept with `conns`).
  var byAgent: [Int: Conn] = [:]
  var samples: [Sample] = []
  // Totals.
  var submitted = 0, accepted = 0, refused = 0, completed = 0, failed = 0, unacknowledged = 0, unsent = 0
  static let maxConnections = 1500
  var ackMs: [Double] = [], e2eMs: [Double] = []
  var acked: [String] = []
  var maxConcurrent = 0
  var zombiesSeen = 0
  var transientZombies = 0
  private var lastZombies: Set<Int32> = []
  var chaosEvents: [String] = []
  var orphanedWaits: [String] = []
  private var intervalE2E: [Double] = [], intervalAck: [Double] = [], intervalCompleted = 0
  private var progressTTY = FileDescriptor.standardError.isTerminal
  let startMs = Clock.monotonicMs()
  var daemonPID: Int32

  init(bench: Bench, options: LoadOptions) throws(CLIError) {
    self.bench = bench
    self.options = options
    daemonPID = bench.pid
    do { epoll = try Epoll() } catch { throw CLIError(ExitCode.failure, "epoll: \(error)") }
    _ = Processes.raiseOpenFileLimit(65536)
  }

  var inFlight: Int {
    conns.values.reduce(0) { n, c in
      if case .idle = c.state { return n }
      return n + 1
    }
  }

  func connect(agent: Int) -> Conn? {
    guard let fd = try? UnixSocket.connect(path: bench.ctx.paths.socket) else { return nil }
    try? fd.setNonBlocking(true)
    let c = Conn(fd: fd, agent: agent)
    do { try epoll.add(fd, .input, token: UInt64(UInt32(bitPattern: fd.raw))) } catch {
      fd.close()
      return nil
    }
    conns[fd.raw] = c
    if agent >= 0 { byAgent[agent] = c }
    return c
  }

  func drop(_ c: Conn) {
    epoll.remove(c.fd)
    c.fd.close()
    conns[c.fd.raw] = nil
    if byAgent[c.agent] === c { byAgent[c.agent] = nil }
  }

  func send(_ c: Conn, _ v: JSON) -> Bool {
    var b = v.encodedBytes()
    b.append(10)
    var off = 0
    while off < b.count {
      do {
        off += try c.fd.writeSome(Array(b[off...]))
      } catch {
        if error.isWouldBlock {
          _ = c.fd.waitWritable(timeoutMs: 100)
          continue
        }
        return false
      }
    }
    return true
  }

  func submit(_ c: Conn, now: Int64) {
    let spec = options.spec(&rng)
    submitted += 1
    if send(c, .object([("op", .string("submit")), ("tasks", .array([spec]))])) {
      c.state = .acking(t0: now, spec: 0)
    } else {
      unacknowledged += 1
      broken(c)
    }
  }

  /// The connection died (the daemon was killed): what it had acknowledged is waited for again
  /// after the restart; an unacknowledged submit was never accepted.
  func broken(_ c: Conn) {
    switch c.state {
    case .acking: unacknowledged += 1
    case .waiting(_, let id): orphanedWaits.append(id)
    case .rewaiting(let ids): orphanedWaits += ids
    case .idle: break
    }
    c.state = .idle
    drop(c)
  }

  func handle(_ c: Conn, _ v: JSON, now: Int64) {
    switch c.state {
    case .acking(let t0, _):
      if v["ok"]?.bool == true, let id = v["ids"]?.array?.first?.string {
        accepted += 1
        acked.append(id)
        let ms = Double(now - t0) / 1e6
        ackMs.append(ms)
        intervalAck.append(ms)
        if send(c, .object([("op", .string("wait")), ("ids", .array([.string(id)]))])) {
          c.state = .waiting(t0: t0, id: id)
        } else {
          orphanedWaits.append(id)
          c.state = .idle
          drop(c)
        }
      } else {
        refused += 1
        c.state = .idle
        c.notBefore = now + 20_000_000  // back off 20 ms after a refusal
      }
    case .waiting(let t0, _):
      if v["tasks"]?.array?.first?["state"]?.string == "succeeded" { completed += 1 } else { failed += 1 }
      intervalCompleted += 1
      let ms = Double(now - t0) / 1e6
      e2eMs.append(ms)
      intervalE2E.append(ms)
      c.state = .idle
    case .rewaiting:
      for t in v["tasks"]?.array ?? [] {
        if t["state"]?.string == "succeeded" { completed += 1 } else { failed += 1 }
      }
      c.state = .idle
      drop(c)
    case .idle: break
    }
  }

  func readable(_ c: Conn, now: Int64) {
    var chunk: [UInt8] = []
    while true {
      do {
        let n = try c.fd.read(appendingTo: &chunk, max: 1 << 16)
        if n == 0 {
          broken(c)
          return
        }
      } catch {
        if !error.isWouldBlock {
          broken(c)
          return
        }
        break
      }
    }
    c.lines.append(chunk)
    while case .line(let l) = c.lines.next() {
      guard let v = try? JSON.parse(l) else { continue }
      handle(c, v, now: now)
    }
  }

  /// Runs the phases in order, then drains what is in flight (up to `drainMs`).
  func run(_ phases: [Phase], chaos: Chaos? = nil, drainMs: Int64 = 120_000) {
    var events: [(token: UInt64, events: Epoll.Events)] = []
    var nextSample = Clock.monotonicMs() + options.sampleMs
    var nextWorkerKill = chaos.map { Clock.monotonicMs() + $0.workerKillEveryMs } ?? Int64.max
    var nextDaemonKill = chaos.map { Clock.monotonicMs() + $0.daemonKillEveryMs } ?? Int64.max
    for phase in phases {
      let phaseStart = Clock.monotonicMs()
      var issued = 0
      while Clock.monotonicMs() - phaseStart < phase.durationMs {
        let nowNs = Clock.monotonicNs()
        let nowMs = nowNs / 1_000_000
        switch phase.shape {
        case .agents(let n):
          // Agents 0..<n submit whenever idle; connections are made on demand.
          for a in 0..<n {
            let c = byAgent[a] ?? connect(agent: a)
            guard let c else { break }
            if case .idle = c.state, c.notBefore <= nowNs { submit(c, now: nowNs) }
          }
        case .rate(let r):
          let due = Int(Double(nowMs - phaseStart) * r / 1000) - issued
          if due > 0 {
            for _ in 0..<min(due, 1000) {
              // At most `maxConnections` open: past that, offered load the client cannot even send
              // is counted (the system is saturated), not queued without bound.
              let idle = conns.values.first { if case .idle = $0.state { return true } else { return false } }
              guard let c = idle ?? (conns.count < Self.maxConnections ? connect(agent: -1) : nil) else {
                unsent += 1
                issued += 1
                continue
              }
              submit(c, now: nowNs)
              issued += 1
            }
          }
        }
        maxConcurrent = max(maxConcurrent, inFlight)
        epoll.wait(timeoutMs: 2, into: &events)
        let t = Clock.monotonicNs()
        for (token, _) in events {
          if let c = conns[Int32(bitPattern: UInt32(truncatingIfNeeded: token))] { readable(c, now: t) }
        }
        let ms = Clock.monotonicMs()
        if ms >= nextWorkerKill, let chaos {
          killRandomWorker()
          nextWorkerKill = ms + chaos.workerKillEveryMs / 2 + Int64(rng.below(chaos.workerKillEveryMs))
        }
        if ms >= nextDaemonKill, let chaos {
          killAndRestartDaemon()
          nextDaemonKill = ms + chaos.daemonKillEveryMs
        }
        if ms >= nextSample {
          sample(step: phase.label, load: phase.shape)
          nextSample = ms + options.sampleMs
        }
      }
    }
    // Drain: no new submits; wait for what is in flight, then the orphaned waits.
    let deadline = Clock.monotonicMs() + drainMs
    while inFlight > 0 && Clock.monotonicMs() < deadline {
      epoll.wait(timeoutMs: 50, into: &events)
      let t = Clock.monotonicNs()
      for (token, _) in events {
        if let c = conns[Int32(bitPattern: UInt32(truncatingIfNeeded: token))] { readable(c, now: t) }
      }
      if Clock.monotonicMs() >= nextSample {
        sample(step: "drain", load: .agents(0))
        nextSample = Clock.monotonicMs() + options.sampleMs
      }
    }
    if !orphanedWaits.isEmpty, let c = connect(agent: -2) {
      let ids = orphanedWaits
      orphanedWaits = []
      if send(c, .object([("op", .string("wait")), ("ids", .array(ids.map { .string($0) }))])) {
        c.state = .rewaiting(ids)
        while conns[c.fd.raw] != nil && Clock.monotonicMs() < deadline + 60_000 {
          epoll.wait(timeoutMs: 100, into: &events)
          readable(c, now: Clock.monotonicNs())
        }
      }
    }
    sample(step: "end", load: .agents(0))
  }

  func killRandomWorker() {
    // Re-adopted workers are no longer the daemon's children (SPEC §14): find them by directory.
    let workers = Processes.belonging(toDirectory: bench.ctx.paths.root).filter {
      !$0.isZombie && $0.commandLine.count > 1 && $0.commandLine[1] == "worker"
    }
    guard !workers.isEmpty else { return }
    let w = workers[Int(rng.below(Int64(workers.count)))]
    if Processes.signal(w.pid, Signal.kill) { chaosEvents.append("t=\(elapsedS())s kill -9 worker pid \(w.pid)") }
  }

  func killAndRestartDaemon() {
    guard Processes.signal(daemonPID, Signal.kill) else { return }
    chaosEvents.append("t=\(elapsedS())s kill -9 daemon pid \(daemonPID)")
    _ = Processes.wait(daemonPID)
    for c in Array(conns.values) { broken(c) }
    // The workers keep their tasks; the new daemon on the same directory re-adopts them (SPEC §14).
    if let ping = try? DaemonControl.start(bench.ctx, workers: options.workers, timeoutS: 60) {
      daemonPID = Int32(ping["pid"]?.int ?? 0)
      bench.pid = daemonPID
      chaosEvents.append("t=\(elapsedS())s daemon restarted, pid \(daemonPID)")
    }
  }

  func elapsedS() -> Double { Double(Clock.monotonicMs() - startMs) / 1000 }

  func sample(step: String, load: Shape) {
    let (drss, dfds, dthreads) = Bench.usage(daemonPID)
    var workerRSS = 0.0
    var zombiePIDs: Set<Int32> = []
    for p in Processes.all() where p.parent == daemonPID {
      if p.isZombie { zombiePIDs.insert(p.pid) } else { workerRSS += Bench.usage(p.pid).rss ?? 0 }
    }
    // A process is a zombie from its death until its parent reaps it (microseconds for the daemon);
    // one seen in two samples in a row was left unreaped for a whole interval: that is the defect.
    let zombies = zombiePIDs.intersection(lastZombies).count
    transientZombies += zombiePIDs.subtracting(lastZombies).count
    lastZombies = zombiePIDs
    zombiesSeen = max(zombiesSeen, zombies)
    let s1 = intervalE2E.sorted(), a1 = intervalAck.sorted()
    func q(_ s: [Double], _ p: Double) -> Double? { s.isEmpty ? nil : s[min(s.count - 1, Int(Double(s.count) * p))] }
    let loadValue: Double
    switch load {
    case .agents(let n): loadValue = Double(n)
    case .rate(let r): loadValue = r
    }
    let t = elapsedS()
    let row = Sample(
      t: t, step: step, load: loadValue, completed: completed + failed,
      throughput: Double(intervalCompleted) / (Double(options.sampleMs) / 1000), inFlight: inFlight, e2eP50: q(s1, 0.5),
      e2eP99: q(s1, 0.99), ackP99: q(a1, 0.99), completionPct: accepted == 0 ? 100 : Double(completed) / Double(accepted) * 100,
      daemonRSS: drss, workerRSS: workerRSS, daemonFDs: dfds, zombies: zombies, daemonThreads: dthreads)
    samples.append(row)
    intervalE2E.removeAll(keepingCapacity: true)
    intervalAck.removeAll(keepingCapacity: true)
    intervalCompleted = 0
    let line =
      "[\(step)] \(Int(t))s  \(completed + failed) done  \(Int(row.throughput))/s  in flight \(row.inFlight)  "
      + "p99 \(row.e2eP99.map { String(Int($0)) } ?? "-") ms  rss \(Int(drss ?? 0)) MiB"
    try? FileDescriptor.standardError.writeAll(progressTTY ? "\r\u{1B}[K" + line : line + "\n")
  }

  static let csvHeader =
    "t_s,step,load,completed,throughput_per_s,in_flight,e2e_p50_ms,e2e_p99_ms,ack_p99_ms,completion_pct,daemon_rss_mib,worker_rss_mib,daemon_fds,zombies,daemon_threads"

  var csv: String {
    func o(_ d: Double?) -> String { d.map { String(Double(Int(($0 * 1000).rounded())) / 1000) } ?? "" }
    var s = Self.csvHeader + "\n"
    for r in samples {
      s +=
        [
          o(r.t), r.step, o(r.load), String(r.completed), o(r.throughput), String(r.inFlight), o(r.e2eP50), o(r.e2eP99), o(r.ackP99),
          o(r.completionPct), o(r.daemonRSS), o(r.workerRSS), r.daemonFDs.map(String.init) ?? "", String(r.zombies),
          r.daemonThreads.map(String.init) ?? "",
        ].joined(separator: ",") + "\n"
    }
    return s
  }
}
