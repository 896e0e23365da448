import CortexCore
import Posix
import XCTest

/// Per-client limits of the real daemon (docs/security.md, "Limits per client"): a client that sends an
/// endless line, or pipelines requests and never reads the answers, cannot grow the daemon's
/// memory or hold up other clients; idle connections are closed; a full connection table still
/// lets `cortex stop` in.
final class ClientLimitTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws {
    c = try Cortex()
    Signal.ignore(Signal.pipe)  // a connection the daemon refused fails with EPIPE instead
  }
  override func tearDown() { c?.finish() }

  /// The daemon's resident memory in MiB.
  func rssMiB(_ pid: Int32) -> Int {
    guard let b = (try? FileSystem.read("/proc/\(pid)/status")) ?? nil else { return 0 }
    for line in String(decoding: b, as: UTF8.self).split(separator: "\n") where line.hasPrefix("VmRSS:") {
      let kb = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) } ?? 0
      return kb / 1024
    }
    return 0
  }

  func connect() throws -> FileDescriptor {
    let fd = try UnixSocket.connect(path: c.paths.socket)
    try fd.setNonBlocking(true)
    return fd
  }

  /// Reads one answer line, waiting up to `timeoutMs`; nil at EOF or on timeout.
  func readLine(_ fd: FileDescriptor, timeoutMs: Int64 = 10_000) -> JSON? {
    var buf: [UInt8] = []
    let deadline = Clock.monotonicMs() + timeoutMs
    while Clock.monotonicMs() < deadline {
      if let nl = buf.firstIndex(of: 10) { return try? JSON.parse(buf[..<nl]) }
      _ = fd.waitReadable(timeoutMs: 100)
      do {
        if try fd.read(appendingTo: &buf, max: 4096) == 0 { return nil }
      } catch {
        if !error.isWouldBlock { return nil }
      }
    }
    return nil
  }

  /// True once the peer has closed: EOF after any answers it sent.
  func closedByPeer(_ fd: FileDescriptor, withinMs: Int64) -> Bool {
    let deadline = Clock.monotonicMs() + withinMs
    var buf: [UInt8] = []
    while Clock.monotonicMs() < deadline {
      _ = fd.waitReadable(timeoutMs: 100)
      do {
        if try fd.read(appendingTo: &buf, max: 4096) == 0 { return true }
      } catch {
        if !error.isWouldBlock { return true }
      }
    }
    return false
  }

  /// Starts `cortex ARGS` without waiting; `finished` polls it.
  final class Background {
    let pid: Int32
    let started = Clock.monotonicMs()
    var code: Int32?
    var ms: Int64 = 0
    init(_ c: Cortex, _ args: [String]) throws {
      let devnull = try FileDescriptor.open("/dev/null", .readWrite)
      defer { devnull.close() }
      let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") }
      pid = try Processes.spawn(
        [Cortex.binary, "--dir", c.root] + args, environment: env, stdin: devnull, stdout: devnull, stderr: devnull,
        newProcessGroup: false)
    }
    var finished: Bool {
      if code != nil { return true }
      guard let (_, status) = Processes.reap(pid) else { return false }
      ms = Clock.monotonicMs() - started
      switch status {
      case .exited(let x): code = x
      case .signaled(let s): code = 128 + s
      }
      return true
    }
    func wait(timeoutMs: Int64) {
      let deadline = Clock.monotonicMs() + timeoutMs
      while !finished && Clock.monotonicMs() < deadline { sleepMs(5) }
      if !finished {
        _ = Processes.signal(pid, Signal.kill)
        _ = Processes.wait(pid)
      }
    }
  }

  /// Six clients each send an endless line (64 KiB at a time, never a newline) for a few seconds.
  /// Before the limits, each connection could hold a 64 MiB line (6 of them: 384 MiB).
  func testEndlessLinesCannotGrowTheDaemonAndOthersAreServed() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    let baseline = rssMiB(pid)
    let flooders = try (0..<6).map { _ in try connect() }
    defer { for f in flooders { f.close() } }
    let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 16)
    var sent = 0
    var maxRSS = 0
    var probe: Background?
    var probes: [Int64] = []
    let end = Clock.monotonicMs() + 5000
    var lastSample: Int64 = 0
    while Clock.monotonicMs() < end {
      for f in flooders {
        if let n = try? f.writeSome(chunk) { sent += n }
      }
      let now = Clock.monotonicMs()
      if now - lastSample >= 20 {
        lastSample = now
        maxRSS = max(maxRSS, rssMiB(pid))
        if let p = probe, p.finished {
          XCTAssertEqual(p.code, 0, "a submit while others flood the socket")
          probes.append(p.ms)
          probe = nil
        }
        if probe == nil && now < end - 2500 { probe = try Background(c, ["submit", "--synthetic", "0"]) }
      }
    }
    probe?.wait(timeoutMs: 10_000)
    if let p = probe {
      XCTAssertEqual(p.code, 0)
      probes.append(p.ms)
    }
    XCTAssertGreaterThan(sent, 100 << 20, "the flood should have pushed well past the limits (sent \(sent >> 20) MiB)")
    XCTAssertLessThan(
      maxRSS, 100, "daemon RSS peaked at \(maxRSS) MiB (from \(baseline) MiB) with \(sent >> 20) MiB of unfinished lines sent")
    XCTAssertFalse(probes.isEmpty)
    XCTAssertLessThan(probes.max() ?? 0, 2000, "submit took \(probes) ms while the socket was flooded")
    // Each flooder is told why its line went nowhere, in place of an answer to it.
    for f in flooders {
      _ = try? f.writeSome([10])
      let answer = readLine(f)
      XCTAssertEqual(answer?["ok"]?.bool, false, answer?.encoded() ?? "no answer")
      XCTAssertTrue(["request_too_long", "input_full"].contains(answer?["reason"]?.string ?? ""), answer?.encoded() ?? "no answer")
    }
    c.ok(["submit", "--synthetic", "0", "--wait"])
  }

  /// One client pipelines thousands of `list` requests (each answer tens of KiB) and never reads
  /// an answer. Before the limits the daemon read them all and queued every answer.
  func testAClientThatNeverReadsCannotGrowTheDaemonOrStallOthers() throws {
    try c.initialize([("max_queue", .int(5000))])
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    let batch = String(repeating: #"{"synthetic":{"duration_ms":0},"description":"a task with a longer description"}"# + "\n", count: 300)
    c.ok(["submit", "--from", "-", "--wait"], input: batch, timeoutS: 120)
    let hog = try connect()
    defer { hog.close() }
    let requests = Array(String(repeating: #"{"op":"list","limit":300}"# + "\n", count: 100).utf8)
    var sent = 0
    var maxRSS = 0
    let end = Clock.monotonicMs() + 3000
    var probe = try Background(c, ["list"])
    var probes: [Int64] = []
    var off = 0
    while Clock.monotonicMs() < end {
      if let n = try? hog.writeSome(Array(requests[off...])) {
        sent += n
        off = (off + n) % requests.count
      } else {
        sleepMs(2)
      }
      maxRSS = max(maxRSS, rssMiB(pid))
      if probe.finished {
        XCTAssertEqual(probe.code, 0, "cortex list while another client hogs its answers")
        probes.append(probe.ms)
        probe = try Background(c, ["submit", "--synthetic", "0"])
      }
    }
    probe.wait(timeoutMs: 10_000)
    XCTAssertEqual(probe.code, 0)
    probes.append(probe.ms)
    let count = sent / 26
    XCTAssertLessThan(sent, 16 << 20, "the daemon should stop reading a client that does not read its answers")
    XCTAssertLessThan(maxRSS, 100, "daemon RSS peaked at \(maxRSS) MiB with \(count) list requests sent and no answer read")
    XCTAssertLessThan(probes.max() ?? 0, 2000, "other clients took \(probes) ms")
  }

  /// Three thousand submits pipelined in one write: another client is still answered at once,
  /// because each connection gets a bounded share of every loop iteration.
  func testAPipeliningClientDoesNotStarveOthers() throws {
    try c.initialize([("max_queue", .int(10_000))])
    c.ok(["start", "--workers", "1"])
    let hog = try connect()
    defer { hog.close() }
    let one = #"{"op":"submit","tasks":[{"synthetic":{"duration_ms":0}}]}"# + "\n"
    let burst = Array(String(repeating: one, count: 3000).utf8)
    var off = 0
    var probe: Background?
    var probeMs: Int64?
    let deadline = Clock.monotonicMs() + 60_000
    var answers = 0
    var buf: [UInt8] = []
    while (off < burst.count || answers < 3000) && Clock.monotonicMs() < deadline {
      if off < burst.count, let n = try? hog.writeSome(Array(burst[off...])) { off += n }
      if off > 0 && probe == nil && probeMs == nil { probe = try Background(c, ["submit", "--synthetic", "0"]) }
      if let p = probe, p.finished {
        XCTAssertEqual(p.code, 0)
        probeMs = p.ms
        probe = nil
      }
      buf.removeAll(keepingCapacity: true)
      if (try? hog.read(appendingTo: &buf, max: 1 << 16)) != nil { answers += buf.filter { $0 == 10 }.count } else { sleepMs(1) }
    }
    probe?.wait(timeoutMs: 10_000)
    if let p = probe { probeMs = p.ms }
    XCTAssertEqual(answers, 3000, "every pipelined request is answered")
    XCTAssertLessThan(probeMs ?? .max, 1500, "another client's submit waited \(probeMs ?? -1) ms behind 3,000 pipelined ones")
  }

  func testIdleConnectionsAreClosedButAWaitingOneIsNot() throws {
    try c.initialize([("client_idle_timeout_s", .double(1))])
    c.ok(["start", "--workers", "1"])
    let idle = try connect()
    defer { idle.close() }
    let t0 = Clock.monotonicMs()
    let notice = readLine(idle, timeoutMs: 5000)
    XCTAssertEqual(notice?["reason"]?.string, "idle_timeout", notice?.encoded() ?? "no notice")
    XCTAssertTrue(closedByPeer(idle, withinMs: 1000), "the idle connection is closed")
    XCTAssertGreaterThanOrEqual(Clock.monotonicMs() - t0, 900)
    // A connection that sends requests now and then stays open.
    let chatty = try connect()
    defer { chatty.close() }
    for _ in 0..<4 {
      try chatty.writeAll(Array((#"{"op":"ping"}"# + "\n").utf8))
      XCTAssertEqual(readLine(chatty)?["ok"]?.bool, true)
      sleepMs(500)
    }
    // A `wait` longer than the idle timeout keeps its connection.
    let r = c.ok(["submit", "--shell", "sleep 2.5", "--wait"], timeoutS: 30)
    XCTAssertTrue(r.out.hasPrefix("task-"), r.out)
  }

  /// With `max_clients` connections open (and the reserve taken), other requests are refused with
  /// 75 but `cortex stop` gets in. Before: every connection past the cap was refused, stop too.
  func testStopGetsInWhenEveryConnectionIsTaken() throws {
    try c.initialize([("max_clients", .int(50))])
    c.ok(["start", "--workers", "1"])
    var held: [FileDescriptor] = []
    defer { for f in held { f.close() } }
    for _ in 0..<60 {
      let f = try connect()
      held.append(f)
      // Past the cap and the reserve, a connection may be refused and closed at once.
      _ = try? f.writeAll(Array((#"{"op":"ping"}"# + "\n").utf8))
      _ = readLine(f, timeoutMs: 5000)
    }
    let refused = c.run(["submit", "--synthetic", "0"])
    XCTAssertEqual(refused.code, 75, refused.err)
    XCTAssertTrue(refused.err.contains("max_clients"), refused.err)
    let pid = try XCTUnwrap(c.daemonPID)
    let stop = c.run(["stop", "--timeout", "5"], timeoutS: 60)
    XCTAssertEqual(stop.code, 0, stop.err)
    XCTAssertFalse(Processes.isAlive(pid), "the daemon exited")
  }
}
