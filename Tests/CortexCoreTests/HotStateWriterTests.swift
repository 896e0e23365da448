import CortexCore
import Foundation
import Synchronization
import XCTest

/// The daemon rewrites `hot-state.mmap` up to 50 times a second while events flow, and each write
/// walks a long queue: readers (`cortex status`, the web view) must still find it readable.
final class HotStateWriterTests: XCTestCase {
  /// What the writing thread shares with the test (it only reads `s`; `base` is the "mapping").
  final class Shared: @unchecked Sendable {
    let s: Scheduler
    let base: UnsafeMutableRawPointer
    let writer = HotState.Writer()
    let stop = Atomic<Bool>(false)
    let writes = Atomic<Int>(0)
    init(_ s: Scheduler) {
      self.s = s
      base = UnsafeMutableRawPointer.allocate(byteCount: HotState.fileSize, alignment: 8)
      base.initializeMemory(as: UInt8.self, repeating: 0, count: HotState.fileSize)
    }
    deinit { base.deallocate() }
  }

  /// Writes back to back, as fast as they go, with 12,000 tasks queued: a reader's every read
  /// finds a whole state. The seqlock was odd for all of each write (the walk and the checksum,
  /// 10–20 ms in a debug build), so back-to-back writes left it odd nearly all the time, and the
  /// web view's `/api/status` answered 503 under load (WebAPITests.testStatusAnswersWhileALong…).
  /// Now each write is composed aside and only copied in under the seqlock.
  func testAReaderFindsTheStateBetweenBackToBackWritesOfALongQueue() throws {
    var sim = Sim(workers: 4) {
      $0.maxQueue = 20_000
      $0.maxQueueWaitS = 30 * 86_400
    }
    for _ in 0..<12 { _ = sim.submit(Array(repeating: #"{"synthetic":{"duration_ms":10}}"#, count: 1000)) }
    XCTAssertGreaterThan(sim.s.queued(.medium), 10_000)
    let shared = Shared(sim.s)
    let thread = Thread {
      while !shared.stop.load(ordering: .relaxed) {
        shared.writer.write(shared.s, to: shared.base, lastSeq: 1, pid: 1, startedMs: 1, nowMs: 1)
        shared.writes.add(1, ordering: .relaxed)
      }
    }
    thread.start()
    defer { shared.stop.store(true, ordering: .relaxed) }
    let deadline = Date().addingTimeInterval(60)
    while shared.writes.load(ordering: .relaxed) < 1 && Date() < deadline { usleep(1000) }
    var failures: [String] = []
    for _ in 0..<20 {
      // What `cortex status` and the web view do: rounds of attempts 1 ms apart for up to 100 ms
      // (one round alone fails when the writer is preempted inside its copy: seen in CI).
      var read = HotState.readConsistent(UnsafeRawPointer(shared.base), size: HotState.fileSize)
      let patience = Date().addingTimeInterval(0.1)
      while case .failure(.busy) = read, Date() < patience {
        usleep(1000)
        read = HotState.readConsistent(UnsafeRawPointer(shared.base), size: HotState.fileSize)
      }
      switch read {
      case .success(let v): XCTAssertGreaterThan(v.counts[.queued] ?? 0, 10_000)
      case .failure(let e): failures.append("\(e)")
      }
      usleep(2000)
    }
    let writes = shared.writes.load(ordering: .relaxed)
    XCTAssertGreaterThan(writes, 2, "the writer did not write back to back while the reader read; the test checked nothing")
    XCTAssertEqual(failures, [], "\(failures.count) of 20 reads failed during \(writes) writes")
  }

  /// The task table lists every active task, those on workers and those waiting, and no
  /// finished one, among thousands of finished tasks; and none when all are finished (the
  /// walk through the finished ones stops when no active task is left to find).
  func testTheTaskTableHoldsEveryActiveTaskAmongManyFinished() throws {
    var sim = Sim(workers: 2)
    for _ in 0..<30 {
      for n in (0..<100).map({ _ in sim.submitOne(#"{"command":["true"]}"#) }) {
        for _ in 0..<100 where sim.worker(of: n) == nil { sim.advance(1) }
        XCTAssertNotNil(sim.worker(of: n), "task \(n) was never dispatched")
        sim.finish(n)
      }
    }
    let base = UnsafeMutableRawPointer.allocate(byteCount: HotState.fileSize, alignment: 8)
    defer { base.deallocate() }
    base.initializeMemory(as: UInt8.self, repeating: 0, count: HotState.fileSize)
    func table() throws -> [Int] {
      HotState.write(sim.s, to: base, lastSeq: 1, pid: 1, startedMs: 1, nowMs: 1)
      return try HotState.readConsistent(UnsafeRawPointer(base), size: HotState.fileSize).get().tasks.map(\.number).sorted()
    }
    XCTAssertEqual(try table(), [])
    let waiting = (0..<5).map { _ in sim.submitOne(#"{"command":["true"]}"#) }
    let active = sim.s.tasks.values.filter { !$0.state.isTerminal }.map(\.number).sorted()
    XCTAssertEqual(active, waiting)
    XCTAssertEqual(waiting.filter { sim.worker(of: $0) != nil }.count, 2, "two on the workers, three queued")
    XCTAssertEqual(try table(), waiting)
  }
}
