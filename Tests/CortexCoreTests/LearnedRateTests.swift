import CortexCore
import XCTest

/// A rate a group learned from its provider's refusals outlives a restart: the snapshot keeps it,
/// the `rate.*` events after the snapshot replay it (before, a restart began again at the ceiling).
final class LearnedRateTests: XCTestCase {
  func config(_ perMin: Double) -> (inout Config) -> Void {
    { $0.groups = [("api", GroupConfig(rate: RateConfig(startsPerMin: perMin)))] }
  }

  func allowed(_ s: Scheduler) -> Double? { s.fleet.groups.first { $0.name == "api" }?.limiter?.allowedPerMin }

  /// The log as the daemon writes it, each event stamped with the time it was decided at.
  func lines(_ sim: Sim, stamps: [Int64]) -> [JSON] {
    sim.log.enumerated().map { i, e in
      var w = JSONWriter()
      e.encode(seq: UInt64(i + 1), tsMs: stamps[i], into: &w)
      return try! JSON.parse(w.bytes)
    }
  }

  /// One task of group api refused with a retry_after: the rate falls from 60 to 42 a minute.
  func refusedOnce() -> (Sim, [Int64]) {
    var sim = Sim(workers: 4, configure: config(60))
    var stamps: [Int64] = []
    func stamp(_ sim: Sim) { while stamps.count < sim.log.count { stamps.append(sim.now) } }
    stamp(sim)
    let first = sim.submitOne(#"{"synthetic":{"duration_ms":1},"group":"api"}"#)
    stamp(sim)
    var o = TaskOutcome(task: first, exitCode: 1, signal: nil, tokensUsed: 0, startedMs: sim.now, endedMs: sim.now)
    o.rateLimited = true
    o.retryAfterMs = 3000
    sim.now += 1
    sim.feed(.worker(sim.worker(of: first)!, .done(o)))
    stamp(sim)
    XCTAssertEqual(allowed(sim.s), 42, "60 × 0.7")
    return (sim, stamps)
  }

  func testTheSnapshotKeepsALearnedRate() throws {
    let (sim, _) = refusedOnce()
    let snap = try JSON.parse(sim.s.queueSnapshot(seq: 9, nowMs: sim.now).encoded())
    var r = Scheduler(config: sim.s.config)
    _ = try r.restore(snapshot: snap)
    XCTAssertEqual(allowed(r), 42, "restored from task-queue.json, not the ceiling of 60")
    let l = r.fleet.groups.first { $0.name == "api" }!.limiter!
    XCTAssertEqual(l.refusalsBeganPerMin, 60, "where refusals began is kept too")
    XCTAssertGreaterThan(l.holdUntilMs, sim.now, "and the provider's retry_after hold")
    // A config whose ceiling fell meanwhile holds the rate under it.
    var lower = sim.s.config
    config(30)(&lower)
    var low = Scheduler(config: lower)
    _ = try low.restore(snapshot: snap)
    XCTAssertEqual(allowed(low), 30)
    // A fresh limiter is not written at all.
    let fresh = Sim(workers: 1, configure: config(60))
    XCTAssertEqual(fresh.s.queueSnapshot(seq: 1, nowMs: fresh.now)["fleet"]?["rates"]?.array?.count, 0)
  }

  func testTheLogAfterTheSnapshotReplaysDecreasesAndTheClimbBack() throws {
    var (sim, stamps) = refusedOnce()
    func stamp() { while stamps.count < sim.log.count { stamps.append(sim.now) } }
    // The refused task and more run and succeed while the rate holds the group back: it climbs.
    for _ in 0..<30 { _ = sim.submitOne(#"{"synthetic":{"duration_ms":1},"group":"api"}"#) }
    stamp()
    for _ in 0..<6 {
      sim.advance(1000)
      stamp()
      for n in sim.s.tasks.keys.sorted() where sim.s.tasks[n]!.state == .assigned || sim.s.tasks[n]!.state == .running {
        sim.finish(n)
        stamp()
      }
    }
    let increases = sim.events("rate.increased")
    XCTAssertFalse(increases.isEmpty, "the rate climbed back: \(sim.log.map(\.type))")
    let lastTo = increases.last!.fields.first { $0.0 == "to_per_min" }!.1.double!
    XCTAssertLessThan(lastTo, 60, "still climbing: the replay must not reach the ceiling by itself")
    let log = lines(sim, stamps: stamps)
    var r = Scheduler(config: sim.s.config)
    for l in log { r.replay(l) }
    XCTAssertEqual(allowed(r), lastTo, "the last logged rate, not the ceiling")
    XCTAssertLessThanOrEqual(allowed(r)!, allowed(sim.s)!, "never above what the live limiter allowed")
    // Replayed up to the decrease only: 42.
    let cut = log.firstIndex { $0["type"]?.string == "rate.decreased" }!
    var d = Scheduler(config: sim.s.config)
    for l in log.prefix(cut + 1) { d.replay(l) }
    XCTAssertEqual(allowed(d), 42)
    XCTAssertEqual(d.fleet.groups.first { $0.name == "api" }!.limiter!.refusalsBeganPerMin, 60)
    // A snapshot at the decrease plus the rest of the log: the same as the whole log.
    var s = Scheduler(config: sim.s.config)
    let snap = try JSON.parse(d.queueSnapshot(seq: UInt64(cut + 1), nowMs: stamps[cut]).encoded())
    _ = try s.restore(snapshot: snap)
    for l in log.dropFirst(cut + 1) { s.replay(l) }
    XCTAssertEqual(allowed(s), lastTo)
  }
}
