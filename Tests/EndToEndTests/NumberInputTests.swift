import CortexCore
import Posix
import XCTest

/// Issue 10, item 1: no number from any input (socket, command line, config, report lines) can
/// crash the daemon or the CLI; each is refused with the field named and the SPEC §8 exit code.
final class NumberInputTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testHugeAndInfiniteNumbersOnTheSocketAreRefusedAndTheDaemonLives() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    let cases: [(String, String)] = [
      (#"{"op":"stop","timeout_s":-1e308}"#, "timeout_s"),
      (#"{"op":"stop","timeout_s":1e16}"#, "timeout_s"),
      (#"{"op":"stop","timeout_s":9300000000000000}"#, "timeout_s"),
      (#"{"op":"stop","timeout_s":1e400}"#, "out of range"),
      (#"{"op":"scale","workers":1e300}"#, "workers"),
      (#"{"op":"scale","workers":-9223372036854775808}"#, "workers"),
      (#"{"op":"list","limit":-1}"#, "limit"),
      (#"{"op":"submit","tasks":[{"shell":"true","timeout_s":1e300}]}"#, "timeout_s"),
      (#"{"op":"submit","tasks":[{"shell":"true","token_budget":1e300}]}"#, "token_budget"),
      (#"{"op":"submit","tasks":[{"synthetic":{"duration_ms":1,"error_rate":1e308}}]}"#, "error_rate"),
      (#"{"op":"submit","tasks":[{"synthetic":{"duration_ms":99999999999999999999}}]}"#, "duration_ms"),
    ]
    for (line, field) in cases {
      let reply = try c.rawRequest(line)
      XCTAssertEqual(reply["ok"]?.bool, false, "\(line) → \(reply.encoded())")
      XCTAssertTrue([64, 65].contains(reply["code"]?.int ?? 0), "\(line) → \(reply.encoded())")
      XCTAssertTrue((reply["error"]?.string ?? "").contains(field), "\(line): the error does not name \(field): \(reply.encoded())")
      XCTAssertTrue(Processes.isAlive(pid), "the daemon died on \(line)")
    }
    c.ok(["submit", "--wait", "--synthetic", "1"], timeoutS: 30)
    XCTAssertEqual(c.daemonPID, pid)
  }

  func testHugeNumbersOnTheCommandLineAreUsageOrSpecErrorsNotTraps() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let cases: [([String], Int32, String)] = [
      (["submit", "--timeout", "1e300", "--", "true"], 65, "timeout_s"),
      (["submit", "--timeout", "9300000000000000", "--", "true"], 65, "timeout_s"),
      (["submit", "--timeout", "8d", "--", "true"], 65, "timeout_s"),
      (["submit", "--timeout", "0.0000001", "--", "true"], 65, "'0.0000001' is shorter than 1 ms"),
      (["edit", "task-000001", "--timeout", "0.0001s"], 65, "'0.0001s' is shorter than 1 ms"),
      (["submit", "--retries", "9223372036854775807", "--", "true"], 65, "retries"),
      (["submit", "--synthetic", "99999999999999"], 65, "duration_ms"),
      (["submit", "--tokens", "1099511627777", "--", "true"], 65, "token_budget"),
      (["tail", "--since", "1e300d"], 64, "--since"),
      (["tail", "--since", "inf"], 64, "--since"),
      (["stop", "--timeout", "9300000000000000"], 64, "--timeout"),
      (["list", "--limit", "99999999999999999999"], 64, "--limit"),
    ]
    for (args, code, word) in cases {
      let r = c.run(args)
      XCTAssertEqual(r.code, code, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains(word), "\(args): the error does not name \(word): \(r.err)")
    }
    XCTAssertTrue(c.daemonPID.map(Processes.isAlive) ?? false)
  }

  func testOutOfRangeConfigNumbersRefuseTheStartNamingTheSetting() throws {
    for (key, value) in [
      ("heartbeat_interval_s", JSON.double(1e308)), ("kill_grace_s", .double(1e20)), ("max_queue_wait_s", .int(-1)),
      ("snapshot_interval_s", .double(0)),
    ] {
      let d = try Cortex()
      defer { d.finish() }
      try d.initialize([(key, value)])
      let r = d.run(["start", "--workers", "1"])
      XCTAssertNotEqual(r.code, 0, "\(key)=\(value.encoded()) was accepted")
      XCTAssertLessThan(r.code, 128, "\(key): start died of a signal: \(r.err)")
      XCTAssertTrue(r.err.contains(key), "\(key): the error does not name it: \(r.err)")
    }
  }

  func testAbsurdReportLinesAreRefusedAndTheTaskStillFinishes() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    let script = """
      echo '{"tokens_used": 1e300}' >&$CORTEX_REPORT_FD
      echo '{"tokens_used": -9223372036854775808, "progress": 1e308}' >&$CORTEX_REPORT_FD
      echo '{"progress": 1e999}' >&$CORTEX_REPORT_FD
      echo '[1,2,3]' >&$CORTEX_REPORT_FD
      echo '{"tokens_used": 7, "progress": 0.5}' >&$CORTEX_REPORT_FD
      """
    let r = c.run(["submit", "--wait", "--tokens", "100", "--shell", script], timeoutS: 30)
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertTrue(Processes.isAlive(pid))
    let ev = c.events()
    let progress = ev.filter { $0.type == "task.progress" }
    XCTAssertTrue(
      progress.contains { ($0["detail"]?.string ?? "").contains("tokens_used") && ($0["detail"]?.string ?? "").contains("refused") },
      "no progress event says the report line was refused: \(progress.map { $0.encoded() })")
    let done = try XCTUnwrap(ev.first { $0.type == "task.succeeded" })
    XCTAssertEqual(done["tokens_used"]?.int, 7)
  }
}

extension Cortex {
  /// Sends one raw request line on cortex.sock and returns the reply (fails on EOF or after 10 s).
  func rawRequest(_ line: String) throws -> JSON {
    let fd = try UnixSocket.connect(path: paths.socket)
    defer { fd.close() }
    try fd.writeAll(Array((line + "\n").utf8))
    var buf: [UInt8] = []
    let deadline = Clock.monotonicMs() + 10_000
    while !buf.contains(10) {
      guard Clock.monotonicMs() < deadline else { throw HarnessError(message: "no reply to \(line) within 10 s") }
      if !fd.waitReadable(timeoutMs: 200) { continue }
      if try fd.read(appendingTo: &buf) == 0 { throw HarnessError(message: "the daemon closed the connection on \(line)") }
    }
    return try JSON.parse(buf.split(separator: 10)[0])
  }
}
