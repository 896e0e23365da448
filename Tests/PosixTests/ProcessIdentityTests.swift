import Posix
import XCTest

/// What re-adoption relies on (SPEC §14): a start time that tells a process from a later one with
/// the same pid, a pidfd that reports the exit of any process, and the FIFO semantics an orphaned
/// worker uses to notice a new daemon (read 0 with no writer, would-block once one is there).
final class ProcessIdentityTests: XCTestCase {
  func spawnSleep() throws -> Int32 {
    let devnull = try FileDescriptor.open("/dev/null", .readWrite)
    defer { devnull.close() }
    return try Processes.spawn(["sleep", "30"], environment: [], stdin: devnull, stdout: devnull, stderr: devnull, newProcessGroup: true)
  }

  func testStartTimeIsStableForAProcessAndAbsentAfterIt() throws {
    let me = try XCTUnwrap(Processes.startTime(Processes.currentID))
    XCTAssertEqual(Processes.startTime(Processes.currentID), me)
    let child = try spawnSleep()
    let t = try XCTUnwrap(Processes.startTime(child))
    XCTAssertGreaterThanOrEqual(t, me, "a later process never started earlier")
    Processes.signal(child, Signal.kill)
    _ = Processes.wait(child)
    XCTAssertNil(Processes.startTime(child), "no start time for a pid nobody holds")
    XCTAssertNil(Processes.startTime(0))
  }

  func testAPidFDBecomesReadableWhenTheProcessExits() throws {
    let child = try spawnSleep()
    let fd = try Processes.openPidFD(child)
    defer { fd.close() }
    XCTAssertFalse(fd.waitReadable(timeoutMs: 50), "readable while the process lives")
    Processes.signal(child, Signal.kill)
    XCTAssertTrue(fd.waitReadable(timeoutMs: 5000), "not readable after the process was killed")
    _ = Processes.wait(child)
  }

  func testAnOrphanedReaderSeesEndOfFileUntilANewWriterOpensTheFIFO() throws {
    let dir = try FileSystem.makeTemporaryDirectory(prefix: "cortex-fifo-")
    defer { FileSystem.removeTree(dir) }
    let path = dir + "/w.in"
    try FileSystem.makeFIFO(path)
    var writer = try FileDescriptor.open(path, [.readWrite, .nonBlocking])  // the daemon's end
    let reader = try FileDescriptor.open(path, [.readOnly, .nonBlocking])  // the worker's end
    defer { reader.close() }
    try writer.writeAll("hello\n")
    var buf: [UInt8] = []
    XCTAssertEqual(try reader.read(appendingTo: &buf, max: 100), 6)
    writer.close()  // the daemon dies
    XCTAssertEqual(try reader.read(appendingTo: &buf, max: 100), 0, "end of file with no writer")
    writer = try FileDescriptor.open(path, [.readWrite, .nonBlocking])  // a new daemon
    defer { writer.close() }
    XCTAssertThrowsError(try reader.read(appendingTo: &buf, max: 100)) { e in
      XCTAssertEqual((e as? PosixError)?.isWouldBlock, true, "\(e)")
    }
    try writer.writeAll("adopt\n")
    XCTAssertEqual(try reader.read(appendingTo: &buf, max: 100), 6, "the same descriptor reads the new daemon")
  }
}
