import CortexCore
import XCTest

/// A cluster node's queue ahead of its idle workers: about a second of its pool's work, at most
/// twice the pool (ten times under 50 ms), none for unknown or long tasks.
final class ClaimAheadTests: XCTestCase {
  func testTheQueueAheadIsASecondOfWorkAndNoneForLongOrUnknownTasks() {
    XCTAssertEqual(Scheduler.claimAhead(workers: 20, meanRunMs: .infinity), 0)
    XCTAssertEqual(Scheduler.claimAhead(workers: 20, meanRunMs: 60_000), 0)
    XCTAssertEqual(Scheduler.claimAhead(workers: 20, meanRunMs: 1_000), 20)
    XCTAssertEqual(Scheduler.claimAhead(workers: 20, meanRunMs: 500), 40)
    XCTAssertEqual(Scheduler.claimAhead(workers: 20, meanRunMs: 100), 40)
    XCTAssertEqual(Scheduler.claimAhead(workers: 20, meanRunMs: 10), 200)
    XCTAssertEqual(Scheduler.claimAhead(workers: 20, meanRunMs: 0), 200)
  }
}
