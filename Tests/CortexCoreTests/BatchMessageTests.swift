import CortexCore
import XCTest

/// Admission answers for batches: positions count from 1 in every message and field, and a batch
/// that can never fit `max_queue` is told so (65, with what to change) rather than "retry" (75).
final class BatchMessageTests: XCTestCase {
  let ok = #"{"synthetic":{"duration_ms":0}}"#

  func testABatchLargerThanMaxQueueIsRefusedWith65AndAHint() {
    var sim = Sim(workers: 1) { $0.maxQueue = 3 }
    let r = sim.submit(Array(repeating: ok, count: 5))
    XCTAssertEqual(r["code"]?.int, 65, r.encoded())
    XCTAssertEqual(r["reason"]?.string, "batch_too_large")
    let text = r["error"]?.string ?? ""
    for hint in ["5 new tasks", "max_queue is 3", "split", "config.json", "HUP"] {
      XCTAssertTrue(text.contains(hint), "no '\(hint)' in: \(text)")
    }
    XCTAssertEqual(sim.events("task.rejected").last?.reason, "batch_too_large")
    XCTAssertTrue(sim.events("task.submitted").isEmpty)
    // What fits max_queue but not the queue now is still "try again later".
    _ = sim.submit([ok, ok, ok])
    let full = sim.submit([ok, ok])
    XCTAssertEqual(full["code"]?.int, 75)
    XCTAssertEqual(full["reason"]?.string, "queue_full")
  }

  /// "1 tasks are queued …; 1 more do not fit now": the counts agree with their verbs.
  func testTheQueueFullMessageAgreesInNumber() {
    var sim = Sim(workers: 1) { $0.maxQueue = 1 }
    let long = #"{"synthetic":{"duration_ms":60000}}"#
    _ = sim.submit([long])
    _ = sim.submit([long])
    let full = sim.submit([ok])
    XCTAssertEqual(full["reason"]?.string, "queue_full", full.encoded())
    XCTAssertTrue(
      full["error"]?.string?.hasPrefix("1 task is queued and the limit is 1 (max_queue); 1 more does not fit now;") ?? false, full.encoded()
    )
  }

  func testPositionsCountFromOneInTheFieldAndTheMessage() {
    var sim = Sim(workers: 1)
    let r = sim.submit([ok, ok, #"{"type":"wizard","command":["x"]}"#])
    XCTAssertEqual(r["code"]?.int, 65)
    XCTAssertEqual(r["field"]?.string, "[3].type")
    XCTAssertEqual(r["position"]?.int, 3)
    XCTAssertTrue(r["error"]?.string?.hasPrefix("task 3 of 3: type: unknown worker type 'wizard'") ?? false, r.encoded())
    // One spec alone: no position.
    let one = sim.submit([#"{"type":"wizard","command":["x"]}"#])
    XCTAssertEqual(one["field"]?.string, "type")
    XCTAssertNil(one["position"])
  }

  func testTheBudgetRefusalCountsTheSameWay() {
    var sim = Sim(workers: 1) { $0.tokenBudgetTotal = 100 }
    let r = sim.submit([ok, #"{"synthetic":{"duration_ms":0},"token_budget":500}"#])
    XCTAssertEqual(r["reason"]?.string, "token_budget_exhausted")
    XCTAssertEqual(r["position"]?.int, 2)
    XCTAssertTrue(r["error"]?.string?.hasPrefix("task 2 of 2 needs 500 tokens") ?? false, r.encoded())
    let alone = sim.submit([#"{"synthetic":{"duration_ms":0},"token_budget":500}"#])
    XCTAssertTrue(alone["error"]?.string?.hasPrefix("the task needs 500 tokens") ?? false, alone.encoded())
  }
}
