import CortexCore
import XCTest

/// The set of groups a dispatch decision looks at (`StartableGroups`), alone and in the scheduler.
final class StartableGroupsTests: XCTestCase {
  func testInsertRemoveAndOrderAcrossWords() {
    var s = StartableGroups()
    for g in [130, 3, 64, 0, 63, 70] { s.insert(g, 2) }
    s.insert(5, 0)
    XCTAssertEqual(s.members(2), [0, 3, 63, 64, 70, 130], "group order, across 64-bit words")
    XCTAssertEqual(s.members(0), [5])
    XCTAssertEqual(s.members(1), [])
    s.remove(64, 2)
    s.remove(999, 2)
    XCTAssertFalse(s.contains(64, 2))
    XCTAssertTrue(s.contains(130, 2))
    XCTAssertFalse(s.contains(130, 1))
    XCTAssertEqual(s.members(2), [0, 3, 63, 70, 130])
  }

  func testParkedPairsWakeInTimeOrderAndStaleEntriesAreSkipped() {
    var s = StartableGroups()
    s.park(1, 0, until: 300)
    s.park(2, 0, until: 100)
    s.park(3, 1, until: 200)
    s.park(4, 0, until: 100)
    XCTAssertEqual(s.members(0), [])
    XCTAssertEqual(s.nextRefillMs, 100)
    XCTAssertEqual(s.parkedCount, 4)
    XCTAssertFalse(s.covers(2, 0, now: 99))
    XCTAssertTrue(s.covers(2, 0, now: 100), "due: the next wake puts it back")
    s.wake(now: 99)
    XCTAssertEqual(s.members(0), [])
    s.wake(now: 100)
    XCTAssertEqual(s.members(0), [2, 4])
    XCTAssertEqual(s.nextRefillMs, 200)
    // Put back early by an input, then parked again for later: the old time wakes nothing.
    s.insert(1, 0)
    s.remove(1, 0)
    s.park(1, 0, until: 500)
    s.wake(now: 300)
    XCTAssertEqual(s.members(0), [2, 4], "the entry for 300 is stale")
    XCTAssertEqual(s.members(1), [3])
    s.wake(now: 500)
    XCTAssertEqual(s.members(0), [1, 2, 4])
    XCTAssertNil(s.nextRefillMs)
    XCTAssertEqual(s.parkedCount, 0)
  }

  /// 50 full groups and 50 rate-limited ones: after a decision they are out of the set, so the
  /// next decision looks only at groups that may start; a completion puts back its group, a
  /// refill time its rate-limited group.
  func testHeldGroupsLeaveTheSetUntilTheirHoldLifts() {
    var sim = Sim(workers: 150) {
      $0.groups =
        (0..<50).map { ("full\($0)", GroupConfig(parallel: 1)) }
        + (0..<50).map { ("rate\($0)", GroupConfig(rate: RateConfig(startsPerMin: 60))) }
    }
    var first: [String: Int] = [:]
    for name in (0..<50).flatMap({ ["full\($0)", "rate\($0)"] }) {
      for i in 0..<3 {
        let n = sim.submitOne(#"{"command":["true"],"group":"\#(name)"}"#)
        if i == 0 { first[name] = n }
      }
    }
    XCTAssertEqual(sim.runOrder.count, 100, "one start per group: each is full or out of starts")
    let medium = Priority.medium.rawValue
    XCTAssertEqual(sim.s.fleet.startable.members(medium), [], "every group with queued tasks is held")
    XCTAssertEqual(sim.s.fleet.startable.parkedCount, 50)
    XCTAssertEqual(sim.s.fleet.startable.nextRefillMs, sim.now + 1000)
    XCTAssertEqual(sim.events("task.waiting").count, 100, "each held head says why, once")
    // A task of full7 ends: full7 alone is put back, and starts its next task.
    sim.finish(first["full7"]!)
    XCTAssertEqual(sim.runOrder.count, 101)
    XCTAssertEqual(sim.s.groupName(sim.s.tasks[sim.runOrder.last!]!.spec), "full7")
    XCTAssertEqual(sim.s.fleet.startable.members(medium), [])
    // One second later every rate-limited group has a start again.
    sim.advance(1000)
    XCTAssertEqual(sim.runOrder.count, 151)
    sim.checkInvariants()
  }

  /// A success raises a group's allowed rate, so its bucket refills sooner than the time the group
  /// was parked for: it must start then, not at the old time.
  func testAHigherRateStartsAParkedGroupSooner() {
    var sim = Sim(workers: 3) { $0.groups = [("api", GroupConfig(rate: RateConfig(startsPerMin: 60)))] }
    let t0 = sim.now
    let a = sim.submitOne(#"{"command":["true"],"group":"api"}"#)
    let b = sim.submitOne(#"{"command":["true"],"group":"api"}"#)
    let c = sim.submitOne(#"{"command":["true"],"group":"api"}"#)
    XCTAssertEqual(sim.runOrder, [a])
    sim.now = t0 + 1000
    sim.feed(.tick)
    XCTAssertEqual(sim.runOrder, [a, b])
    // a is refused by the provider: 60 → 42 per minute, the bucket emptied, held 1 ms.
    sim.now = t0 + 1001
    var o = TaskOutcome(task: a, exitCode: 1, signal: nil, tokensUsed: 0, startedMs: t0, endedMs: sim.now)
    o.rateLimited = true
    o.retryAfterMs = 1
    sim.feed(.worker(sim.worker(of: a)!, .done(o)))
    XCTAssertEqual(sim.s.fleet.groups.first { $0.name == "api" }?.limiter?.allowedPerMin, 42)
    // At 42/min the next start is due 1,429 ms later (t0 + 2430); b's success 99 ms into the climb
    // back to 60/min raises the rate to 42.5/min, which brings it to about t0 + 2413.
    sim.now = t0 + 1100
    sim.finish(b)
    var startedAt: Int64? = nil
    for t in (t0 + 2300)...(t0 + 2430) where startedAt == nil {
      sim.now = t
      sim.feed(.tick)
      if sim.runOrder.count == 3 { startedAt = t - t0 }
    }
    XCTAssertEqual(sim.runOrder.last, c)
    XCTAssertNotNil(startedAt)
    XCTAssertLessThan(startedAt ?? .max, 2420, "started when the faster bucket allowed, not at the time parked for")
    XCTAssertGreaterThanOrEqual(startedAt ?? 0, 2400)
    sim.checkInvariants()
  }
}
