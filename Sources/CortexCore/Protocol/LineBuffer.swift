/// Splits a byte stream into newline-terminated lines, holding at most `maxLine` bytes of an
/// unfinished line. A line longer than that is an error (the stream is not speaking the protocol):
/// its bytes are dropped as soon as they pass the limit, the rest of it is skipped as it arrives,
/// and `next()` reports `.tooLong` once, in its place among the lines (so a reply per line still
/// pairs with the requests). So a peer that never sends
/// a newline costs at most `maxLine` bytes, and each byte is searched for a newline once.
public struct LineBuffer: Sendable {
  public private(set) var bytes: [UInt8] = []
  /// First byte not yet returned.
  private var start = 0
  /// Where the search for the next newline resumes (no newline in `start..<scanned`).
  private var scanned = 0
  /// First byte after the last newline appended: where the unfinished line begins.
  private var partialStart = 0
  /// Where dropped lines stood, to report them in order: `.tooLong` or `.dropped`.
  private var drops: [(at: Int, tooLong: Bool)] = []
  /// Dropping the rest of a too-long line until its newline arrives.
  public private(set) var skipping = false
  public let maxLine: Int

  public init(maxLine: Int = 1 << 20) { self.maxLine = maxLine }

  public mutating func append(_ b: [UInt8]) { append(b[...]) }

  public mutating func append(_ b: ArraySlice<UInt8>) {
    var b = b
    if skipping {
      guard let nl = Self.newline(in: b, first: true) else { return }
      skipping = false
      b = b[(nl + 1)...]
    }
    if let last = Self.newline(in: b, first: false) { partialStart = bytes.count + (last - b.startIndex) + 1 }
    bytes.append(contentsOf: b)
    if bytes.count - partialStart > maxLine {
      // Drop the unfinished line now rather than hold it: it can never be accepted.
      dropUnfinished(tooLong: true)
    }
  }

  /// Drops the unfinished line (and the rest of it as it arrives); `next()` reports it as
  /// `.dropped` in its place. Does nothing when no line is unfinished.
  public mutating func dropPartial() {
    if partialCount > 0 && !skipping { dropUnfinished(tooLong: false) }
  }

  private mutating func dropUnfinished(tooLong: Bool) {
    let at = Swift.max(start, partialStart)
    // Give the memory back: the dropped line's capacity is not counted anywhere.
    if bytes.capacity > 1 << 16 { bytes = Array(bytes[..<at]) } else { bytes.removeSubrange(at...) }
    scanned = Swift.min(scanned, bytes.count)
    drops.append((at, tooLong))
    skipping = true
  }

  /// A complete line; a line longer than `maxLine` that was dropped; a line dropped by
  /// `dropPartial()`; or nothing complete yet.
  public enum Next { case line(ArraySlice<UInt8>), none, tooLong, dropped }

  /// The next complete line (without its newline), `.tooLong` where a line was dropped, or
  /// `.none` when only part of a line is buffered.
  public mutating func next() -> Next {
    if let d = drops.first, start >= d.at {
      drops.removeFirst()
      return d.tooLong ? .tooLong : .dropped
    }
    if let nl = Self.newline(in: bytes[Swift.max(start, scanned)...], first: true) {
      let line = bytes[start..<nl]
      start = nl + 1
      scanned = start
      // A line that came complete in one read is held to the same limit.
      return line.count > maxLine ? .tooLong : .line(line)
    }
    scanned = bytes.count
    compact()
    return .none
  }

  /// Bytes received after the last complete line.
  public var partialCount: Int { bytes.count - Swift.max(start, partialStart) }

  /// Bytes held: complete lines not yet returned and the unfinished line.
  public var bufferedCount: Int { bytes.count - start }

  /// Forgets everything buffered, including a too-long line being skipped.
  public mutating func reset() {
    bytes = []
    start = 0
    scanned = 0
    partialStart = 0
    drops = []
    skipping = false
  }

  /// The index of the first (or last) newline in `b`: a plain loop over the buffer, which stays
  /// fast in debug builds too (the generic `firstIndex(of:)` allocates per byte there).
  static func newline(in b: ArraySlice<UInt8>, first: Bool) -> Int? {
    b.withUnsafeBufferPointer { p -> Int? in
      if first {
        var i = 0
        while i < p.count {
          if p[i] == 10 { return b.startIndex + i }
          i += 1
        }
      } else {
        var i = p.count - 1
        while i >= 0 {
          if p[i] == 10 { return b.startIndex + i }
          i -= 1
        }
      }
      return nil
    }
  }

  /// Moves the unread bytes to the front; gives memory back after a large line.
  mutating func compact() {
    guard start > 0 else { return }
    let remaining = bytes.count - start
    if remaining == 0 {
      if bytes.capacity > 1 << 16 { bytes = [] } else { bytes.removeAll(keepingCapacity: true) }
    } else if bytes.capacity > 1 << 20 && remaining < bytes.capacity / 4 {
      bytes = Array(bytes[start...])
    } else {
      bytes.removeFirst(start)
    }
    scanned -= start
    partialStart = Swift.max(0, partialStart - start)
    for i in drops.indices { drops[i].at -= start }
    start = 0
  }
}
