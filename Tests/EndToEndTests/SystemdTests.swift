import CortexCore
import Posix
import XCTest

/// The daemon speaks sd_notify(3) to a socket that plays systemd: READY=1 once every worker is
/// ready, STATUS= lines, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 when a stop begins, in
/// that order, and the variables are not inherited by the workers.
final class SystemdTests: XCTestCase {
  /// A fake `$NOTIFY_SOCKET`: collects datagrams as they arrive.
  final class FakeSystemd {
    let fd: FileDescriptor
    var messages: [(ms: Int64, fields: [String])] = []
    init(_ name: String) throws { fd = try Datagram.bind(name) }
    deinit { fd.close() }

    /// Reads datagrams until one has `field`; fails after `timeoutMs`.
    @discardableResult
    func await(_ field: String, timeoutMs: Int64 = 20_000, file: StaticString = #filePath, line: UInt = #line) -> Bool {
      let deadline = Clock.monotonicMs() + timeoutMs
      while Clock.monotonicMs() < deadline {
        if fd.waitReadable(timeoutMs: 50) {
          var b: [UInt8] = []
          _ = try? fd.read(appendingTo: &b, max: 4096)
          let fields = String(decoding: b, as: UTF8.self).split(separator: "\n").map(String.init)
          messages.append((Clock.monotonicMs(), fields))
          if fields.contains(field) { return true }
        }
      }
      XCTFail("no \(field) within \(timeoutMs) ms; got \(messages.map(\.fields))", file: file, line: line)
      return false
    }
    var all: [String] { messages.flatMap(\.fields) }
  }

  func startDaemon(_ c: Cortex, notifySocket: String, extraEnvironment: [String]) throws -> Int32 {
    let null = try FileDescriptor.open("/dev/null", .readOnly)
    defer { null.close() }
    let out = try FileDescriptor.open(c.scratch + "/daemon.out", [.writeOnly, .create, .append])
    defer { out.close() }
    let inherited = Environment.all().filter { !$0.hasPrefix("CORTEX_") && !$0.hasPrefix("NOTIFY_SOCKET=") && !$0.hasPrefix("WATCHDOG_") }
    return try Processes.spawn(
      [Cortex.binary, "--dir", c.root, "daemon"], environment: inherited + ["NOTIFY_SOCKET=\(notifySocket)"] + extraEnvironment,
      stdin: null, stdout: out, stderr: out, newProcessGroup: false)
  }

  func reap(_ pid: Int32, file: StaticString = #filePath, line: UInt = #line) {
    let deadline = Clock.monotonicMs() + 30_000
    while Clock.monotonicMs() < deadline {
      if Processes.reap(pid) != nil { return }
      sleepMs(10)
    }
    _ = Processes.signal(pid, Signal.kill)
    _ = Processes.wait(pid)
    XCTFail("the daemon did not exit within 30 s", file: file, line: line)
  }

  func testReadyStatusWatchdogStoppingInOrder() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(4))])
    let systemd = try FakeSystemd(c.scratch + "/notify.sock")
    // WatchdogSec=200ms: a ping every 100 ms.
    let pid = try startDaemon(c, notifySocket: c.scratch + "/notify.sock", extraEnvironment: ["WATCHDOG_USEC=200000"])
    systemd.await("READY=1")
    // Every worker had written its worker.ready line before READY=1 went out.
    XCTAssertEqual(c.events().filter { $0.type == "worker.ready" }.count, 4, "READY=1 came before all 4 workers were ready")
    let readyMessage = systemd.messages.last!.fields
    XCTAssertTrue(readyMessage.contains("MAINPID=\(pid)"), "\(readyMessage)")
    XCTAssertTrue(
      readyMessage.contains { $0.hasPrefix("STATUS=running: 4/4 workers ready") }, "READY=1 without the status line: \(readyMessage)")

    // Pings keep coming while the daemon idles.
    let readyAt = Clock.monotonicMs()
    while Clock.monotonicMs() < readyAt + 700 { systemd.await("WATCHDOG=1", timeoutMs: 1000) }
    let pings = systemd.messages.filter { $0.ms >= readyAt && $0.fields.contains("WATCHDOG=1") }
    XCTAssertGreaterThanOrEqual(pings.count, 4, "expected a WATCHDOG=1 about every 100 ms for 700 ms, got \(pings.count)")

    // The workers (and so the tasks) do not inherit the socket.
    let workers = c.leftovers.filter { $0.parent == pid }
    XCTAssertEqual(workers.count, 4)
    for w in workers {
      let env = String(decoding: ((try? FileSystem.read("/proc/\(w.pid)/environ")) ?? nil) ?? [], as: UTF8.self)
      XCTAssertFalse(env.contains("NOTIFY_SOCKET="), "worker \(w.pid) inherited NOTIFY_SOCKET")
      XCTAssertFalse(env.contains("WATCHDOG_USEC="), "worker \(w.pid) inherited WATCHDOG_USEC")
    }

    c.ok(["submit", "--synthetic", "0"])
    c.ok(["stop"])
    systemd.await("STOPPING=1")
    reap(pid)
    let all = systemd.all
    XCTAssertEqual(all.filter { $0 == "READY=1" }.count, 1, "\(all)")
    XCTAssertEqual(all.filter { $0 == "STOPPING=1" }.count, 1, "\(all)")
    let ready = try XCTUnwrap(all.firstIndex(of: "READY=1"))
    let stopping = try XCTUnwrap(all.firstIndex(of: "STOPPING=1"))
    XCTAssertLessThan(ready, stopping)
    XCTAssertTrue(all.contains { $0.hasPrefix("STATUS=stopping") }, "no stopping status: \(all)")
  }

  /// `cortex restart` (SIGUSR2) execs a new program with the same pid: systemd still expects its
  /// pings, so the new program must have $NOTIFY_SOCKET and $WATCHDOG_USEC back (the old one
  /// removed them from its environment); without them systemd's watchdog kills the service, its
  /// workers and their tasks, a WatchdogSec after the restart.
  func testARestartInPlaceKeepsPingingTheWatchdog() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(2))])
    let systemd = try FakeSystemd(c.scratch + "/notify.sock")
    let pid = try startDaemon(
      c, notifySocket: c.scratch + "/notify.sock", extraEnvironment: ["WATCHDOG_USEC=200000"])
    systemd.await("READY=1")
    let task = c.ok(["submit", "--", "sleep", "30"]).out.trimmed
    c.eventually("\(task) started") { c.events().contains { $0.type == "task.started" && $0.taskID == task } }
    c.ok(["restart"], timeoutS: 60)
    XCTAssertTrue(c.events().contains { $0.type == "daemon.restarting" }, "no restart happened")
    // The new program: READY=1 again once it has re-adopted its pool, then pings every 100 ms.
    systemd.messages.removeAll()
    systemd.await("READY=1")
    let after = Clock.monotonicMs()
    while Clock.monotonicMs() < after + 700 { if !systemd.await("WATCHDOG=1", timeoutMs: 1000) { break } }
    let pings = systemd.messages.filter { $0.ms >= after && $0.fields.contains("WATCHDOG=1") }
    XCTAssertGreaterThanOrEqual(pings.count, 4, "after the restart, expected a WATCHDOG=1 about every 100 ms: \(systemd.all)")
    XCTAssertTrue(systemd.all.contains("MAINPID=\(pid)"), "\(systemd.all)")
    // Still not inherited by what the daemon starts after the restart.
    c.ok(["scale", "3"])
    c.eventually("a third worker") { c.leftovers.filter { $0.parent == pid }.count == 3 }
    for w in c.leftovers where w.parent == pid {
      let env = String(decoding: ((try? FileSystem.read("/proc/\(w.pid)/environ")) ?? nil) ?? [], as: UTF8.self)
      XCTAssertFalse(env.contains("NOTIFY_SOCKET="), "worker \(w.pid) inherited NOTIFY_SOCKET")
    }
    c.ok(["cancel", task])
    c.ok(["stop"])
    systemd.await("STOPPING=1")
    reap(pid)
  }

  /// One worker, the daemon started as systemd would (`NOTIFY_SOCKET` a fake listens on), ready.
  func readyUnderFakeSystemd(_ c: Cortex) throws -> (FakeSystemd, Int32) {
    try c.initialize([("workers", .int(1))])
    let systemd = try FakeSystemd(c.scratch + "/notify.sock")
    let pid = try startDaemon(c, notifySocket: c.scratch + "/notify.sock", extraEnvironment: [])
    systemd.await("READY=1")
    return (systemd, pid)
  }

  /// A stop takes as long as the daemon's own bounds (a drain of `kill_grace_s` + 25 s, then the
  /// tasks' grace, then the reap), longer than the unit's `TimeoutStopSec=` allows when
  /// `kill_grace_s` is raised: from `STOPPING=1` on, the daemon keeps asking systemd for more
  /// time (`EXTEND_TIMEOUT_USEC=`, every 5 s), so systemd does not SIGKILL it mid-stop.
  func testAStopThatDrainsKeepsExtendingSystemdsStopTimeout() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (systemd, pid) = try readyUnderFakeSystemd(c)
    let task = c.ok(["submit", "--", "sleep", "60"]).out.trimmed
    c.eventually("\(task) started") { c.events().contains { $0.type == "task.started" && $0.taskID == task } }
    // What `systemctl stop` does: SIGTERM to the daemon; the task keeps it draining.
    XCTAssertTrue(Processes.signal(pid, Signal.term))
    systemd.await("STOPPING=1")
    let stopping = systemd.messages.last!.fields
    XCTAssertTrue(stopping.contains("EXTEND_TIMEOUT_USEC=30000000"), "STOPPING=1 without asking for more time: \(stopping)")
    let first = systemd.messages.count
    systemd.await("EXTEND_TIMEOUT_USEC=30000000", timeoutMs: 9_000)
    XCTAssertGreaterThan(systemd.messages.count, first)
    c.ok(["cancel", task])
    reap(pid)
    // KillMode=process: systemd signals the daemon alone and, once it has exited, kills nothing
    // else; the unit is stopped with whatever is left. So nothing may be left at that moment.
    let left = c.leftovers.filter { !$0.isZombie }
    let described = left.map { "\($0.pid) \($0.commandLine.joined(separator: " "))" }
    XCTAssertTrue(left.isEmpty, "still running when the daemon exited: \(described)")
  }

  /// `systemctl reload` is `kill -HUP`: it succeeds whatever the daemon then makes of config.json.
  /// A file it refuses must show in the journal (the daemon's stderr), not only in its own log.
  func testAReloadThatKeepsTheOldConfigSaysSoOnStderr() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (systemd, pid) = try readyUnderFakeSystemd(c)
    let config = c.root + "/config.json"
    let good = try XCTUnwrap(try FileSystem.read(config))
    try FileSystem.writeAtomically(config, Array("{\"workers\": ".utf8), durable: false)
    XCTAssertTrue(Processes.signal(pid, Signal.hup))
    c.eventually("a config_invalid warning") {
      c.events().contains { $0.type == "daemon.warning" && $0["reason"]?.string == "config_invalid" }
    }
    let stderr = String(decoding: (try FileSystem.read(c.scratch + "/daemon.out")) ?? [], as: UTF8.self)
    XCTAssertTrue(stderr.contains("SIGHUP: not using config.json"), "the refused reload is not on stderr: \(stderr)")
    try FileSystem.writeAtomically(config, good, durable: false)
    c.ok(["stop"])
    reap(pid)
    systemd.await("STOPPING=1")
  }

  /// A systemd that does not read (its queue full after ten datagrams) never stalls the loop:
  /// pings are dropped, submits are still answered.
  func testANotifySocketThatIsNotReadNeverBlocksTheDaemon() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(1))])
    let systemd = try FakeSystemd(c.scratch + "/notify.sock")
    let pid = try startDaemon(c, notifySocket: c.scratch + "/notify.sock", extraEnvironment: ["WATCHDOG_USEC=20000"])
    c.eventually("the daemon answers") { c.run(["status"]).code == 0 }
    sleepMs(500)  // 50 pings sent: the socket's queue is long full
    let started = Clock.monotonicMs()
    c.ok(["submit", "--wait", "--synthetic", "0"], timeoutS: 20)
    XCTAssertLessThan(Clock.monotonicMs() - started, 10_000, "a submit waited on the unread notify socket")
    c.ok(["stop"])
    reap(pid)
    _ = systemd
  }

  /// An abstract-namespace socket (`@name`), and a watchdog meant for another process.
  func testAbstractSocketAndWatchdogForAnotherPID() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(2))])
    let name = "@cortex-test-\(Processes.currentID)-\(Clock.monotonicNs())"
    let systemd = try FakeSystemd(name)
    let pid = try startDaemon(c, notifySocket: name, extraEnvironment: ["WATCHDOG_USEC=100000", "WATCHDOG_PID=1"])
    systemd.await("READY=1")
    sleepMs(300)
    c.ok(["stop"])
    systemd.await("STOPPING=1")
    reap(pid)
    XCTAssertFalse(systemd.all.contains("WATCHDOG=1"), "pings although WATCHDOG_PID named another process: \(systemd.all)")
  }
}
