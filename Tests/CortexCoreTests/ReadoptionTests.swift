import CortexCore
import XCTest

/// Re-adoption (SPEC §14): the pure decision for one slot, the worker's report on the wire, and
/// what applying a decision does to the recovered state (exactly one terminal event, the budget's
/// reservation carried over and released once).
final class ReadoptionTests: XCTestCase {
  let id = Readoption.Identity(slot: 3, pid: 4100, startTime: 777, token: "abc")
  let expected = Readoption.Expected(task: 9, attempt: 2)

  func report(task: Int? = 9, attempt: Int = 2, token: String = "abc", pid: Int32 = 4100, outcome: Bool = false) -> WorkerReport {
    var r = WorkerReport(slot: 3, pid: pid, token: token)
    guard let task else { return r }
    r.task = task
    r.attempt = attempt
    r.taskPid = 5000
    r.startedMs = 1_000
    r.tokensUsed = 42
    if outcome { r.outcome = TaskOutcome(task: task, exitCode: 7, signal: nil, tokensUsed: 42, startedMs: 1_000, endedMs: 2_000) }
    return r
  }

  func decide(
    _ probe: Readoption.Probe, hello: WorkerReport?, spool: WorkerReport? = nil, expected: Readoption.Expected?
  )
    -> Readoption.Decision
  {
    Readoption.decide(identity: id, probe: probe, hello: hello, spool: spool, expected: expected)
  }

  func testAProvenWorkerRunningTheLogsTaskIsAdoptedWithIt() {
    let r = report()
    XCTAssertEqual(decide(.alive(startTime: 777), hello: r, expected: expected), .adopt(.running(r)))
  }

  func testAFinishedTaskMatchingTheLogIsACompletion() {
    let r = report(outcome: true)
    XCTAssertEqual(decide(.alive(startTime: 777), hello: r, expected: expected), .adopt(.completed(r.outcome!)))
  }

  func testAnOutcomeTheLogNoLongerWaitsForIsIgnoredAndTheWorkerAdoptedIdle() {
    // Already logged (nothing in flight), or a different attempt: the stale outcome is dropped.
    XCTAssertEqual(decide(.alive(startTime: 777), hello: report(outcome: true), expected: nil), .adopt(.idle))
    XCTAssertEqual(decide(.alive(startTime: 777), hello: report(attempt: 1, outcome: true), expected: expected), .adopt(.idle))
    // Idle while the log gave it a task: adopted idle; recovery retries the task it never got.
    XCTAssertEqual(decide(.alive(startTime: 777), hello: report(task: nil), expected: expected), .adopt(.idle))
  }

  func testAnOutcomeOfAStopTheDaemonAskedForIsNotAcceptedButRetried() {
    // Why the daemon stopped it (cancel, timeout, budget, cortex stop) is not in the log.
    var r = report(outcome: true)
    r.cancelled = true
    XCTAssertEqual(decide(.alive(startTime: 777), hello: r, expected: expected), .adopt(.idle))
    XCTAssertEqual(decide(.gone, hello: nil, spool: r, expected: expected), .gone(reason: "worker_gone", completed: nil))
    XCTAssertEqual(try WorkerReport.decode(try JSON.parse(r.encodedLine(op: nil))), r)
  }

  func testAnOutcomeOfAStopTheLogRecordsIsAccepted() {
    // The log says the old daemon asked for this stop (`task.stopping`): its outcome is the one expected.
    var r = report(outcome: true)
    r.cancelled = true
    let stopping = Readoption.Expected(task: 9, attempt: 2, stopping: true)
    XCTAssertEqual(decide(.alive(startTime: 777), hello: r, expected: stopping), .adopt(.completed(r.outcome!)))
    XCTAssertEqual(decide(.gone, hello: nil, spool: r, expected: stopping), .gone(reason: "worker_gone", completed: r.outcome!))
    // Still for that task and attempt only.
    XCTAssertEqual(decide(.alive(startTime: 777), hello: report(attempt: 1, outcome: true), expected: stopping), .adopt(.idle))
  }

  func testAWorkerRunningATaskTheLogDoesNotExpectIsKilled() {
    guard case .kill(let reason, _) = decide(.alive(startTime: 777), hello: report(attempt: 1), expected: expected) else {
      return XCTFail("not killed")
    }
    XCTAssertEqual(reason, "task_mismatch")
    guard case .kill("task_mismatch", _) = decide(.alive(startTime: 777), hello: report(), expected: nil) else {
      return XCTFail("not killed")
    }
  }

  func testAProcessThatCannotProveWhoItIsIsKilled() {
    guard case .kill("unproven_identity", _) = decide(.alive(startTime: 777), hello: report(token: "zzz"), expected: expected) else {
      return XCTFail("a wrong token was adopted")
    }
    guard case .kill("unproven_identity", _) = decide(.alive(startTime: 777), hello: report(pid: 4101), expected: expected) else {
      return XCTFail("a wrong pid was adopted")
    }
    guard case .kill("no_answer", _) = decide(.alive(startTime: 777), hello: nil, expected: expected) else {
      return XCTFail("a silent process was adopted")
    }
  }

  func testAReusedPidIsLeftAloneAndAGoneWorkerIsGone() {
    // Another start time: someone else's process now. Never adopted, never signalled.
    XCTAssertEqual(decide(.alive(startTime: 778), hello: nil, expected: expected), .gone(reason: "pid_reused", completed: nil))
    XCTAssertEqual(decide(.gone, hello: nil, expected: expected), .gone(reason: "worker_gone", completed: nil))
  }

  func testAGoneWorkersSpoolProvesItsCompletionOnlyWithItsToken() {
    let spooled = report(outcome: true)
    XCTAssertEqual(decide(.gone, hello: nil, spool: spooled, expected: expected), .gone(reason: "worker_gone", completed: spooled.outcome))
    XCTAssertEqual(
      decide(.gone, hello: nil, spool: report(token: "zzz", outcome: true), expected: expected),
      .gone(reason: "worker_gone", completed: nil))
    XCTAssertEqual(
      decide(.gone, hello: nil, spool: report(), expected: expected), .gone(reason: "worker_gone", completed: nil), "still running")
    XCTAssertEqual(decide(.gone, hello: nil, spool: spooled, expected: nil), .gone(reason: "worker_gone", completed: nil), "already logged")
  }

  func testTheReportRoundTripsOnTheWireAndInTheSpool() throws {
    for r in [report(), report(outcome: true), report(task: nil)] {
      let line = r.encodedLine(op: "hello")
      XCTAssertEqual(try WorkerToDaemon.decode(line[...].dropLast()), .hello(r))
      XCTAssertEqual(try WorkerReport.decode(try JSON.parse(r.encodedLine(op: nil))), r)
    }
    // A rate-limited outcome held in the spool keeps what the live `done` message would carry.
    var limited = report(outcome: true)
    limited.outcome!.rateLimited = true
    limited.outcome!.retryAfterMs = 1500
    XCTAssertEqual(try WorkerReport.decode(try JSON.parse(limited.encodedLine(op: nil))).outcome, limited.outcome)
    XCTAssertEqual(try DaemonToWorker.decode(DaemonToWorker.adopt.encodedLine()[...].dropLast()), .adopt)
    XCTAssertThrowsError(try WorkerToDaemon.decode(Array(#"{"op":"hello","pid":1,"slot":1}"#.utf8)[...]), "no token")
  }

  // MARK: applying decisions to the recovered state

  /// A recovered scheduler whose log has task 1 running on worker 1 (budget 100) and task 2 on worker 2.
  func recovered() -> (Scheduler, Int64) {
    var sim = Sim(workers: 2)
    let a = sim.submitOne(#"{"command":["sleep","9"],"token_budget":100}"#)
    let b = sim.submitOne(#"{"command":["sleep","9"],"token_budget":50}"#)
    sim.feed(.worker(sim.worker(of: a)!, .started(task: a, pid: 5001, atMs: sim.now)))
    sim.feed(.worker(sim.worker(of: b)!, .started(task: b, pid: 5002, atMs: sim.now)))
    var r = Scheduler(config: sim.s.config)
    for (i, e) in sim.log.enumerated() {
      var w = JSONWriter()
      e.encode(seq: UInt64(i + 1), tsMs: sim.now, into: &w)
      r.replay(try! JSON.parse(w.bytes))
    }
    return (r, sim.now)
  }

  func events(_ out: [Action], _ type: String) -> [Event] {
    out.compactMap { if case .log(let e) = $0, e.type == type { return e } else { return nil } }
  }

  func testARunningTaskStaysRunningWithItsReservationAndEndsOnce() throws {
    var (s, now) = recovered()
    let inFlight = s.inFlightBySlot()
    let w1 = try XCTUnwrap(inFlight.first { $0.value.task == 1 }?.key)
    var out: [Action] = []
    var r = WorkerReport(slot: w1, pid: 900, token: "t")
    r.task = 1
    r.attempt = 1
    r.taskPid = 5001
    s.applyReadoption(slot: w1, pid: 900, .adopt(.running(r)), now: now, into: &out)
    let settled = s.settleAfterRecovery(now: now, into: &out)
    XCTAssertEqual(settled.requeued, 1, "only the task of the slot that was not adopted")
    XCTAssertEqual(s.tasks[1]?.state, .running)
    XCTAssertEqual(s.tasks[1]?.attempt, 1)
    XCTAssertEqual(s.tasks[1]?.pid, 5001)
    XCTAssertEqual(s.tokensReserved, 100, "the re-adopted task's reservation is carried over")
    XCTAssertEqual(events(out, "task.readopted").map(\.task), [1])
    XCTAssertFalse(out.contains { if case .killGroup(5001, _) = $0 { return true } else { return false } }, "its group is not killed")
    XCTAssertEqual(s.tasks[2]?.state, .queued)
    out = []
    now += 10
    s.handle(
      .worker(w1, .done(TaskOutcome(task: 1, exitCode: 0, signal: nil, tokensUsed: 30, startedMs: now - 5, endedMs: now))), now: now,
      into: &out)
    s.handle(
      .worker(w1, .done(TaskOutcome(task: 1, exitCode: 0, signal: nil, tokensUsed: 30, startedMs: now - 5, endedMs: now))), now: now,
      into: &out)
    XCTAssertEqual(events(out, "task.succeeded").count, 1)
    XCTAssertEqual(events(out, "budget.released").count, 1)
    XCTAssertEqual(s.tokensUsed, 30)
    XCTAssertEqual(s.tasks[2]?.state, .assigned, "the freed worker takes the requeued task")
    XCTAssertEqual(s.tokensReserved, 50, "task 1's reservation went back once; task 2's is the only one")
  }

  /// A task the old daemon had only assigned (the worker's `started` never read) that the worker
  /// was running: re-adopted, it got `task.readopted` and later its end, but no `task.started`,
  /// so the log had tasks that ended without starting (seen by the races helper, 4 of 196).
  func testATaskAdoptedBeforeItsStartWasHeardGetsItsStartInTheLog() throws {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["sleep","9"]}"#)
    var s = Scheduler(config: sim.s.config)
    for (i, e) in sim.log.enumerated() {
      var w = JSONWriter()
      e.encode(seq: UInt64(i + 1), tsMs: sim.now, into: &w)
      s.replay(try JSON.parse(w.bytes))
    }
    XCTAssertEqual(s.tasks[a]?.state, .assigned)
    let w1 = try XCTUnwrap(s.inFlightBySlot().first { $0.value.task == a }?.key)
    var r = WorkerReport(slot: w1, pid: 900, token: "t")
    r.task = a
    r.attempt = 1
    r.taskPid = 5001
    r.startedMs = sim.now - 700
    var out: [Action] = []
    let later = sim.now + 5000
    s.applyReadoption(slot: w1, pid: 900, .adopt(.running(r)), now: later, into: &out)
    let logged = out.compactMap { if case .log(let e) = $0 { return e.type } else { return nil } }
    XCTAssertEqual(logged.filter { $0.hasPrefix("task.") }, ["task.started", "task.readopted"])
    let started = try XCTUnwrap(events(out, "task.started").first)
    XCTAssertEqual(started.fields.first { $0.0 == "started_ms" }?.1.int, sim.now - 700)
    // Replayed at a later start, it gives the worker's start time, not the event's.
    var again = Scheduler(config: sim.s.config)
    var seq: UInt64 = 0
    for e in sim.log + out.compactMap({ if case .log(let e) = $0 { return e } else { return nil } }) {
      seq += 1
      var w = JSONWriter()
      e.encode(seq: seq, tsMs: later, into: &w)
      again.replay(try JSON.parse(w.bytes))
    }
    XCTAssertEqual(again.tasks[a]?.state, .running)
    XCTAssertEqual(again.tasks[a]?.startedMs, sim.now - 700)
    XCTAssertEqual(again.tasks[a]?.pid, 5001)
  }

  func testACompletionWhileNoDaemonRanIsAcceptedOnceWithItsExitCodeAndTokens() throws {
    var (s, now) = recovered()
    let inFlight = s.inFlightBySlot()
    let w1 = try XCTUnwrap(inFlight.first { $0.value.task == 1 }?.key)
    let w2 = try XCTUnwrap(inFlight.first { $0.value.task == 2 }?.key)
    var out: [Action] = []
    let o = TaskOutcome(task: 1, exitCode: 7, signal: nil, tokensUsed: 42, startedMs: now - 100, endedMs: now - 50)
    s.applyReadoption(slot: w1, pid: 900, .adopt(.completed(o)), now: now, into: &out)
    // Worker 2 is gone, but its spool shows task 2 finished.
    let o2 = TaskOutcome(task: 2, exitCode: 0, signal: nil, tokensUsed: 5, startedMs: now - 100, endedMs: now - 50)
    s.applyReadoption(slot: w2, pid: 901, .gone(reason: "worker_gone", completed: o2), now: now, into: &out)
    let settled = s.settleAfterRecovery(now: now, into: &out)
    XCTAssertEqual(settled.requeued, 0)
    let failed = events(out, "task.failed")
    XCTAssertEqual(failed.count, 1)
    XCTAssertTrue(failed[0].fields.contains { $0.0 == "exit_code" && $0.1 == .int(7) })
    XCTAssertTrue(failed[0].fields.contains { $0.0 == "tokens_used" && $0.1 == .int(42) })
    XCTAssertEqual(events(out, "task.succeeded").map(\.task), [2])
    XCTAssertEqual(s.tokensReserved, 0)
    XCTAssertEqual(s.tokensUsed, 47)
    XCTAssertEqual(s.workers[w1 - 1].state, .idle)
    XCTAssertEqual(s.workers[w2 - 1].state, .stopped, "a gone worker's slot is spawned afresh")
    // The same outcome again (a second adoption) changes nothing.
    out = []
    s.handle(.worker(w1, .done(o)), now: now, into: &out)
    XCTAssertTrue(events(out, "task.failed").isEmpty)
  }

  // MARK: a stop the old daemon asked for (a cancel or a timeout just before a restart)

  /// The recovered state of a log in which the daemon asked the worker to stop task 1 (a cancel,
  /// or its timeout), and died before the worker reported the end; replayed in full, or from a
  /// snapshot taken after the request.
  func recoveredStopping(_ cause: StopCause, fromSnapshot: Bool) throws -> (Scheduler, Int64, slot: Int) {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["sleep","9"],"token_budget":100,"timeout_s":5}"#)
    let w = try XCTUnwrap(sim.worker(of: a))
    sim.feed(.worker(w, .started(task: a, pid: 5001, atMs: sim.now)))
    switch cause {
    case .cancel: sim.feed(.cancel(99, [a]))
    default: sim.advance(6000)
    }
    let stops = sim.sent.filter { if case .cancel(a, _) = $0.1 { return true } else { return false } }
    XCTAssertEqual(stops.count, 1, "the worker was told to stop it")
    XCTAssertEqual(sim.events("task.stopping", task: a).map(\.reason), [cause.logReason], "the stop is logged")
    var lines: [JSON] = []
    for (i, e) in sim.log.enumerated() {
      var jw = JSONWriter()
      e.encode(seq: UInt64(i + 1), tsMs: sim.now, into: &jw)
      lines.append(try JSON.parse(jw.bytes))
    }
    var r = Scheduler(config: sim.s.config)
    if fromSnapshot {
      var before = Scheduler(config: sim.s.config)
      for l in lines { before.replay(l) }
      let snap = try JSON.parse(before.queueSnapshot(seq: UInt64(lines.count), nowMs: sim.now).encoded())
      XCTAssertEqual(snap["tasks"]?.array?.first?["stopping"]?.string, cause.logReason, "the snapshot keeps the stop")
      _ = try r.restore(snapshot: snap)
    } else {
      for l in lines { r.replay(l) }
    }
    XCTAssertEqual(r.tasks[a]?.stopping, cause)
    XCTAssertEqual(r.inFlightBySlot()[w], Readoption.Expected(task: a, attempt: 1, stopping: true))
    return (r, sim.now, w)
  }

  func testACancelledTaskStillRunningAfterARestartIsAskedAgainAndEndsCancelled() throws {
    for fromSnapshot in [false, true] {
      var (s, now, w) = try recoveredStopping(.cancel, fromSnapshot: fromSnapshot)
      var out: [Action] = []
      var r = WorkerReport(slot: w, pid: 900, token: "t")
      r.task = 1
      r.attempt = 1
      r.taskPid = 5001
      s.applyReadoption(slot: w, pid: 900, .adopt(.running(r)), now: now, into: &out)
      _ = s.settleAfterRecovery(now: now, into: &out)
      XCTAssertTrue(out.contains { if case .send(w, .cancel(1, _)) = $0 { return true } else { return false } }, "asked again")
      XCTAssertEqual(events(out, "task.readopted").first?.fields.first { $0.0 == "stopping" }?.1, .string("cancelled"))
      // The process the worker stopped exits 0 (it handled SIGTERM): the task is still cancelled.
      out = []
      now += 10
      s.handle(
        .worker(w, .done(TaskOutcome(task: 1, exitCode: 0, signal: nil, tokensUsed: 0, startedMs: now - 50, endedMs: now))), now: now,
        into: &out)
      XCTAssertEqual(events(out, "task.cancelled").count, 1, "snapshot: \(fromSnapshot)")
      XCTAssertTrue(events(out, "task.succeeded").isEmpty)
      XCTAssertEqual(s.tokensReserved, 0)
    }
  }

  func testAStoppedTaskWhoseEndNoDaemonHeardEndsAsAskedAndIsNotRunAgain() throws {
    for cause in [StopCause.cancel, .timeout] {
      let end = cause == .cancel ? "task.cancelled" : "task.timed_out"
      // The worker finished the stop while no daemon ran: its outcome (marked as a stop) is accepted.
      var (s, now, w) = try recoveredStopping(cause, fromSnapshot: false)
      var out: [Action] = []
      let o = TaskOutcome(task: 1, exitCode: nil, signal: 15, tokensUsed: 0, startedMs: now - 50, endedMs: now)
      var r = WorkerReport(slot: w, pid: 900, token: "t")
      r.task = 1
      r.attempt = 1
      r.cancelled = true
      r.outcome = o
      let decision = Readoption.decide(
        identity: Readoption.Identity(slot: w, pid: 900, startTime: 1, token: "t"), probe: .alive(startTime: 1), hello: r, spool: nil,
        expected: s.inFlightBySlot()[w])
      XCTAssertEqual(decision, .adopt(.completed(o)))
      s.applyReadoption(slot: w, pid: 900, decision, now: now, into: &out)
      let settled = s.settleAfterRecovery(now: now, into: &out)
      XCTAssertEqual(settled.requeued, 0, "\(cause): not run again")
      XCTAssertEqual(events(out, end).count, 1, "\(cause)")
      XCTAssertTrue(events(out, "task.retrying").isEmpty)

      // Its worker is gone and left no outcome: the task ends as asked, its group killed.
      (s, now, w) = try recoveredStopping(cause, fromSnapshot: true)
      out = []
      s.applyReadoption(slot: w, pid: 900, .gone(reason: "worker_gone", completed: nil), now: now, into: &out)
      let gone = s.settleAfterRecovery(now: now, into: &out)
      XCTAssertEqual(gone.requeued, 0, "\(cause): not run again")
      XCTAssertEqual(events(out, end).map(\.reason), [cause.logReason], "\(cause)")
      XCTAssertTrue(out.contains { if case .killGroup(5001, true) = $0 { return true } else { return false } })
      XCTAssertEqual(s.tokensReserved, 0)
    }
  }

  func testARetryForgetsTheStopOfTheAttemptBefore() throws {
    // Stopped (budget), then retried by a `worker_exited`: the new attempt carries no stop.
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["sleep","9"],"token_budget":10}"#)
    sim.feed(.worker(sim.worker(of: a)!, .started(task: a, pid: 5001, atMs: sim.now)))
    sim.feed(.worker(sim.worker(of: a)!, .progress(task: a, tokensUsed: 50, progress: nil, message: nil)))
    XCTAssertEqual(sim.events("task.stopping", task: a).map(\.reason), ["token_budget_exceeded"])
    var r = Scheduler(config: sim.s.config)
    var lines: [JSON] = []
    for (i, e) in sim.log.enumerated() {
      var jw = JSONWriter()
      e.encode(seq: UInt64(i + 1), tsMs: sim.now, into: &jw)
      lines.append(try JSON.parse(jw.bytes))
    }
    for l in lines { r.replay(l) }
    XCTAssertEqual(r.tasks[a]?.stopping, .budget)
    r.replay(
      try JSON.parse(
        #"{"seq":99,"ts":"2026-01-01T00:00:00.000Z","type":"task.retrying","task_id":"task-000001","attempt":2,"reason":"worker_exited"}"#))
    XCTAssertNil(r.tasks[a]?.stopping)
  }

  func testAKilledWorkersTaskIsRetriedAsBefore() throws {
    var (s, now) = recovered()
    let w1 = try XCTUnwrap(s.inFlightBySlot().first { $0.value.task == 1 }?.key)
    var out: [Action] = []
    s.applyReadoption(slot: w1, pid: 900, .kill(reason: "no_answer", detail: "silent"), now: now, into: &out)
    now += 1
    let settled = s.settleAfterRecovery(now: now, into: &out)
    XCTAssertEqual(settled.requeued, 2)
    XCTAssertEqual(events(out, "worker.unhealthy").first?.reason, "no_answer")
    XCTAssertEqual(s.tokensReserved, 0)
  }
}
