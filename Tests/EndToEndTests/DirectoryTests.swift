import CortexCore
import Posix
import XCTest

/// The coordination directory is owner-only and Cortex refuses one another user could change
/// (issue 10, item 5), and a --dir too long for a Unix socket is refused with the remedy (item 13).
/// Tests run as root, so "another user" is uid 65534 (nobody), which root can chown to.
final class DirectoryTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  static let nobody: UInt32 = 65534

  func testInitCreatesEveryDirectoryOwnerOnly() throws {
    c.ok(["init", "--no-start"])
    for d in c.paths.directories {
      XCTAssertEqual(FileSystem.permissions(d), 0o700, d)
      XCTAssertEqual(try FileSystem.status(d)?.owner, Processes.effectiveUserID, d)
    }
    XCTAssertEqual(FileSystem.permissions(c.paths.config), 0o600)
    // A layout made looser by someone (but still ours and not writable by others) is tightened.
    try FileSystem.setMode(c.paths.tasks, 0o755)
    c.ok(["init", "--no-start"])
    XCTAssertEqual(FileSystem.permissions(c.paths.tasks), 0o700)
    c.ok(["start", "--workers", "1"])
    XCTAssertEqual(FileSystem.permissions(c.paths.socket), 0o600)
    c.ok(["stop"])
  }

  func testADirectoryAnotherUserOwnsIsRefusedByInitAndStart() throws {
    try FileSystem.makeDirectory(c.root, mode: 0o700)
    try FileSystem.setOwner(c.root, user: Self.nobody, group: Self.nobody)
    for command in [["init"], ["start", "--workers", "1"], ["daemon", "--workers", "1"]] {
      let r = c.run(command, timeoutS: 20)
      XCTAssertEqual(r.code, 1, "\(command): \(r.err)")
      XCTAssertTrue(r.err.contains("\(c.root) is owned by uid \(Self.nobody)"), r.err)
      XCTAssertTrue(r.err.contains("chown"), r.err)
    }
    XCTAssertFalse(FileSystem.exists(c.paths.config), "nothing was written")
    XCTAssertNil(c.daemonPID)

    // A config.json that another user owns, in a directory that is ours.
    try FileSystem.setOwner(c.root, user: Processes.effectiveUserID, group: 0)
    c.ok(["init", "--no-start"])
    try FileSystem.setOwner(c.paths.config, user: Self.nobody, group: Self.nobody)
    let r = c.run(["start", "--workers", "1"], timeoutS: 20)
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("\(c.paths.config) is owned by uid \(Self.nobody)"), r.err)
    XCTAssertNil(c.daemonPID)
  }

  func testAWorldWritableSubdirectoryIsRefusedByInitAndStart() throws {
    c.ok(["init", "--no-start"])
    for sub in [c.paths.events, c.paths.tasks, c.paths.fifo, c.paths.inbox] {
      try FileSystem.setMode(sub, 0o777)
      for command in [["init"], ["start", "--workers", "1"]] {
        let r = c.run(command, timeoutS: 20)
        XCTAssertEqual(r.code, 1, "\(command) with \(sub) 0777: \(r.err)")
        XCTAssertTrue(r.err.contains("\(sub) is writable by its group and others (mode 0777)"), r.err)
        XCTAssertTrue(r.err.contains("chmod 700 \(sub)"), r.err)
      }
      try FileSystem.setMode(sub, 0o700)
    }
    XCTAssertNil(c.daemonPID)
    c.ok(["start", "--workers", "1"])
    c.ok(["stop"])
  }

  func testAParentOthersCanWriteIsRefusedUnlessSticky() throws {
    let open = c.scratch + "/open"
    let root = open + "/coord"
    try FileSystem.makeDirectory(open)
    try FileSystem.setMode(open, 0o777)
    let r = c.run(raw: ["--dir", root, "init", "--no-start"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("\(open) is writable by its group and others (mode 0777) and not sticky"), r.err)
    XCTAssertFalse(FileSystem.exists(root), "nothing was created")
    // Sticky, like /tmp: only an entry's owner may rename it, so the directory below is safe.
    try FileSystem.setMode(open, 0o1777)
    XCTAssertEqual(c.run(raw: ["--dir", root, "init", "--no-start"]).code, 0)
    XCTAssertEqual(FileSystem.permissions(root), 0o700)
  }

  func testASocketPathTooLongForUnixSocketsIsRefusedWithTheRemedy() throws {
    let long = c.scratch + "/" + String(repeating: "d", count: 110 - c.scratch.count)
    let socket = long + "/cortex.sock"
    for command in [["start"], ["daemon"], ["submit", "--synthetic", "1"], ["list"], ["stop"]] {
      let r = c.run(raw: ["--dir", long] + command, timeoutS: 20)
      XCTAssertEqual(r.code, 64, "\(command): \(r.err)")
      XCTAssertTrue(
        r.err.contains("the socket path \(socket) is \(socket.utf8.count) bytes, more than the 107 a Unix socket allows"), r.err)
      XCTAssertTrue(r.err.contains("use a shorter --dir"), r.err)
      XCTAssertFalse(r.err.contains("File name too long"), r.err)
    }
    // init says so at once, and status gives the same remedy, not a `cortex start` that the
    // next command refuses.
    let initialized = c.run(raw: ["--dir", long, "init", "--no-start"])
    XCTAssertEqual(initialized.code, 0, initialized.err)
    XCTAssertTrue(initialized.err.contains("no daemon can run there yet"), initialized.err)
    XCTAssertTrue(initialized.err.contains("use a shorter --dir"), initialized.err)
    let status = c.run(raw: ["--dir", long, "status"])
    XCTAssertEqual(status.code, 69, status.err)
    XCTAssertTrue(status.err.contains("no daemon can run there") && status.err.contains("use a shorter --dir"), status.err)
    XCTAssertFalse(status.err.contains("cortex start"), status.err)
  }
}
