import CortexCore
import Posix
import XCTest

/// Scheduling behaviour through the real binary, observed in the decision log.
final class SchedulingTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testPriorityOrderIsTheOrderInTheLog() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let blocker = c.ok(["submit", "--shell", "sleep 0.5"]).out.trimmed
    var ids: [String: String] = [:]
    for p in ["low", "medium", "high", "critical", "medium"] {
      let id = c.ok(["submit", "--priority", p, "--", "true"]).out.trimmed
      ids[id] = p
    }
    c.ok(["wait", blocker] + ids.keys.sorted(), timeoutS: 30)
    let started = c.events().filter { $0.type == "task.started" }.compactMap(\.taskID).filter { ids[$0] != nil }
    XCTAssertEqual(started.map { ids[$0]! }, ["critical", "high", "medium", "medium", "low"])
    let mediums = started.filter { ids[$0] == "medium" }
    XCTAssertEqual(mediums, mediums.sorted(), "FIFO within a priority")
  }

  func testTheBudgetNeverGoesNegativeAndUsedIsExactlyWhatWasReported() throws {
    try c.initialize([("token_budget_total", .int(40_000))])
    c.ok(["start", "--workers", "6"])
    var rng = SplitMix64(seed: 9)
    var batch = ""
    var reported: Int64 = 0
    for _ in 0..<200 {
      let tokens = rng.below(300)
      reported += tokens
      batch += #"{"synthetic":{"duration_ms":\#(rng.below(8)),"tokens":\#(tokens)},"token_budget":2000}"# + "\n"
    }
    // Six workers reserve up to 12,000 while use grows towards 30,000 of 40,000: near the end,
    // dispatch waits for releases instead of over-allocating.
    let ids = c.ok(["submit", "--from", "-"], input: batch).out.split(separator: "\n").map(String.init)
    c.ok(["wait"] + ids, timeoutS: 60)
    let shown = c.ok(["budget"]).out
    XCTAssertTrue(shown.contains("\(reported)"), shown)
    c.ok(["stop"])
    for e in c.events() where e.type == "budget.reserved" || e.type == "budget.released" {
      XCTAssertGreaterThanOrEqual(e["available"]?.int ?? -1, 0, e.encoded())
    }
    let budget = try JSON.parse(try FileSystem.read(c.paths.tokenBudget) ?? [])
    XCTAssertEqual(budget["used"]?.int, reported)
    XCTAssertEqual(budget["reserved"]?.int, 0)
    XCTAssertEqual(budget["available"]?.int, 40_000 - reported)
  }

  func testDependencyChainRunsInOrderAndAFailureCancelsDependents() throws {
    try c.initialize()
    c.ok(["start", "--workers", "3"])
    let a = c.ok(["submit", "--shell", "sleep 0.2"]).out.trimmed
    let b = c.ok(["submit", "--after", a, "--", "true"]).out.trimmed
    let f = c.ok(["submit", "--after", b, "--shell", "exit 4"]).out.trimmed
    let d1 = c.ok(["submit", "--after", f, "--", "true"]).out.trimmed
    let d2 = c.ok(["submit", "--after", "\(d1),\(a)", "--", "true"]).out.trimmed
    c.run(["wait", a, b, f, d1, d2], timeoutS: 30)
    let ev = c.events()
    func seq(_ type: String, _ id: String) -> Int64 { ev.first { $0.type == type && $0.taskID == id }?["seq"]?.int ?? -1 }
    XCTAssertLessThan(seq("task.succeeded", a), seq("task.started", b))
    XCTAssertLessThan(seq("task.succeeded", b), seq("task.started", f))
    XCTAssertEqual(ev.last { $0.taskID == f }?.type, "task.failed")
    for d in [d1, d2] {
      let end = ev.last { $0.taskID == d }
      XCTAssertEqual(end?.type, "task.cancelled", d)
      XCTAssertEqual(end?["reason"]?.string, "dependency_failed", d)
      XCTAssertFalse(ev.contains { $0.type == "task.started" && $0.taskID == d }, "\(d) ran")
    }
    let onFailed = c.run(["submit", "--after", f, "--", "true"])
    XCTAssertEqual(onFailed.code, 65, onFailed.err)
    XCTAssertTrue(onFailed.err.contains("depends_on"), onFailed.err)
  }

  func testATaskThatKeepsKillingItsWorkerIsQuarantinedAsPoison() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    let id = c.ok(["submit", "--shell", "kill -9 $PPID; sleep 5"]).out.trimmed
    let r = c.run(["wait", id], timeoutS: 60)
    XCTAssertEqual(r.code, 1, r.err)
    let end = c.events().last { $0.taskID == id }
    XCTAssertEqual(end?.type, "task.failed")
    XCTAssertEqual(end?["reason"]?.string, "poison")
    XCTAssertEqual(c.events().filter { $0.type == "worker.exited" && $0["reason"]?.string == "crashed" }.count, 3)
    // The pool is whole again and still works.
    XCTAssertEqual(c.run(["submit", "--wait", "--", "true"], timeoutS: 30).code, 0)
    XCTAssertFalse(c.leftovers.contains { $0.commandLine.contains("sleep") })
  }

  func testAnUnmeetableSLAIsRefusedWith75() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let past = c.run(["submit", "--sla-deadline", "2020-01-01T00:00:00Z", "--", "true"])
    XCTAssertEqual(past.code, 75, past.err)
    XCTAssertTrue(past.err.contains("SLA"), past.err)
    XCTAssertEqual(c.events().last { $0.type == "task.rejected" }?["reason"]?.string, "sla_unmeetable")
    XCTAssertEqual(c.run(["submit", "--sla", "1h", "--wait", "--", "true"], timeoutS: 30).code, 0)
    XCTAssertEqual(c.run(["submit", "--sla", "soon", "--", "true"]).code, 65)
  }

  func testScaleResizesThePoolWithoutARestart() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    let daemon = c.daemonPID
    c.ok(["scale", "5"])
    c.eventually("5 workers") { c.leftovers.filter { $0.commandLine.contains("worker") && !$0.isZombie }.count == 5 }
    c.ok(["scale", "1"])
    c.eventually("1 worker") { c.leftovers.filter { $0.commandLine.contains("worker") && !$0.isZombie }.count == 1 }
    XCTAssertEqual(c.daemonPID, daemon)
    XCTAssertEqual(c.run(["submit", "--wait", "--", "true"], timeoutS: 30).code, 0)
  }
}
