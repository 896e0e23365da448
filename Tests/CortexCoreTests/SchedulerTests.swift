import CortexCore
import XCTest

/// The pure scheduler, fed inputs with an injected clock.
final class SchedulerTests: XCTestCase {
  let sleepy = #"{"command":["sleep","1"]}"#
  func spec(_ priority: String, budget: Int = 0) -> String {
    #"{"command":["true"],"priority":"\#(priority)","token_budget":\#(budget)}"#
  }

  func testPoolStartsAndEveryWorkerBecomesIdle() {
    let sim = Sim(workers: 3)
    XCTAssertEqual(sim.s.idleWorkers, 3)
    XCTAssertEqual(sim.events("worker.ready").count, 3)
    XCTAssertTrue(sim.events("worker.unhealthy").isEmpty)
  }

  func testPriorityOrderAndFIFOWithinAPriority() {
    var sim = Sim(workers: 1)
    let first = sim.submitOne(sleepy)  // occupies the only worker
    let low = sim.submitOne(spec("low"))
    let med1 = sim.submitOne(spec("medium"))
    let high = sim.submitOne(spec("high"))
    let med2 = sim.submitOne(spec("medium"))
    let crit = sim.submitOne(spec("critical"))
    XCTAssertEqual(sim.runOrder, [first])
    var current = first
    for _ in 0..<5 {
      sim.finish(current)
      current = sim.runOrder.last!
      sim.checkInvariants()
    }
    XCTAssertEqual(sim.runOrder, [first, crit, high, med1, med2, low])
  }

  func testReservedWorkersAreKeptForCritical() {
    var sim = Sim(workers: 2) { $0.reserveCritical = 1 }
    let a = sim.submitOne(sleepy)
    let b = sim.submitOne(sleepy)
    XCTAssertEqual(sim.runOrder, [a], "the last idle worker is reserved")
    XCTAssertEqual(sim.events("task.waiting", task: b).last?.reason, "reserved_for_critical")
    let c = sim.submitOne(#"{"command":["true"],"priority":"critical"}"#)
    XCTAssertEqual(sim.runOrder, [a, c])
    // The waiting reason is logged once, not on every tick.
    sim.advance(100)
    sim.advance(100)
    XCTAssertEqual(sim.events("task.waiting", task: b).count, 1)
  }

  func testQueueFullRefusesTheWholeBatchAndChangesNothing() {
    var sim = Sim(workers: 1) { $0.maxQueue = 3 }
    _ = sim.submitOne(sleepy)
    for _ in 0..<3 { _ = sim.submitOne(sleepy) }
    let before = sim.s.counts
    let r = sim.submit([sleepy])
    XCTAssertEqual(r["ok"]?.bool, false)
    XCTAssertEqual(r["code"]?.int, 75)
    XCTAssertEqual(r["reason"]?.string, "queue_full")
    XCTAssertEqual(sim.s.counts, before)
    XCTAssertEqual(sim.events("task.rejected").last?.reason, "queue_full")
    XCTAssertEqual(sim.s.nextTaskNumber, 5)
  }

  func testInvalidBatchMemberNamesItsIndexAndAcceptsNothing() {
    var sim = Sim(workers: 1)
    let r = sim.submit([sleepy, #"{"command":["true"],"type":"wizard"}"#])
    XCTAssertEqual(r["code"]?.int, 65)
    XCTAssertEqual(r["field"]?.string, "[2].type", "positions count from 1")
    XCTAssertTrue(sim.s.tasks.isEmpty)
    XCTAssertTrue(sim.events("task.submitted").isEmpty)
  }

  func testBudgetIsReservedAtDispatchAndReleasedAtTheEnd() {
    var sim = Sim(workers: 3) { $0.tokenBudgetTotal = 1000 }
    let a = sim.submitOne(spec("medium", budget: 400))
    let b = sim.submitOne(spec("medium", budget: 400))
    let c = sim.submitOne(spec("medium", budget: 400))
    XCTAssertEqual(sim.runOrder, [a, b], "the third does not fit")
    XCTAssertEqual(sim.s.tokensReserved, 800)
    XCTAssertEqual(sim.events("task.waiting", task: c).last?.reason, "token_budget_exhausted")
    sim.checkInvariants()
    sim.finish(a, tokens: 250)
    XCTAssertEqual(sim.s.tokensUsed, 250)
    XCTAssertEqual(sim.runOrder, [a, b], "350 available is not enough for 400")
    sim.finish(b, tokens: 100)
    XCTAssertEqual(sim.runOrder, [a, b, c])
    XCTAssertEqual(sim.s.budgetAvailable, 1000 - 350 - 400)
    sim.checkInvariants()
  }

  func testOverrunFailsTheTaskAndNeverDrivesTheBudgetNegative() {
    var sim = Sim(workers: 2) { $0.tokenBudgetTotal = 1000 }
    let a = sim.submitOne(spec("medium", budget: 600))
    let b = sim.submitOne(spec("medium", budget: 300))
    sim.feed(.worker(sim.worker(of: a)!, .progress(task: a, tokensUsed: 900, progress: nil, message: nil)))
    XCTAssertEqual(sim.events("budget.overrun", task: a).count, 1)
    XCTAssertTrue(sim.sent.contains { if case .cancel(a, _) = $0.1 { return true } else { return false } })
    sim.finish(a, tokens: 950)
    XCTAssertEqual(sim.s.tasks[a]?.state, .failed)
    XCTAssertEqual(sim.s.tasks[a]?.reason, "token_budget_exceeded")
    sim.finish(b, tokens: 300)
    XCTAssertEqual(sim.s.budgetAvailable, 0)
    sim.checkInvariants()
  }

  func testATaskLargerThanTheWholeBudgetIsRefused() {
    var sim = Sim(workers: 1) { $0.tokenBudgetTotal = 100 }
    let r = sim.submit([spec("high", budget: 101)])
    XCTAssertEqual(r["reason"]?.string, "token_budget_exhausted")
    // It can never fit until the config changes: not "try again later" (75).
    XCTAssertEqual(r["code"]?.int, 65)
  }

  func testDependenciesWaitThenRunAndFailuresCascade() {
    var sim = Sim(workers: 2)
    let a = sim.submitOne(sleepy)
    let b = sim.submitOne(#"{"command":["true"],"depends_on":["\#(TaskID.format(a))"]}"#)
    let c = sim.submitOne(#"{"command":["true"],"depends_on":["\#(TaskID.format(b))"]}"#)
    XCTAssertEqual(sim.runOrder, [a])
    sim.finish(a)
    XCTAssertEqual(sim.runOrder, [a, b])
    sim.finish(b, exit: 2)
    XCTAssertEqual(sim.s.tasks[b]?.state, .failed)
    XCTAssertEqual(sim.s.tasks[c]?.state, .cancelled)
    XCTAssertEqual(sim.s.tasks[c]?.reason, "dependency_failed")
    // Unknown ids and failed dependencies are refused at submit.
    let unknown = sim.submit([#"{"command":["true"],"depends_on":["task-000999"]}"#])
    XCTAssertEqual(unknown["code"]?.int, 65)
    XCTAssertEqual(unknown["field"]?.string, "depends_on")
    let onFailed = sim.submit([#"{"command":["true"],"depends_on":["\#(TaskID.format(b))"]}"#])
    XCTAssertEqual(onFailed["code"]?.int, 65)
    sim.checkInvariants()
  }

  func testRetryWaitsForItsBackoffWithJitter() {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["false"],"max_attempts":3,"token_budget":50}"#)
    sim.finish(a, exit: 1, tokens: 7)
    XCTAssertEqual(
      sim.events("task.retrying", task: a).last?.fields.first { $0.0 == "tokens_used" }?.1.int, 7, "a retried attempt's use is logged")
    XCTAssertEqual(sim.s.tokensUsed, 7)
    guard let retry = sim.events("task.retrying", task: a).last, let delay = retry.fields.first(where: { $0.0 == "delay_ms" })?.1.int else {
      return XCTFail("no task.retrying")
    }
    XCTAssertEqual(retry.reason, "exit_code")
    XCTAssertTrue((500...625).contains(delay), "first delay \(delay) not within base 500 ms + 25 % jitter")
    sim.advance(delay - 1)
    XCTAssertEqual(sim.runOrder, [a], "ran before its backoff elapsed")
    sim.advance(1)
    XCTAssertEqual(sim.runOrder, [a, a])
    sim.finish(a, exit: 1)
    let second = sim.events("task.retrying", task: a).last!.fields.first { $0.0 == "delay_ms" }!.1.int!
    XCTAssertTrue((1000...1250).contains(second), "second delay \(second)")
    sim.advance(second)
    sim.finish(a, exit: 1)
    XCTAssertEqual(sim.s.tasks[a]?.state, .failed)
    XCTAssertEqual(sim.s.tasks[a]?.attempt, 3)
    sim.checkInvariants()
  }

  func testTimeoutCancelsThenEndsTimedOut() {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["sleep","100"],"timeout_s":2}"#)
    sim.advance(1999)
    XCTAssertFalse(sim.sent.contains { if case .cancel = $0.1 { return true } else { return false } })
    sim.advance(1)
    XCTAssertTrue(sim.sent.contains { if case .cancel(a, _) = $0.1 { return true } else { return false } })
    sim.feed(.worker(1, .done(TaskOutcome(task: a, exitCode: nil, signal: 15, tokensUsed: 0, startedMs: 0, endedMs: 0))))
    XCTAssertEqual(sim.s.tasks[a]?.state, .timedOut)
  }

  func testCancelQueuedAndRunning() {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(sleepy)
    let b = sim.submitOne(sleepy)
    sim.feed(.cancel(99, [b]))
    XCTAssertEqual(sim.s.tasks[b]?.state, .cancelled)
    XCTAssertEqual(sim.replies.last?.0, 99)
    sim.feed(.cancel(100, [a]))
    XCTAssertNotEqual(sim.replies.last?.0, 100, "answered before the group is gone")
    sim.feed(.worker(1, .done(TaskOutcome(task: a, exitCode: nil, signal: 15, tokensUsed: 0, startedMs: 0, endedMs: 0))))
    XCTAssertEqual(sim.s.tasks[a]?.state, .cancelled)
    XCTAssertEqual(sim.replies.last?.0, 100)
    sim.checkInvariants()
  }

  func testAWorkerCrashRequeuesItsTaskAndThreeCrashesArePoison() {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(sleepy)
    for round in 1...3 {
      let pid = sim.s.workers[0].pid
      sim.feed(.workerExited(1, pid: pid, status: "killed by signal 9", crashed: true))
      sim.advance(1500)  // restart backoff
      if round < 3 {
        XCTAssertEqual(sim.s.tasks[a]?.state, .assigned, "round \(round): not dispatched again after the restart")
      }
    }
    XCTAssertEqual(sim.s.tasks[a]?.state, .failed)
    XCTAssertEqual(sim.s.tasks[a]?.reason, "poison")
    XCTAssertEqual(sim.events("task.retrying", task: a).filter { $0.reason == "worker_exited" }.count, 2)
    sim.checkInvariants()
  }

  func testMissedHeartbeatsMakeAWorkerUnhealthy() {
    var sim = Sim(workers: 2)
    let a = sim.submitOne(sleepy)
    XCTAssertEqual(sim.worker(of: a), 2)
    sim.advance(60_000)
    XCTAssertTrue(sim.events("worker.unhealthy").isEmpty, "beating workers were called unhealthy")
    // Worker 2 stops talking (SIGSTOP): after three missed 5 s beats it is killed and restarted,
    // and its task runs again.
    sim.silent = [2]
    sim.advance(15_000)
    XCTAssertTrue(sim.events("worker.unhealthy").isEmpty, "unhealthy before three beats were missed")
    sim.advance(1_000)
    XCTAssertEqual(sim.events("worker.unhealthy").map(\.worker), [2])
    XCTAssertEqual(sim.events("task.retrying", task: a).last?.reason, "worker_exited")
    XCTAssertEqual(sim.s.tasks[a]?.state, .assigned)
    sim.silent = []
    sim.advance(2_000)
    XCTAssertEqual(sim.events("worker.restarted").map(\.worker), [2])
  }

  func testACrashLoopingWorkerIsParkedThenTriedAgain() {
    var sim = Sim(workers: 1) {
      $0.maxRestartsInWindow = 2
      $0.restartWindowS = 10
    }
    for _ in 0..<3 {
      sim.feed(.workerExited(1, pid: sim.s.workers[0].pid, status: "exit code 1", crashed: true))
      sim.advance(300)
    }
    XCTAssertEqual(sim.events("worker.parked").count, 1)
    XCTAssertEqual(sim.s.workers[0].state, .parked)
    let spawns = sim.events("worker.restarted").count + sim.events("worker.spawned").count
    sim.advance(5_000)
    XCTAssertEqual(sim.s.workers[0].state, .parked, "still within the window")
    sim.advance(5_000)
    XCTAssertEqual(sim.events("worker.unparked").count, 1)
    XCTAssertEqual(sim.events("worker.restarted").count + sim.events("worker.spawned").count, spawns + 1)
    XCTAssertEqual(sim.s.workers[0].state, .idle)
  }

  func testScaleDownRetiresIdleWorkersFirst() {
    var sim = Sim(workers: 3)
    let a = sim.submitOne(sleepy)
    let busy = sim.worker(of: a)!
    sim.feed(.scale(7, 1))
    func exits() -> [Int] { sim.sent.filter { if case .exit = $0.1 { return true } else { return false } }.map(\.0) }
    // Slots above the new size leave: idle ones now, the busy one once its task is done.
    XCTAssertEqual(busy, 3)
    XCTAssertEqual(exits(), [2])
    sim.finish(a)
    XCTAssertEqual(sim.s.tasks[a]?.state, .succeeded)
    XCTAssertEqual(exits(), [2, 3])
    let b = sim.submitOne(sleepy)
    XCTAssertEqual(sim.worker(of: b), 1)
  }

  func testSubmitTemplateFillsPlaceholdersAndRefusesMissingValues() {
    var sim = Sim(workers: 1) {
      var wt = $0.workerType("implementation")!
      wt.command = ["agent", "--task", "{task_id}", "{description}"]
      $0.workerTypes = [("implementation", wt)]
    }
    let a = sim.submitOne(#"{"type":"implementation","description":"Add README.md"}"#)
    XCTAssertEqual(sim.s.tasks[a]?.spec.command ?? [], ["agent", "--task", TaskID.format(a), "Add README.md"])
    let r = sim.submit([#"{"type":"implementation"}"#])
    XCTAssertEqual(r["code"]?.int, 65)
    XCTAssertEqual(r["field"]?.string, "description")
  }

  /// Thousands of random inputs; the invariants are checked after every one.
  func testRandomizedSequencesKeepTheInvariants() {
    for seed in UInt64(1)...6 {
      var rng = SplitMix64(seed: seed)
      var sim = Sim(workers: 4, seed: seed) {
        // Odd seeds run the budget dry (refusals and exhaustion); even ones have room to flow.
        $0.tokenBudgetTotal = seed % 2 == 1 ? 5000 : 400_000
        $0.maxQueue = 60
        $0.reserveCritical = Int(seed % 2)
      }
      let priorities = ["low", "medium", "high", "critical"]
      for _ in 0..<1500 {
        switch rng.below(10) {
        case 0, 1, 2:
          let p = priorities[Int(rng.below(4))]
          let budget = rng.below(1500)
          let attempts = 1 + rng.below(3)
          let known = sim.s.tasks.keys.sorted()
          var deps = ""
          if !known.isEmpty && rng.below(5) == 0 {
            deps = #","depends_on":["\#(TaskID.format(known[Int(rng.below(Int64(known.count)))]))"]"#
          }
          sim.submit([#"{"command":["x"],"priority":"\#(p)","token_budget":\#(budget),"max_attempts":\#(attempts)\#(deps)}"#])
        case 3, 4:
          let running = sim.s.tasks.values.filter { $0.state == .assigned || $0.state == .running }
          if let t = running.randomElement(using: &rng) {
            let exit: Int32 = rng.below(4) == 0 ? 1 : 0
            sim.finish(t.number, exit: exit, tokens: Int(rng.below(Int64(t.budget + 200))))
          }
        case 5:
          let running = sim.s.tasks.values.filter { $0.state == .assigned }
          if let t = running.randomElement(using: &rng), let w = t.worker {
            sim.feed(
              .worker(w, .progress(task: t.number, tokensUsed: Int(rng.below(Int64(t.budget * 2 + 1))), progress: nil, message: nil)))
          }
        case 6:
          let live = sim.s.tasks.values.filter { !$0.state.isTerminal }
          if let t = live.randomElement(using: &rng) { sim.feed(.cancel(9999, [t.number])) }
        case 7 where rng.below(12) == 0:
          let w = sim.s.workers.filter { $0.pid != 0 }.randomElement(using: &rng)
          if let w { sim.feed(.workerExited(w.slot, pid: w.pid, status: "killed", crashed: true)) }
        default:
          sim.advance(rng.below(800))
        }
        sim.checkInvariants()
        if testRun?.failureCount ?? 0 > 0 { return }
      }
      let ws = Dictionary(grouping: sim.s.workers, by: { $0.state.rawValue }).mapValues(\.count)
      if seed % 2 == 1 {
        XCTAssertFalse(sim.events("task.rejected").filter { $0.reason == "token_budget_exhausted" }.isEmpty)
        continue
      }
      XCTAssertGreaterThan(
        sim.events("task.succeeded").count, 50,
        "seed \(seed) did too little to be a test: \(sim.s.counts) workers \(ws) rejected \(sim.events("task.rejected").map { $0.reason ?? "" }.suffix(3)) avail \(sim.s.budgetAvailable) used \(sim.s.tokensUsed) reserved \(sim.s.tokensReserved) waiting \(Dictionary(grouping: sim.s.tasks.values.filter { $0.state == .queued }, by: { $0.waitingReason ?? "-" }).mapValues(\.count))"
      )
    }
  }
}

extension SplitMix64: RandomNumberGenerator {}
