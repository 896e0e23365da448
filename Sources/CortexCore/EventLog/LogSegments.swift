/// Naming and scanning of the event-log segments (`events/NNNNNNNN.jsonl`), without I/O.
public enum LogSegments {
  public static func name(_ index: Int) -> String {
    let s = String(index)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s + ".jsonl"
  }

  /// Segment indexes present among `names`, ascending.
  public static func indexes(_ names: [String]) -> [Int] {
    names.compactMap { n -> Int? in
      guard n.hasSuffix(".jsonl"), n.count == 14 else { return nil }
      return Int(n.dropLast(6))
    }.sorted()
  }

  /// The result of checking one segment's bytes.
  public struct Scan {
    /// Byte offset just past the last complete, valid line.
    public var validEnd: Int
    public var lines: Int
    public var lastSeq: UInt64
    /// A final line without its newline or that does not parse: may be cut off (torn tail).
    public var tornTail: Bool
    /// A bad line that is not the last one: corruption; recovery must refuse.
    public var corruptAt: Int?
    public var corruptReason: String?
  }

  /// Checks every line: each must parse as a JSON object with a `seq` greater than the one before.
  /// `visit` gets each valid line's value. Lines whose `seq` is at most `parseAfter` (events a
  /// snapshot already covers) are validated as JSON and checked for order without being built or
  /// visited: recovery with a large log stays fast and still refuses corruption anywhere.
  public static func scan(
    _ bytes: [UInt8], after previousSeq: UInt64 = 0, parseAfter: UInt64 = 0, visit: (JSON) -> Void = { _ in }
  ) -> Scan {
    scan(bytes[...], after: previousSeq, parseAfter: parseAfter, visit: visit)
  }

  /// The same over part of a segment (from a snapshot's position on): offsets in the result
  /// (`validEnd`, `corruptAt`) are indexes of `bytes`, so offsets in the file when `bytes` is a
  /// slice of the whole file.
  public static func scan(
    _ bytes: ArraySlice<UInt8>, after previousSeq: UInt64 = 0, parseAfter: UInt64 = 0, visit: (JSON) -> Void = { _ in }
  ) -> Scan {
    var s = Scan(validEnd: bytes.startIndex, lines: 0, lastSeq: previousSeq, tornTail: false)
    var start = bytes.startIndex
    let count = bytes.endIndex
    while start < count {
      var end = start
      while end < count && bytes[end] != 10 { end += 1 }
      let hasNewline = end < count
      let line = bytes[start..<end]
      var problem: String? = nil
      var seq: UInt64 = 0
      if parseAfter > 0, hasNewline, let q = quickSeq(line), q <= parseAfter {
        seq = q
        if !JSONValidator.isValid(line) {
          problem = "line does not parse as an event"
        } else if seq <= s.lastSeq {
          problem = "seq \(seq) does not increase (after \(s.lastSeq))"
        }
      } else if let v = try? JSON.parse(line), let q = v["seq"]?.int, q > 0, v["type"]?.string != nil {
        seq = UInt64(q)
        if seq <= s.lastSeq {
          problem = "seq \(seq) does not increase (after \(s.lastSeq))"
        } else if hasNewline {
          visit(v)
        }
      } else {
        problem = "line does not parse as an event"
      }
      if !hasNewline {
        // The last line was cut off (or its newline never written): a torn tail.
        s.tornTail = true
        return s
      }
      if let problem {
        // A bad line followed only by nothing is a torn tail; anything after it is corruption.
        if end + 1 >= count {
          s.tornTail = true
        } else {
          s.corruptAt = start
          s.corruptReason = problem
        }
        return s
      }
      s.lastSeq = seq
      s.lines += 1
      start = end + 1
      s.validEnd = start
    }
    return s
  }

  /// Skips the complete lines of `bytes` whose seq is at most `seq` (a snapshot covers them),
  /// looking only at each line's leading `{"seq":N,`: where the lines to replay begin, and the
  /// seq of the last line skipped. Stops at the first line that is newer, not framed as the
  /// writer frames lines, or not terminated (a torn tail, which the scan that follows handles).
  public static func skip(_ bytes: ArraySlice<UInt8>, through seq: UInt64) -> (index: Int, lastSeq: UInt64?) {
    var i = bytes.startIndex
    var last: UInt64? = nil
    while i < bytes.endIndex {
      guard let q = leadingSeq(bytes[i...]), q <= seq, let nl = bytes[i...].firstIndex(of: 10) else { break }
      last = q
      i = nl + 1
    }
    return (i, last)
  }

  /// The seq at the start of `bytes` (`{"seq":N,`), without needing the rest of the line: how a
  /// start learns where a segment begins from its first few bytes.
  public static func leadingSeq(_ bytes: ArraySlice<UInt8>) -> UInt64? {
    let prefix: [UInt8] = Array(#"{"seq":"#.utf8)
    guard bytes.starts(with: prefix) else { return nil }
    var i = bytes.startIndex + prefix.count
    var n: UInt64 = 0
    var digits = 0
    while i < bytes.endIndex, bytes[i] >= 48, bytes[i] <= 57, digits < 19 {
      n = n * 10 + UInt64(bytes[i] - 48)
      i += 1
      digits += 1
    }
    guard digits > 0, i < bytes.endIndex, bytes[i] == UInt8(ascii: ","), n > 0 else { return nil }
    return n
  }

  /// The seq of a segment's first line from the segment's first bytes (`fileSize`: the whole
  /// segment's size), but only when that line is whole: a line framed as the writer frames it, or
  /// one too long for `bytes` that goes on past them. A segment that holds only a torn line (a
  /// crash in the first write to it) gives nil: the seq at its start may be anything, and taken
  /// as where the segment begins it made the segment before it seem to end there (with no
  /// snapshot, that one was then not read at all).
  public static func firstLineSeq(_ bytes: ArraySlice<UInt8>, fileSize: Int) -> UInt64? {
    if let nl = bytes.firstIndex(of: 10) { return quickSeq(bytes[..<nl]) }
    return fileSize > bytes.count ? leadingSeq(bytes) : nil
  }

  /// The seq of a line as the log writer frames it (`{"seq":N,` … `}`), without parsing the rest.
  static func quickSeq(_ line: ArraySlice<UInt8>) -> UInt64? {
    guard line.last == UInt8(ascii: "}") else { return nil }
    return leadingSeq(line)
  }
}
