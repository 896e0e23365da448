import CortexCore
import CortexDaemon
import Posix
import XCTest

/// The crc32 instruction's CRC-32C is CortexCore's table-driven one: on the check value, on every
/// length and alignment up to a few blocks, and continued across pieces from a seed. (Where the
/// CPU has no crc32 instruction, FastCRC32C is the table itself.)
final class ChecksumTests: XCTestCase {
  func testTheInstructionAndTheTableAgree() throws {
    XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { FastCRC32C.checksum($0) }, 0xE306_9283)
    let hardware = HardwareCRC32C.available ? HardwareCRC32C.checksum : CRC32C.checksum
    var rng = SystemRandomNumberGenerator()
    let data = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
    data.withUnsafeBytes { all in
      for start in 0..<9 {
        for count in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4000] where start + count <= all.count {
          let p = UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
          XCTAssertEqual(hardware(p, 0), CRC32C.checksum(p), "bytes \(start)..<\(start + count)")
        }
      }
      let first = UnsafeRawBufferPointer(rebasing: all[0..<1001]), rest = UnsafeRawBufferPointer(rebasing: all[1001...])
      XCTAssertEqual(hardware(rest, hardware(first, 0)), CRC32C.checksum(all))
      XCTAssertEqual(FastCRC32C.checksum(rest, seed: CRC32C.checksum(first)), CRC32C.checksum(all))
    }
    XCTAssertEqual(FastCRC32C.checksum(data), CRC32C.checksum(data))
    XCTAssertEqual(FastCRC32C.checksum(data[5...]), CRC32C.checksum(Array(data[5...])))
  }
}
