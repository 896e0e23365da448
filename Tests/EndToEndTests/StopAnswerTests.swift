import CortexCore
import Posix
import XCTest

/// What a client waiting on a deferred answer hears when the daemon goes away first: a `wait`
/// for a running task, a `retry` whose specs are still being read. A stop answers each with 69
/// `daemon_stopped` and the CLI says what it means; a kill -9 is said within seconds.
final class StopAnswerTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func runningTask() throws -> String {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--no-env", "--", "sleep", "60"]).out.trimmed
    c.eventually("the task runs") { c.events().contains { $0.type == "task.started" && $0.taskID == id } }
    return id
  }

  func stderr(_ b: (pid: Int32, out: String, err: String)) -> String {
    String(decoding: ((try? FileSystem.read(b.err)) ?? nil) ?? [], as: UTF8.self)
  }

  /// The wait saw the connection close, took it for a restart, and said nothing for 30 s before
  /// giving up, although the daemon had stopped for good.
  func testAWaitOwedWhenTheDaemonStopsIsAnsweredAtOnce() throws {
    let id = try runningTask()
    let waiting = try c.background(["wait", id])
    let json = try c.background(["--json", "wait", id])
    sleepMs(500)  // both requests are in
    c.ok(["stop", "--timeout", "1"])
    let stopped = Clock.monotonicMs()
    let r = c.collect(waiting)
    XCTAssertLessThan(Clock.monotonicMs() - stopped, 5000, "the wait went on after the daemon stopped: \(r.err)")
    XCTAssertEqual(r.code, 69, r.err)
    XCTAssertTrue(r.err.contains("the daemon stopped (cortex stop, or SIGTERM) before \(id) ended"), r.err)
    XCTAssertTrue(r.err.contains("cortex show \(id)") && r.err.contains("cortex start"), r.err)
    let j = c.collect(json)
    XCTAssertEqual(j.code, 69, j.err)
    XCTAssertEqual(try JSON.parse(Array(j.out.utf8))["reason"]?.string, "daemon_stopped", j.out)
  }

  /// Killed, the daemon cannot answer: the wait says within seconds that it waits for one to come
  /// back (it was silent for 30 s), and carries on with the next daemon.
  func testAWaitWhoseDaemonIsKilledSaysSoAndCarriesOnWithTheNextOne() throws {
    let id = try runningTask()
    let waiting = try c.background(["wait", id])
    sleepMs(500)
    XCTAssertTrue(Processes.signal(try XCTUnwrap(c.daemonPID), Signal.kill))
    c.eventually("the wait says the daemon went away", timeoutS: 6) {
      self.stderr(waiting).contains("waiting up to 30 s for a daemon to answer again")
    }
    XCTAssertTrue(Processes.isAlive(waiting.pid), "the wait gave up")
    c.ok(["start", "--workers", "1"])
    c.ok(["cancel", id])
    let r = c.collect(waiting)
    XCTAssertEqual(r.code, 130, r.err)
  }

  /// A retry deferred while a spec.json is read (here a FIFO nobody writes until the stop has
  /// begun) when the daemon stops: 69, saying whether it retried is not known and where to look,
  /// not only that the daemon "closed the connection before answering".
  func testARetryOwedWhenTheDaemonStopsSaysWhetherItRetriedIsNotKnown() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let failed = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "exit 3"], code: 3).out.trimmed
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])  // the failure is now a compact record: its spec is read from its file
    let give = try c.holdBack(c.paths.taskDir(TaskID.parse(failed)!) + "/spec.json")
    defer { give() }
    let retry = try c.background(["retry", failed])
    sleepMs(500)  // the request is in, the read waits on the FIFO
    let stop = try c.background(["stop"])
    sleepMs(1000)  // the stop has reached the end, where it waits for the files thread
    give()
    XCTAssertEqual(c.collect(stop).code, 0)
    let r = c.collect(retry)
    XCTAssertEqual(r.code, 69, r.err)
    XCTAssertTrue(r.err.contains("whether it submitted the new tasks is not known") && r.err.contains("cortex list"), r.err)
  }

  /// The same retry when its daemon is killed instead: the connection closes with no answer, and
  /// the retry says the same (it said only that the daemon "closed the connection before answering").
  func testARetryWhoseDaemonIsKilledSaysWhetherItRetriedIsNotKnown() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let failed = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "exit 3"], code: 3).out.trimmed
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])
    let spec = c.paths.taskDir(TaskID.parse(failed)!) + "/spec.json"
    let give = try c.holdBack(spec)
    defer { give() }
    let retry = try c.background(["retry", failed])
    sleepMs(500)  // the request is in, the read waits on the FIFO
    XCTAssertTrue(Processes.signal(try XCTUnwrap(c.daemonPID), Signal.kill))
    let r = c.collect(retry)
    XCTAssertEqual(r.code, 69, r.err)
    XCTAssertTrue(r.err.contains("whether it submitted the new tasks is not known") && r.err.contains("cortex list"), r.err)
    try FileSystem.remove(spec)  // nobody reads the FIFO any more: give() must not wait for a reader
    c.ok(["start", "--workers", "1"])  // takes the killed daemon's worker back, for the harness to stop
  }
}
