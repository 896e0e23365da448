import CortexCore
import XCTest

/// SLA admission and resource feasibility.
final class AdmissionTests: XCTestCase {
  func testAnSLAThatTheEstimatesCannotMeetIsRefused() {
    var sim = Sim(workers: 1)
    // Teach the estimate: exec tasks take 1 s here.
    for _ in 0..<5 {
      let n = sim.submitOne(#"{"command":["x"]}"#)
      sim.feed(.worker(sim.worker(of: n)!, .started(task: n, pid: 77, atMs: sim.now)))
      sim.advance(1000)
      sim.finish(n)
    }
    _ = sim.submitOne(#"{"command":["x"]}"#)  // occupies the worker
    for _ in 0..<3 { _ = sim.submitOne(#"{"command":["x"]}"#) }
    let tight = Timestamp.rfc3339(ms: sim.now + 2000)
    let r = sim.submit([#"{"command":["x"],"sla_deadline":"\#(tight)"}"#])
    XCTAssertEqual(r["code"]?.int, 75, r.encoded())
    XCTAssertEqual(r["reason"]?.string, "sla_unmeetable")
    XCTAssertEqual(sim.events("task.rejected").last?.reason, "sla_unmeetable")
    let loose = Timestamp.rfc3339(ms: sim.now + 60_000)
    XCTAssertEqual(sim.submit([#"{"command":["x"],"sla_deadline":"\#(loose)"}"#])["ok"]?.bool, true)
    let past = Timestamp.rfc3339(ms: sim.now - 1)
    XCTAssertEqual(sim.submit([#"{"command":["x"],"sla_deadline":"\#(past)"}"#])["reason"]?.string, "sla_unmeetable")
  }

  func testABadSLADeadlineNamesTheField() {
    XCTAssertThrowsError(try TaskSpec.decode(try JSON.parse(#"{"command":["x"],"sla_deadline":"tomorrow"}"#))) { e in
      XCTAssertEqual((e as? SpecError)?.field, "sla_deadline")
    }
  }

  func testTasksWaitForMemoryAndCPUAndRunWhenTheyFree() {
    var sim = Sim(workers: 4)
    sim.feed(.resources(idleCores: 2, availableMB: 1500))
    // implementation: 1024 MiB, 1 core. Two fit in memory? No: 1500 MiB holds one.
    let a = sim.submitOne(#"{"type":"implementation","command":["x"]}"#)
    let b = sim.submitOne(#"{"type":"implementation","command":["x"]}"#)
    XCTAssertEqual(sim.runOrder, [a])
    XCTAssertEqual(sim.events("task.waiting", task: b).last?.reason, "insufficient_memory")
    // The same reason is not logged again on the next sample.
    sim.feed(.resources(idleCores: 1, availableMB: 400))
    XCTAssertEqual(sim.events("task.waiting", task: b).count, 1)
    // CPU is the limit now.
    sim.feed(.resources(idleCores: 0.2, availableMB: 8000))
    XCTAssertEqual(sim.events("task.waiting", task: b).last?.reason, "insufficient_cpu")
    // Synthetic and untyped tasks need nothing, but do not overtake the waiting head of their priority.
    let c = sim.submitOne(#"{"synthetic":{"duration_ms":5},"priority":"high"}"#)
    XCTAssertEqual(sim.runOrder, [a, c])
    sim.feed(.resources(idleCores: 1.5, availableMB: 8000))
    XCTAssertEqual(sim.runOrder, [a, c, b])
    sim.checkInvariants()
  }
}
