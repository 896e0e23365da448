import CortexCore
import XCTest

/// Drives a `Scheduler` the way the daemon does, with an injected clock, and keeps every action.
struct Sim {
  var s: Scheduler
  var now: Int64 = 1_000_000
  var log: [Event] = []
  var replies: [(ClientID, JSON)] = []
  var sent: [(Int, DaemonToWorker)] = []
  var nextClient: ClientID = 1
  var nextPid: Int32 = 1000
  var terminalEvents: [Int: Int] = [:]
  /// Workers that do not send heartbeats when time advances (as if stopped with SIGSTOP).
  var silent: Set<Int> = []
  var pending: [Scheduler.Input] = []

  init(workers: Int = 2, seed: UInt64 = 1, configure: (inout Config) -> Void = { _ in }) {
    var c = Config()
    c.workers = workers
    configure(&c)
    s = Scheduler(config: c, seed: seed)
    var out: [Action] = []
    s.start(now: now, into: &out)
    absorb(out)
  }

  mutating func absorb(_ out: [Action]) {
    for a in out {
      switch a {
      case .log(let e):
        log.append(e)
        if let n = e.task, TaskState.terminalEventTypes.contains(e.type) { terminalEvents[n, default: 0] += 1 }
      case .reply(let c, let v, _): replies.append((c, v))
      case .send(let w, let m):
        sent.append((w, m))
        // A worker told to exit does so, and the daemon reaps it.
        if case .exit = m, s.workers[w - 1].pid != 0 {
          pending.append(.workerExited(w, pid: s.workers[w - 1].pid, status: "exit code 0", crashed: false))
        }
      case .killWorker(let w, let pid):
        pending.append(.workerExited(w, pid: pid, status: "killed by signal 9", crashed: true))
      case .spawnWorker(let w):
        // The daemon spawns it; the worker says it is ready.
        nextPid += 1
        let pid = nextPid
        feed(.workerSpawned(w, pid: pid))
        feed(.worker(w, .ready(pid: pid)))
      default: break
      }
    }
  }

  mutating func feed(_ input: Scheduler.Input) {
    var out: [Action] = []
    s.handle(input, now: now, into: &out)
    absorb(out)
    while !pending.isEmpty {
      let next = pending.removeFirst()
      out = []
      s.handle(next, now: now, into: &out)
      absorb(out)
    }
  }

  /// Submits and returns the reply.
  @discardableResult
  mutating func submit(_ specs: [String]) -> JSON {
    let c = nextClient
    nextClient += 1
    let decoded = specs.map { try! TaskSpec.decode(try! JSON.parse($0)) }
    feed(.submit(c, decoded))
    return replies.last { $0.0 == c }!.1
  }

  mutating func submitOne(_ spec: String) -> Int {
    let r = submit([spec])
    guard let id = r["ids"]?.array?.first?.string, let n = TaskID.parse(id) else {
      XCTFail("refused: \(r.encoded())")
      return 0
    }
    return n
  }

  /// Tasks sent to workers, in order.
  var runOrder: [Int] {
    sent.compactMap { if case .run(let n, _, _, _, _, _) = $0.1 { return n } else { return nil } }
  }

  func worker(of n: Int) -> Int? { s.tasks[n]?.worker }

  mutating func finish(_ n: Int, exit: Int32 = 0, tokens: Int = 0, error: String? = nil) {
    guard let w = worker(of: n) else { return XCTFail("\(TaskID.format(n)) has no worker") }
    feed(
      .worker(w, .done(TaskOutcome(task: n, exitCode: exit, signal: nil, tokensUsed: tokens, startedMs: now, endedMs: now, error: error))))
  }

  /// Moves the clock; live workers (not `silent`) send a heartbeat on the way, as real ones do.
  mutating func advance(_ ms: Int64) {
    var left = ms
    while left > 0 {
      let step = min(left, 1000)
      now += step
      left -= step
      for w in s.workers where w.pid != 0 && !silent.contains(w.slot) { feed(.worker(w.slot, .heartbeat)) }
      feed(.tick)
    }
    if ms == 0 { feed(.tick) }
  }

  func events(_ type: String, task n: Int? = nil) -> [Event] {
    log.filter { $0.type == type && (n == nil || $0.task == n) }
  }

  /// The invariants that must hold after every input.
  func checkInvariants(file: StaticString = #filePath, line: UInt = #line) {
    // Every group that may start a task now is among those a decision looks at.
    var copy = s
    XCTAssertEqual(copy.startableMissing(now: now), [], "groups missing from fleet.startable", file: file, line: line)
    XCTAssertGreaterThanOrEqual(s.budgetAvailable, 0, "budget went negative", file: file, line: line)
    XCTAssertEqual(
      s.config.tokenBudgetTotal, s.tokensReserved + s.tokensUsed + s.budgetAvailable, file: file, line: line)
    let reservedSum = s.tasks.values.reduce(0) { $0 + $1.reserved }
    XCTAssertEqual(reservedSum, s.tokensReserved, "reserved tokens disagree with the tasks", file: file, line: line)
    for (n, c) in terminalEvents where c != 1 {
      XCTFail("\(TaskID.format(n)) has \(c) terminal events", file: file, line: line)
    }
    var byState: [TaskState: Int] = [:]
    for t in s.tasks.values { byState[t.state, default: 0] += 1 }
    for st in [TaskState.queued, .assigned, .running] {
      XCTAssertEqual(byState[st] ?? 0, s.counts[st] ?? 0, "count of \(st) disagrees", file: file, line: line)
    }
    for w in s.workers where w.state == .busy {
      guard let n = w.task, let t = s.tasks[n] else {
        XCTFail("busy \(w.id) has no task", file: file, line: line)
        continue
      }
      XCTAssertTrue(t.state == .assigned || t.state == .running, "\(w.id) runs \(t.id) in \(t.state)", file: file, line: line)
      XCTAssertEqual(t.worker, w.slot, file: file, line: line)
    }
    for t in s.tasks.values where t.state == .assigned || t.state == .running {
      XCTAssertEqual(s.workers[t.worker! - 1].task, t.number, "\(t.id) is not on its worker", file: file, line: line)
    }
  }
}
