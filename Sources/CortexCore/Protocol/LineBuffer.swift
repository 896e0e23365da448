/// Splits a byte stream into newline-terminated lines. A line longer than `maxLine` is an error
/// (the stream is not speaking the protocol); the buffer is then reset.
public struct LineBuffer: Sendable {
  public private(set) var bytes: [UInt8] = []
  private var start = 0
  /// Bytes from `start` up to here are known to hold no newline, so a long line arriving in many
  /// chunks is scanned once, not once per chunk.
  private var scanned = 0
  public let maxLine: Int

  public init(maxLine: Int = 1 << 20) { self.maxLine = maxLine }

  public mutating func append(_ b: [UInt8]) { bytes.append(contentsOf: b) }
  public mutating func append(_ b: ArraySlice<UInt8>) { bytes.append(contentsOf: b) }

  public enum Next { case line(ArraySlice<UInt8>), none, tooLong }

  /// The next complete line (without its newline).
  public mutating func next() -> Next {
    if let nl = bytes[max(start, scanned)...].firstIndex(of: 10) {
      let line = bytes[start..<nl]
      start = nl + 1
      scanned = start
      return .line(line)
    }
    scanned = bytes.count
    compact()
    if bytes.count > maxLine {
      reset()
      return .tooLong
    }
    return .none
  }

  /// Bytes received after the last complete line.
  public var partialCount: Int { bytes.count - start }

  public mutating func reset() {
    bytes.removeAll(keepingCapacity: true)
    start = 0
    scanned = 0
  }

  mutating func compact() {
    if start > 0 {
      bytes.removeFirst(start)
      scanned -= start
      start = 0
    }
  }
}
