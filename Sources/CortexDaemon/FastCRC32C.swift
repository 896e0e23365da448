import CortexCore
import Posix

/// CRC-32C for the daemon's and the CLI's checksums of log segments and inbox files: the crc32
/// instruction where the CPU has it (`HardwareCRC32C`), else CortexCore's table (`CRC32C`). The
/// same function either way (`ChecksumTests`); a start that checks the 64 MB segment being
/// written spent about 0.15 s in the table.
public enum FastCRC32C {
  public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
    HardwareCRC32C.available ? HardwareCRC32C.checksum(bytes, seed: seed) : CRC32C.checksum(bytes, seed: seed)
  }

  public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }

  public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }
}
