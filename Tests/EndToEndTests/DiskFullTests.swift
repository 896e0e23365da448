import CortexCore
import Posix
import XCTest

/// A full file system (issue 10, item 3): the daemon refuses work at once, backs off instead of
/// spinning, keeps `cortex status` working, never dies, and resumes when space returns. The
/// directory lives on a 3 MiB tmpfs that the test fills; mounting needs root (tests run as root,
/// in CI too), and without it the test fails rather than skips.
final class DiskFullTests: XCTestCase {
  /// Runs `body` with a daemon directory on a fresh 3 MiB tmpfs at `mnt`; unmounts it after.
  func onTinyDisk(_ body: (_ c: Cortex, _ mnt: String) throws -> Void) throws {
    let c = try Cortex(rootName: "mnt/coord")
    let mnt = c.scratch + "/mnt"
    try FileSystem.makeDirectory(mnt)
    let mounted = runTool(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt])
    guard mounted.code == 0 else {
      c.finish()
      return XCTFail(
        "this test needs to mount a 3 MiB tmpfs (run it as root, as CI does): mount exited \(mounted.code): \(mounted.output)")
    }
    defer {
      c.finish()
      let u = runTool(["umount", mnt])
      XCTAssertEqual(u.code, 0, "umount \(mnt): \(u.output)")
      FileSystem.removeTree(c.scratch)
    }
    try body(c, mnt)
  }

  func testAFullDiskRefusesAtOnceBacksOffAndResumesWhenSpaceReturns() throws {
    try onTinyDisk { c, mnt in

      c.ok(["init", "--no-start"])
      c.ok(["start", "--workers", "4"])
      let pid = try XCTUnwrap(c.daemonPID)
      // Four tasks that are running when the disk fills and then report progress with long
      // messages: their events cannot be written, so the log itself fails (not only the check of
      // free space that refuses new work).
      let big = String(repeating: "x", count: 1000)
      let script =
        "sleep 1; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do "
        + "printf '{\"progress\":0.5,\"message\":\"%s\"}\\n' \(big) >&$CORTEX_REPORT_FD; sleep 0.12; done; exit 0"
      var running: [String] = []
      for _ in 0..<4 { running.append(c.ok(["submit", "-p", "--shell", script]).out.trimmed) }
      c.eventually("the four tasks run") { c.events().filter { $0.type == "task.started" }.count == 4 }

      let filler = mnt + "/filler"
      try fill(filler)

      // Refused at once, with the reason, because there is no space.
      var t0 = Clock.monotonicMs()
      var refused = c.run(["submit", "--synthetic", "10"], timeoutS: 10)
      XCTAssertEqual(refused.code, 75, refused.err)
      XCTAssertTrue(refused.err.contains("log_unavailable"), refused.err)
      XCTAssertLessThan(Clock.monotonicMs() - t0, 2000, "the refusal is immediate")

      // The running tasks' events now fail to be written: the daemon retries with backoff.
      c.eventually("the daemon reports that the log cannot be written", timeoutS: 10) {
        daemonLog(c).contains("cannot write the decision log")
      }
      t0 = Clock.monotonicMs()
      refused = c.run(["submit", "--synthetic", "10"], timeoutS: 10)
      XCTAssertEqual(refused.code, 75, refused.err)
      XCTAssertTrue(refused.err.contains("log_unavailable"), refused.err)
      XCTAssertLessThan(Clock.monotonicMs() - t0, 2000, "the refusal is immediate while the log fails")

      // No busy loop: well under 5 % of one core while the disk stays full.
      let cpu0 = try cpuTicks(pid)
      let wall0 = Clock.monotonicNs()
      sleepMs(2000)
      let cpu1 = try cpuTicks(pid)
      let wallTicks = Double(Clock.monotonicNs() - wall0) / 1e9 * 100  // USER_HZ is 100 on Linux
      XCTAssertLessThan(Double(cpu1 - cpu0), 0.05 * wallTicks, "daemon CPU while the disk is full: \(cpu1 - cpu0) of \(wallTicks) ticks")

      // Status reads the hot state without dying (no SIGBUS) and says the daemon is not admitting.
      let status = c.run(["status"], timeoutS: 10)
      XCTAssertEqual(status.code, 0, status.err)
      XCTAssertTrue(status.out.contains("NOT ADMITTING"), status.out)
      XCTAssertTrue(Processes.isAlive(pid), "the daemon is alive; its log says:\n\(daemonLog(c))")

      // Space returns: admission resumes, new work runs, and the four tasks end once each.
      try FileSystem.remove(filler)
      var accepted = ""
      c.eventually("a submit is accepted again", timeoutS: 10) {
        let r = c.run(["submit", "-p", "--synthetic", "10"], timeoutS: 10)
        accepted = r.out.trimmed
        return r.code == 0
      }
      c.ok(["wait", accepted], timeoutS: 20)
      c.ok(["wait"] + running, timeoutS: 20)
      let events = c.events()
      XCTAssertTrue(events.contains { $0.type == "daemon.resumed" }, "daemon.resumed is logged")
      for id in running {
        let ends = events.filter { $0.taskID == id && TaskState.terminalEventTypes.contains($0.type ?? "") }
        XCTAssertEqual(ends.map { $0.type ?? "" }, ["task.succeeded"], id)
      }
      XCTAssertEqual(c.daemonPID, pid, "the same daemon served throughout")
      c.ok(["stop"])
    }
  }

  func testAStopWhileTheLogCannotBeWrittenEndsAndTheNextStartRecovers() throws {
    try onTinyDisk { c, mnt in
      c.ok(["init", "--no-start"])
      c.ok(["start", "--workers", "2"])
      let big = String(repeating: "y", count: 1000)
      let script =
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do "
        + "printf '{\"progress\":0.5,\"message\":\"%s\"}\\n' \(big) >&$CORTEX_REPORT_FD; sleep 0.12; done; exit 0"
      let ids = (0..<2).map { _ in c.ok(["submit", "-p", "--shell", script]).out.trimmed }
      c.eventually("the tasks run") { c.events().filter { $0.type == "task.started" }.count == 2 }
      let filler = mnt + "/filler"
      try fill(filler)
      c.eventually("the daemon reports that the log cannot be written", timeoutS: 10) {
        daemonLog(c).contains("cannot write the decision log")
      }

      // The stop cannot write its events: the daemon leaves as after a crash, and says so.
      let t0 = Clock.monotonicMs()
      let stop = c.run(["stop", "--timeout", "5"], timeoutS: 20)
      XCTAssertEqual(stop.code, 0, stop.err)
      XCTAssertTrue(stop.err.contains("without its final events"), stop.err)
      XCTAssertLessThan(Clock.monotonicMs() - t0, 8000, "the stop ends within seconds")
      XCTAssertTrue(daemonLog(c).contains("stopping without the final events"), daemonLog(c))
      c.eventually("nothing of the pool is left") { c.leftovers.isEmpty }

      // With space back, the next start requeues the interrupted tasks and they end once each.
      try FileSystem.remove(filler)
      c.ok(["start", "--workers", "2"])
      c.ok(["wait"] + ids, timeoutS: 30)
      let events = c.events()
      for id in ids {
        let ends = events.filter { $0.taskID == id && TaskState.terminalEventTypes.contains($0.type ?? "") }
        XCTAssertEqual(ends.map { $0.type ?? "" }, ["task.succeeded"], id)
      }
      c.ok(["stop"])
    }
  }

  /// Writes zeros to `path` until the file system is full.
  private func fill(_ path: String) throws {
    let fd = try FileDescriptor.open(path, [.writeOnly, .create, .truncate])
    defer { fd.close() }
    for chunk in [1 << 16, 4096, 512, 1] {
      let zeros = [UInt8](repeating: 0, count: chunk)
      while (try? fd.writeAll(zeros)) != nil {}
    }
    XCTAssertThrowsError(try fd.writeAll([0]), "the file system is full")
  }
}

private func daemonLog(_ c: Cortex) -> String {
  String(decoding: ((try? FileSystem.read(c.paths.daemonLog)) ?? nil) ?? [], as: UTF8.self)
}

/// Runs a system tool; its exit code and its output (stdout and stderr together).
private func runTool(_ argv: [String]) -> (code: Int32, output: String) {
  do {
    let out = try FileSystem.makeTemporaryDirectory(prefix: "cortex-tool-")
    defer { FileSystem.removeTree(out) }
    let fd = try FileDescriptor.open(out + "/o", [.writeOnly, .create, .truncate])
    let devnull = try FileDescriptor.open("/dev/null", .readOnly)
    let pid = try Processes.spawn(argv, environment: Environment.all(), stdin: devnull, stdout: fd, stderr: fd, newProcessGroup: false)
    fd.close()
    devnull.close()
    let status = Processes.wait(pid)
    let text = String(decoding: ((try? FileSystem.read(out + "/o")) ?? nil) ?? [], as: UTF8.self)
    switch status {
    case .exited(let code)?: return (code, text)
    case .signaled(let s)?: return (128 + s, text)
    case nil: return (-1, text)
    }
  } catch {
    return (-1, "\(error)")
  }
}
