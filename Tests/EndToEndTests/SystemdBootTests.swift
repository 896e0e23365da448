import CortexCore
import Posix
import XCTest

/// The package under a real systemd, not a socket playing one: a container booted with
/// `systemd-nspawn` (Debian's `systemd-container`) over a throwaway overlay of this machine's own
/// root, the .deb installed in it with dpkg, the unit driven with systemctl. It shows what the
/// fake `$NOTIFY_SOCKET` of `SystemdTests` cannot: that systemd itself takes the daemon's
/// READY=1 and watchdog pings, restarts it after a crash or a hang without killing the running
/// tasks the new daemon re-adopts (`KillMode=process`, docs/design.md), stops it with nothing left
/// in its control group, and that the unit's hardening holds for tasks. Needs root (mount,
/// nspawn), as the cluster tests need it to install PostgreSQL.
final class SystemdBootTests: XCTestCase {
  static let nspawn = "/usr/bin/systemd-nspawn"
  let path = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]

  /// A booted container: its init's pid (for nsenter), and what to undo.
  final class Container {
    let nspawn: Int32
    let initPid: Int32
    let merged: String
    init(nspawn: Int32, initPid: Int32, merged: String) {
      self.nspawn = nspawn
      self.initPid = initPid
      self.merged = merged
    }
  }

  /// Root and nspawn, the package made from the test's binary, a container booted with it
  /// installed.
  func installed(_ c: Cortex) throws -> Container? {
    let (_, uid) = try sh(["/usr/bin/id", "-u"], environment: path)
    guard uid.trimmed == "0" else {
      XCTFail("needs root (mount, systemd-nspawn); CI runs as root")
      return nil
    }
    guard FileSystem.exists(Self.nspawn) else {
      XCTFail("\(Self.nspawn) is missing: apt-get install systemd-container (.ci/run does)")
      return nil
    }
    // As scripts/package lays it out: the static client as /usr/bin/cortex, which the units
    // start and which hands `daemon` to /usr/lib/cortex/cortexd (here the test's binary).
    let (client, _) = try layOutStaticClient(in: c.scratch)
    let (made, deb) = try sh(
      ["/bin/bash", HelpTests.repo + "/scripts/make-deb", Cortex.binary, c.scratch + "/dist", client],
      environment: path + ["CORTEX_DEB_COMPRESSION=none"])
    XCTAssertEqual(made, 0, deb)
    let box = try boot(scratch: c.scratch, deb: deb.trimmed)
    // The test's debug binary links the toolchain's Swift libraries (found in this root, which the
    // container shares): their made-up package names are the only unmet dependencies.
    let (code, dpkg) = run(box, "dpkg -i --force-depends /root/cortex.deb")
    XCTAssertEqual(code, 0, dpkg)
    return box
  }

  func testTheUnitUnderARealSystemd() throws {
    let c = try Cortex()
    defer { c.finish() }
    guard let box = try installed(c) else { return }
    defer { halt(box) }
    XCTAssertEqual(run(box, "id -un cortex").1.trimmed, "cortex", "postinst made no cortex user")

    // Type=notify: `systemctl start` returns once systemd has READY=1, sent after every worker is ready.
    let (started, startOut) = run(box, "systemctl start cortex")
    XCTAssertEqual(started, 0, startOut + journal(box))
    XCTAssertEqual(show(box, "ActiveState"), "active")
    XCTAssertTrue(show(box, "StatusText").hasPrefix("running: 20/20 workers ready"), show(box, "StatusText"))
    let status = try JSON.parse(run(box, cortex("status --json")).1)
    XCTAssertEqual(status["workers"]?["idle"]?.int, 20, "\(status)")
    // The unit starts /usr/bin/cortex, the static client, which became cortexd in place: the
    // pid systemd follows (and was told READY=1 by) runs cortexd.
    XCTAssertEqual(run(box, "readlink /proc/\(show(box, "MainPID"))/exe").1.trimmed, "/usr/lib/cortex/cortexd")

    // The hardening holds for tasks: /usr is read-only to them, the state directory is theirs,
    // and they cannot gain privileges.
    let denied = submit(box, "touch /usr/cortex-probe")
    XCTAssertEqual(wait(box, denied).0, 1, "a task wrote under /usr")
    XCTAssertEqual(wait(box, submit(box, "touch /var/lib/cortex/probe")).0, 0)
    let nnp = submit(box, "grep NoNewPrivs: /proc/self/status")
    XCTAssertEqual(wait(box, nnp).0, 0)
    XCTAssertTrue(run(box, "cat /var/lib/cortex/tasks/\(nnp)/output.log").1.contains("NoNewPrivs:\t1"))

    // A crash (SIGKILL to the daemon alone): systemd restarts it, the running task is re-adopted
    // and ends as it would have, in its first attempt.
    let crashed = submit(box, "sleep 4")
    awaitRunning(box, crashed)
    let (firstPid, restarts) = (show(box, "MainPID"), show(box, "NRestarts"))
    XCTAssertEqual(run(box, "systemctl kill --kill-who=main --signal=KILL cortex").0, 0)
    awaitRestart(box, from: firstPid, restarts: restarts)
    XCTAssertEqual(wait(box, crashed).0, 0, journal(box))
    XCTAssertTrue(run(box, cortex("show \(crashed)")).1.contains("1 of "), "the task was run again")

    // A hung loop: with WatchdogSec=2 the pings (every 1 s) keep it alive, a SIGSTOPped daemon is
    // restarted by the watchdog, and its running task again survives.
    let dropIn = "/etc/systemd/system/cortex.service.d"
    XCTAssertEqual(
      run(
        box,
        "mkdir -p \(dropIn) && printf '[Service]\\nWatchdogSec=2\\nTimeoutAbortSec=2\\n' > \(dropIn)/test.conf && systemctl daemon-reload"
      ).0, 0)
    XCTAssertEqual(run(box, "systemctl restart cortex").0, 0, journal(box))
    let ping = show(box, "WatchdogTimestampMonotonic")
    sleepMs(3500)
    XCTAssertEqual(show(box, "ActiveState"), "active", "the watchdog fired on a healthy daemon: \(journal(box))")
    XCTAssertNotEqual(show(box, "WatchdogTimestampMonotonic"), ping, "no watchdog ping reached systemd in 3.5 s")
    let hung = submit(box, "sleep 6")
    awaitRunning(box, hung)
    let (hungPid, restartsBefore) = (show(box, "MainPID"), show(box, "NRestarts"))
    XCTAssertEqual(run(box, "kill -STOP \(hungPid)").0, 0)
    awaitRestart(box, from: hungPid, restarts: restartsBefore)
    XCTAssertTrue(journal(box).contains("Watchdog timeout"), journal(box))
    XCTAssertEqual(wait(box, hung).0, 0, journal(box))
    XCTAssertTrue(run(box, cortex("show \(hung)")).1.contains("1 of "), "the task was run again")

    // Reload is SIGHUP to the same daemon.
    let before = show(box, "MainPID")
    XCTAssertEqual(run(box, "systemctl reload cortex").0, 0, journal(box))
    XCTAssertEqual(show(box, "MainPID"), before)
    XCTAssertEqual(show(box, "ActiveState"), "active")

    // Stop with a task running: the daemon drains it, and nothing is left in the control group
    // (KillMode=process sends SIGTERM to the daemon alone; its workers and tasks end by its hand).
    let draining = submit(box, "sleep 2")
    awaitRunning(box, draining)
    XCTAssertEqual(run(box, "systemctl stop cortex", timeoutS: 90).0, 0, journal(box))
    XCTAssertEqual(show(box, "ActiveState"), "inactive")
    XCTAssertEqual(show(box, "Result"), "success", journal(box))
    XCTAssertEqual(run(box, "pgrep -u cortex -a").1, "", "processes left after the stop")
    // (After the crash above systemd said the workers and the task "remain running after unit
    // stopped": that is the re-adoption. After a stop it would be a leak.)
    let stopping = journal(box).components(separatedBy: "Stopping cortex.service").last ?? ""
    XCTAssertFalse(stopping.contains("remains running after unit stopped"), stopping)
    let result = try JSON.parse(run(box, "cat /var/lib/cortex/tasks/\(draining)/result.json").1)
    XCTAssertEqual(result["state"]?.string, "succeeded", "\(result)")
    // Stopped, the directory is still the service's: start the unit, not a daemon by hand.
    let stopped = run(box, cortex("status")).1
    XCTAssertTrue(stopped.contains("start it with: sudo systemctl start cortex"), stopped)
  }

  /// The user unit under a user's own manager (user@UID.service, as a login starts it): its
  /// directory is the one the README names for CORTEX_DIR, its tasks run as the user and may write
  /// the user's project, and a stop leaves none of the user's processes but the manager's.
  func testTheUserUnitUnderAUsersManager() throws {
    let c = try Cortex()
    defer { c.finish() }
    guard let box = try installed(c) else { return }
    defer { halt(box) }
    XCTAssertEqual(run(box, "useradd --create-home dev").0, 0)
    let uid = run(box, "id -u dev").1.trimmed
    XCTAssertEqual(run(box, "systemctl start user@\(uid).service").0, 0, run(box, "journalctl --no-pager -u user@\(uid).service").1)
    let user = "runuser -u dev -- env XDG_RUNTIME_DIR=/run/user/\(uid)"
    let (started, startOut) = run(box, "\(user) systemctl --user start cortex")
    XCTAssertEqual(started, 0, startOut)
    XCTAssertEqual(run(box, "\(user) systemctl --user show --property=ActiveState --value cortex").1.trimmed, "active")
    let dir = "/home/dev/.local/state/cortex"  // README: export CORTEX_DIR=~/.local/state/cortex
    XCTAssertEqual(
      run(box, "test -S \(dir)/cortex.sock").0, 0, "no daemon's socket in \(dir): \(run(box, "ls -a /home/dev /home/dev/.*").1)")
    let submit = "mkdir -p ~/proj && cd ~/proj && CORTEX_DIR=\(dir) cortex submit --wait -- sh -c 'id -un > made-by-task'"
    let (code, out) = run(box, "\(user) HOME=/home/dev sh -c \"\(submit)\"")
    XCTAssertEqual(code, 0, out)
    XCTAssertEqual(run(box, "cat /home/dev/proj/made-by-task").1.trimmed, "dev")
    XCTAssertEqual(run(box, "\(user) systemctl --user stop cortex", timeoutS: 90).0, 0)
    XCTAssertEqual(run(box, "pgrep -u dev -a cortex").1, "", "processes left after the stop")
    let stopped = run(box, "\(user) CORTEX_DIR=\(dir) cortex status").1
    XCTAssertTrue(stopped.contains("start it with: systemctl --user start cortex"), stopped)
    XCTAssertEqual(run(box, "systemctl stop user@\(uid).service").0, 0)
  }

  // MARK: - The container

  /// Mounts an overlay of / (writes go to the scratch directory), puts the package in it, boots it
  /// to basic.target (no services but the journal) and waits for systemd to be running.
  func boot(scratch: String, deb: String) throws -> Container {
    let dir = scratch + "/box"
    for d in ["", "/upper", "/work", "/merged", "/upper/root"] { try FileSystem.makeDirectory(dir + d, mode: 0o755) }
    let (mounted, mountOut) = try sh(
      ["/bin/mount", "-t", "overlay", "overlay", "-o", "lowerdir=/,upperdir=\(dir)/upper,workdir=\(dir)/work", dir + "/merged"],
      environment: path)
    guard mounted == 0 else { throw HarnessError(message: "mount of the overlay: \(mountOut)") }
    let (copied, copyOut) = try sh(["/bin/cp", deb, dir + "/upper/root/cortex.deb"], environment: path)
    guard copied == 0 else {
      _ = try? sh(["/bin/umount", dir + "/merged"], environment: path)
      throw HarnessError(message: "cp: \(copyOut)")
    }
    let null = try FileDescriptor.open("/dev/null", .readOnly)
    defer { null.close() }
    let log = try FileDescriptor.open(dir + "/boot.log", [.writeOnly, .create, .truncate])
    defer { log.close() }
    let pid = try Processes.spawn(
      [
        Self.nspawn, "--directory", dir + "/merged", "--register=no", "--link-journal=no", "--keep-unit", "--private-network",
        "--console=passive", "--quiet", "--boot", "systemd.unit=basic.target",
      ], environment: path, stdin: null, stdout: log, stderr: log, newProcessGroup: true)
    var initPid: Int32 = 0
    let deadline = Clock.monotonicMs() + 30_000
    while initPid == 0 && Clock.monotonicMs() < deadline {
      initPid = Processes.all().first { $0.parent == pid && $0.commandLine.first?.hasSuffix("systemd") == true }?.pid ?? 0
      if initPid == 0 { sleepMs(50) }
    }
    let box = Container(nspawn: pid, initPid: initPid, merged: dir + "/merged")
    guard initPid != 0 else {
      halt(box)
      throw HarnessError(
        message:
          "no systemd in the container within 30 s: \(String(decoding: (try? FileSystem.read(dir + "/boot.log")) ?? [], as: UTF8.self))")
    }
    // Until systemd listens on its private socket, systemctl cannot reach it; then --wait waits
    // for the boot to finish.
    var state = ""
    repeat {
      state = run(box, "systemctl is-system-running --wait", timeoutS: 60).1.trimmed
      if state.hasPrefix("Failed to connect") { sleepMs(50) } else { break }
    } while Clock.monotonicMs() < deadline
    guard ["running", "degraded"].contains(state) else {
      halt(box)
      throw HarnessError(message: "the container's systemd is \(state)")
    }
    return box
  }

  /// Powers the container off (SIGTERM to nspawn), kills what is left, unmounts the overlay.
  func halt(_ box: Container) {
    _ = Processes.signal(box.nspawn, Signal.term)
    let deadline = Clock.monotonicMs() + 30_000
    while Processes.reap(box.nspawn) == nil {
      if Clock.monotonicMs() > deadline {
        _ = Processes.signalGroup(box.nspawn, Signal.kill)
        _ = Processes.wait(box.nspawn)
        XCTFail("the container did not power off within 30 s")
        break
      }
      sleepMs(20)
    }
    _ = try? sh(["/bin/umount", box.merged], environment: path)
    _ = try? sh(["/bin/umount", "-l", box.merged], environment: path)
  }

  /// Runs a shell command inside the container (all of its namespaces), as root.
  @discardableResult
  func run(_ box: Container, _ command: String, timeoutS: Int64 = 60, file: StaticString = #filePath, line: UInt = #line) -> (Int32, String)
  {
    (try? sh(
      ["/usr/bin/nsenter", "--target", String(box.initPid), "--all", "/bin/sh", "-c", command], environment: path + ["SYSTEMD_COLORS=0"],
      timeoutS: timeoutS, file: file, line: line)) ?? (-1, "")
  }

  /// `cortex …` as the unit's user, on the unit's directory.
  func cortex(_ args: String) -> String { "runuser -u cortex -- cortex --dir /var/lib/cortex \(args)" }

  func show(_ box: Container, _ property: String) -> String {
    run(box, "systemctl show --property=\(property) --value cortex").1.trimmed
  }

  func journal(_ box: Container) -> String { run(box, "journalctl --no-pager -u cortex").1 }

  /// Submits `sh -c COMMAND`; returns its id.
  func submit(_ box: Container, _ command: String, file: StaticString = #filePath, line: UInt = #line) -> String {
    let (code, out) = run(box, cortex("submit -- /bin/sh -c '\(command)'"), file: file, line: line)
    XCTAssertEqual(code, 0, out, file: file, line: line)
    return out.trimmed
  }

  /// `cortex wait ID`: (exit code, output).
  func wait(_ box: Container, _ id: String, file: StaticString = #filePath, line: UInt = #line) -> (Int32, String) {
    run(box, cortex("wait \(id)"), timeoutS: 90, file: file, line: line)
  }

  func awaitRunning(_ box: Container, _ id: String, file: StaticString = #filePath, line: UInt = #line) {
    let deadline = Clock.monotonicMs() + 20_000
    while Clock.monotonicMs() < deadline {
      if run(box, cortex("show --json \(id)")).1.contains("\"state\":\"running\"") { return }
      sleepMs(100)
    }
    XCTFail("\(id) not running within 20 s: \(run(box, cortex("show \(id)")).1)", file: file, line: line)
  }

  /// Waits until systemd has restarted the service by itself (Restart=, not a `systemctl
  /// restart`: NRestarts past `restarts`) and it is active again under another pid than `pid`.
  func awaitRestart(_ box: Container, from pid: String, restarts before: String, file: StaticString = #filePath, line: UInt = #line) {
    let restarts = Int(before) ?? 0
    let deadline = Clock.monotonicMs() + 30_000
    while Clock.monotonicMs() < deadline {
      if (Int(show(box, "NRestarts")) ?? 0) > restarts && show(box, "ActiveState") == "active" && show(box, "MainPID") != pid { return }
      sleepMs(100)
    }
    XCTFail("systemd did not restart the daemon (pid \(pid)) within 30 s: \(journal(box))", file: file, line: line)
  }
}
