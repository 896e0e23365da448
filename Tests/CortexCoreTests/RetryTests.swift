import CortexCore
import XCTest

/// `retry` of finished tasks the scheduler no longer holds in full (Scheduler+Retry): their
/// specs come in the request, as the daemon read them from `spec.json`.
final class RetryTests: XCTestCase {
  func control(_ sim: inout Sim, _ cmd: FleetCommand) -> JSON {
    let c = sim.nextClient
    sim.nextClient += 1
    sim.feed(.control(c, cmd))
    return sim.replies.last { $0.0 == c }!.1
  }

  /// What the daemon would read from the task's spec.json: the redacted spec.
  func stored(_ sim: Sim, _ n: Int, _ json: String) throws -> Scheduler.StoredSpec {
    .spec(try TaskSpec.decode(try JSON.parse(Array(json.utf8))))
  }

  /// A sim that keeps no finished task in full: every finished task is known by its state only,
  /// as after a restart.
  func forgetful() -> Sim {
    var sim = Sim(workers: 1)
    sim.s.keepFinished = 0
    return sim
  }

  func testAFinishedTaskNotHeldIsRetriedFromItsStoredSpec() throws {
    var sim = forgetful()
    let dep = sim.submitOne(#"{"command":["true"]}"#)
    sim.finish(dep)
    let a = sim.submitOne(#"{"command":["sh","-c","exit 3"],"idempotency_key":"k1","depends_on":["task-000001"]}"#)
    sim.finish(a, exit: 3)
    XCTAssertNil(sim.s.tasks[a], "the sim must not hold it")
    XCTAssertEqual(sim.s.retrySpecsNeeded([a], allFailed: false), [a])
    let without = control(&sim, .retry([a], allFailed: false))
    XCTAssertEqual(without["code"]?.int, 65, without.encoded())
    let spec = try stored(sim, a, #"{"command":["sh","-c","exit 3"],"idempotency_key":"k1","depends_on":["task-000001"]}"#)
    let r = control(&sim, .retry([a], allFailed: false, stored: [a: spec]))
    XCTAssertEqual(r["ok"]?.bool, true, r.encoded())
    XCTAssertEqual(r["retried"]?.array?.compactMap(\.string), [TaskID.format(a)])
    guard let id = r["ids"]?.array?.first?.string, let n = TaskID.parse(id) else { return XCTFail(r.encoded()) }
    let t = try XCTUnwrap(sim.s.tasks[n])
    XCTAssertEqual(t.spec.retryOf, a)
    XCTAssertEqual(t.spec.command ?? [], ["sh", "-c", "exit 3"])
    XCTAssertNil(t.spec.idempotencyKey)
    XCTAssertEqual(t.spec.dependsOn, [])
    XCTAssertTrue(sim.s.retried.contains(a))
  }

  func testAStoredSpecWithRedactedSecretsOrUnreadableRefusesTheWholeRequest() throws {
    var sim = forgetful()
    let a = sim.submitOne(#"{"command":["false"],"env":{"API_TOKEN":"abc123secretvalue"}}"#)
    sim.finish(a, exit: 1)
    let b = sim.submitOne(#"{"command":["false"]}"#)
    sim.finish(b, exit: 1)
    let secret = try stored(sim, a, #"{"command":["false"],"env":{"API_TOKEN":"[redacted]"}}"#)
    let plain = try stored(sim, b, #"{"command":["false"]}"#)
    let submitted = sim.events("task.submitted").count
    let r = control(&sim, .retry([b, a], allFailed: false, stored: [a: secret, b: plain]))
    XCTAssertEqual(r["code"]?.int, 65, r.encoded())
    let why = r["error"]?.string ?? ""
    XCTAssertTrue(why.contains(TaskID.format(a)) && why.contains("env.API_TOKEN") && why.contains("secret"), why)
    let bad = control(&sim, .retry([b, a], allFailed: false, stored: [a: .unreadable("x/spec.json is not valid JSON"), b: plain]))
    XCTAssertEqual(bad["code"]?.int, 65, bad.encoded())
    XCTAssertTrue(bad["error"]?.string?.contains("x/spec.json is not valid JSON") == true, bad.encoded())
    XCTAssertEqual(sim.events("task.submitted").count, submitted, "a refused retry submitted something")
  }

  /// `--all-failed` takes failures known only by their state, skips (and names) those it cannot
  /// retry, and a second run does not take the retried ones again.
  func testAllFailedTakesFailuresNotHeldAndSkipsTheOnesWithLostSecrets() throws {
    var sim = forgetful()
    let ok = sim.submitOne(#"{"command":["true"]}"#)
    sim.finish(ok)
    let a = sim.submitOne(#"{"command":["false"]}"#)
    sim.finish(a, exit: 1)
    let s = sim.submitOne(#"{"command":["false"],"env":{"API_TOKEN":"abc123secretvalue"}}"#)
    sim.finish(s, exit: 1)
    XCTAssertEqual(sim.s.retrySpecsNeeded([], allFailed: true), [a, s])
    let specs: [Int: Scheduler.StoredSpec] = [
      a: try stored(sim, a, #"{"command":["false"]}"#),
      s: try stored(sim, s, #"{"command":["false"],"env":{"API_TOKEN":"[redacted]"}}"#),
    ]
    let r = control(&sim, .retry([], allFailed: true, stored: specs))
    XCTAssertEqual(r["ok"]?.bool, true, r.encoded())
    XCTAssertEqual(r["retried"]?.array?.compactMap(\.string), [TaskID.format(a)])
    XCTAssertEqual(r["skipped"]?.array?.compactMap { $0["id"]?.string }, [TaskID.format(s)])
    XCTAssertEqual(sim.s.retrySpecsNeeded([], allFailed: true), [s], "the retried failure is not needed again")
    let again = control(&sim, .retry([], allFailed: true, stored: [s: specs[s]!]))
    XCTAssertEqual(again["ids"]?.array?.count, 0, again.encoded())
  }

  /// A task held in full whose spec came back from the log after a restart (redacted) is refused too.
  func testAHeldTaskWithARedactedSpecIsRefused() throws {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["false"]}"#)
    sim.finish(a, exit: 1)
    var s = Scheduler(config: sim.s.config)
    _ = try s.restore(snapshot: sim.s.queueSnapshot(seq: 1, nowMs: sim.now))
    s.replay(
      try JSON.parse(
        #"{"type":"task.submitted","task_id":"task-000002","ts":"2026-01-01T00:00:00Z","spec":{"command":["false"],"env":{"API_TOKEN":"[redacted]"}}}"#
      ))
    s.replay(try JSON.parse(#"{"type":"task.failed","task_id":"task-000002","ts":"2026-01-01T00:00:01Z","exit_code":1}"#))
    sim.s = s
    let r = control(&sim, .retry([2], allFailed: false))
    XCTAssertEqual(r["code"]?.int, 65, r.encoded())
    XCTAssertTrue(r["error"]?.string?.contains("env.API_TOKEN") == true, r.encoded())
  }

  /// `retried` survives a snapshot; a snapshot written before it was kept says so.
  func testRetriedIsKeptInTheSnapshot() throws {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["false"]}"#)
    sim.finish(a, exit: 1)
    let b = sim.submitOne(#"{"command":["true"],"retry_of":"task-000001"}"#)
    sim.finish(b)
    let snap = sim.s.queueSnapshot(seq: 1, nowMs: sim.now)
    XCTAssertEqual(snap["retried"]?.string, "1")
    var s = Scheduler(config: Config())
    _ = try s.restore(snapshot: snap)
    XCTAssertEqual(s.retried, [a])
    XCTAssertTrue(s.retriedComplete)
    XCTAssertEqual(s.retrySpecsNeeded([], allFailed: true), [])
    var old = snap.object!
    old.removeAll { $0.0 == "retried" }
    var o = Scheduler(config: Config())
    _ = try o.restore(snapshot: .object(old))
    XCTAssertFalse(o.retriedComplete)
    XCTAssertEqual(o.retrySpecsNeeded([], allFailed: true), [a])
    o.restoreRetried([a])
    XCTAssertTrue(o.retriedComplete)
    XCTAssertEqual(o.retrySpecsNeeded([], allFailed: true), [])
  }
}
