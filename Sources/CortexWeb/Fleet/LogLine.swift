import CortexCore

/// Reads top-level fields of one decision-log line without building a JSON tree. The daemon's
/// encoder writes the standard fields first and flat (`seq`, `ts`, `type`, `node`, `task_id`,
/// `worker_id`, `attempt`, `reason`, `detail`, then the event's own fields), with no spaces. One
/// pass over the line notes where each top-level key and value are; a nested object or array is
/// skipped over (its brackets matched, its strings read with their escapes) and kept as one value,
/// for `SpecSummary` to read a `task.submitted`'s spec without parsing the line. Anything unusual
/// (a space, an escape in a top-level key or string, an unbalanced bracket) stops it, and `flat`
/// then says the line must be parsed in full by the caller. This only makes the frequent task and
/// budget events cheap; like them, a skipped value is not checked for being valid JSON beyond its
/// brackets (the daemon's encoder wrote it).
struct LogLine {
  let bytes: ArraySlice<UInt8>
  /// The top-level fields read: the key's bytes (without quotes) and the value's (a string with
  /// its quotes, an object or array with its brackets).
  private(set) var fields: Fields
  /// Every top-level field was read, and no top-level string has an escape.
  private(set) var flat = false

  typealias Fields = [(key: Range<Int>, value: Range<Int>)]

  init(bytes: ArraySlice<UInt8>) {
    var none: Fields = []
    self.init(bytes: bytes, reusing: &none)
  }

  /// `storage`: an array whose storage the fields go into (it is left empty; `release()` gives it
  /// back), so a caller that reads line after line allocates it once.
  init(bytes: ArraySlice<UInt8>, reusing storage: inout Fields) {
    self.bytes = bytes
    fields = []
    swap(&fields, &storage)
    fields.removeAll(keepingCapacity: true)
    fields.reserveCapacity(16)
    flat = index()
  }

  /// The fields' storage, for the next line.
  func release() -> Fields { fields }

  /// Event types the model reads with the scanner: their lines carry no nested object or array,
  /// or (`specTypes`) only ones the model reads with `SpecSummary` or not at all.
  static let flatTypes: Set<String> = [
    "task.assigned", "task.started", "task.progress", "task.succeeded", "task.failed", "task.cancelled", "task.timed_out",
    "task.retrying", "task.waiting", "budget.reserved", "budget.released", "budget.overrun", "worker.ready",
    "task.submitted", "task.edited",
  ]

  /// The end of the object or array that starts at `i` (just past its closing bracket), with its
  /// strings read escapes and all; nil when its brackets do not match, it does not end, or it is
  /// nested deeper than 64.
  static func skipNested(_ b: ArraySlice<UInt8>, from i: Int) -> Int? {
    // One bit per open bracket, innermost lowest: 1 for an object, 0 for an array.
    var stack: UInt64 = 0
    var depth = 0
    var j = i
    let end = b.endIndex
    while j < end {
      switch b[j] {
      case 34:
        j += 1
        while j < end && b[j] != 34 { j += b[j] == 92 ? 2 : 1 }
        guard j < end else { return nil }
      case 123, 91:
        guard depth < 64 else { return nil }
        stack = stack << 1 | (b[j] == 123 ? 1 : 0)
        depth += 1
      case 125, 93:
        guard depth > 0, stack & 1 == (b[j] == 125 ? 1 : 0) else { return nil }
        stack >>= 1
        depth -= 1
        if depth == 0 { return j + 1 }
      default: break
      }
      j += 1
    }
    return nil
  }

  /// Notes the fields in order; true when the whole object was read.
  private mutating func index() -> Bool {
    let end = bytes.endIndex
    var i = bytes.startIndex
    // A string with an escape is read by the full parse (the scanner's strings have none).
    var escaped = false
    guard i < end, bytes[i] == 123 else { return false }
    i += 1
    while i < end {
      guard bytes[i] == 34 else { return false }
      var j = i + 1
      while j < end && bytes[j] != 34 {
        if bytes[j] == 92 { return false }
        j += 1
      }
      guard j + 2 < end, bytes[j + 1] == 58 else { return false }
      let key = (i + 1)..<j
      var v = j + 2
      let start = v
      switch bytes[v] {
      case 34:
        v += 1
        while v < end && bytes[v] != 34 {
          if bytes[v] == 92 { escaped = true }
          v += bytes[v] == 92 ? 2 : 1
        }
        guard v < end else { return false }
        v += 1
      case 123, 91:
        guard let e = Self.skipNested(bytes, from: v) else { return false }
        v = e
      default: while v < end && bytes[v] != 44 && bytes[v] != 125 { v += 1 }
      }
      fields.append((key, start..<v))
      guard v < end else { return false }
      if bytes[v] == 125 { return v + 1 == end && !escaped }
      guard bytes[v] == 44 else { return false }
      i = v + 1
    }
    return false
  }

  /// Where the value of `"key":` starts, or nil.
  func valueStart(_ key: StaticString) -> Int? {
    let k = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
    for f in fields where f.key.count == k.count {
      var j = 0
      while j < k.count && bytes[f.key.lowerBound + j] == k[j] { j += 1 }
      if j == k.count { return f.value.lowerBound }
    }
    return nil
  }

  /// A string value without escapes (nil when absent, not a string, or escaped).
  func string(_ key: StaticString) -> String? {
    stringBytes(key).map { String(decoding: $0, as: UTF8.self) }
  }

  /// An integer value (nil when absent or not an integer).
  func int(_ key: StaticString) -> Int64? {
    guard var i = valueStart(key), i < bytes.endIndex else { return nil }
    var neg = false
    if bytes[i] == 45 {
      neg = true
      i += 1
    }
    var v: Int64 = 0
    var digits = 0
    while i < bytes.endIndex, bytes[i] >= 48, bytes[i] <= 57, digits < 18 {
      v = v * 10 + Int64(bytes[i] - 48)
      digits += 1
      i += 1
    }
    guard digits > 0, i == bytes.endIndex || bytes[i] == 44 || bytes[i] == 125 else { return nil }
    return neg ? -v : v
  }
}

extension LogLine {
  /// A value's bytes as the line has them (a string with its quotes, an object with its braces).
  func value(_ key: StaticString) -> ArraySlice<UInt8>? {
    let k = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
    for f in fields where f.key.count == k.count {
      var j = 0
      while j < k.count && bytes[f.key.lowerBound + j] == k[j] { j += 1 }
      if j == k.count { return bytes[f.value] }
    }
    return nil
  }

  /// The bytes of a string value without escapes, without its quotes (nil when absent, not a
  /// string, or escaped).
  func stringBytes(_ key: StaticString) -> ArraySlice<UInt8>? {
    guard let s = valueStart(key), s < bytes.endIndex, bytes[s] == 34 else { return nil }
    var e = s + 1
    while e < bytes.endIndex && bytes[e] != 34 {
      if bytes[e] == 92 { return nil }
      e += 1
    }
    guard e < bytes.endIndex else { return nil }
    return bytes[(s + 1)..<e]
  }

  /// A number value (integer or not).
  func double(_ key: StaticString) -> Double? {
    guard let s = valueStart(key) else { return nil }
    var e = s
    while e < bytes.endIndex && bytes[e] != 44 && bytes[e] != 125 { e += 1 }
    return Double(String(decoding: bytes[s..<e], as: UTF8.self))
  }
}

/// One event's fields, read by the scanner above (`LogLine`) or from a full parse (`ParsedEvent`).
protocol EventFields {
  func string(_ k: StaticString) -> String?
  func int(_ k: StaticString) -> Int64?
  func double(_ k: StaticString) -> Double?
  func timestamp(_ k: StaticString) -> Int64?
  /// `task_id`'s number.
  var task: Int? { get }
  /// `worker_id`'s number.
  var worker: Int? { get }
  func has(_ k: StaticString) -> Bool
}

extension LogLine: EventFields {
  func timestamp(_ k: StaticString) -> Int64? { stringBytes(k).flatMap { Timestamp.parse(utf8: $0) } }
  var task: Int? { stringBytes("task_id").flatMap { TaskID.parse(utf8: $0) } }
  var worker: Int? { stringBytes("worker_id").flatMap { WorkerID.parse(utf8: $0) } }
  func has(_ k: StaticString) -> Bool { valueStart(k) != nil }
}

/// A line parsed in full.
struct ParsedEvent: EventFields {
  let json: JSON

  func string(_ k: StaticString) -> String? { json["\(k)"]?.string }
  func int(_ k: StaticString) -> Int64? { json["\(k)"]?.int }
  func double(_ k: StaticString) -> Double? { json["\(k)"]?.double }
  func timestamp(_ k: StaticString) -> Int64? { json["\(k)"]?.string.flatMap(Timestamp.parse) }
  var task: Int? { json["task_id"]?.string.flatMap(TaskID.parse) }
  var worker: Int? { json["worker_id"]?.string.flatMap(WorkerID.parse) }
  func has(_ k: StaticString) -> Bool { json["\(k)"] != nil }
}
