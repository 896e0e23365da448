import Posix
import XCTest

/// termios and pseudo-terminal wrappers (`cortex top` reads keys through them).
final class TerminalTests: XCTestCase {
  func testRawInputIsEnteredAndRestoredExactly() throws {
    let (master, slavePath) = try PseudoTerminal.open()
    defer { master.close() }
    let slave = try FileDescriptor.open(slavePath, .readWrite)
    defer { slave.close() }
    XCTAssertTrue(slave.isTerminal)
    XCTAssertFalse(TerminalMode.isRawInput(slave), "a new terminal is canonical with echo")
    let before = try TerminalMode.current(slave)
    let saved = try TerminalMode.rawInput(slave)
    XCTAssertEqual(saved, before)
    XCTAssertTrue(TerminalMode.isRawInput(slave))
    // A key arrives at once, without a newline, and is not echoed back.
    try master.writeAll([UInt8(ascii: "q")])
    XCTAssertEqual(Poll.firstReadable([slave], timeoutMs: 2000), 0)
    var key: [UInt8] = []
    _ = try slave.read(appendingTo: &key, max: 16)
    XCTAssertEqual(key, [UInt8(ascii: "q")])
    XCTAssertFalse(master.waitReadable(timeoutMs: 100), "no echo")
    saved.restore(slave)
    XCTAssertEqual(try TerminalMode.current(slave), before)
    XCTAssertNil(Poll.firstReadable([slave], timeoutMs: 10), "nothing more to read")
  }

  func testRawInputOfANonTerminalFails() throws {
    let p = try makePipe()
    defer {
      p.read.close()
      p.write.close()
    }
    XCTAssertThrowsError(try TerminalMode.rawInput(p.read))
  }
}
