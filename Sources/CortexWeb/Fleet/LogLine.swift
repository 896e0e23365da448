import CortexCore

/// Reads top-level fields of one decision-log line without building a JSON tree. The daemon's
/// encoder writes the standard fields first and flat (`seq`, `ts`, `type`, `node`, `task_id`,
/// `worker_id`, `attempt`, `reason`, `detail`, then the event's own fields), with no spaces, and
/// escapes every quote inside a string, so the first `"key":` in a line of a flat event type is
/// that event's field. Lines of other types (or with anything unusual) are parsed in full by the
/// caller; this only makes the frequent task and budget events cheap.
struct LogLine {
  let bytes: ArraySlice<UInt8>

  /// Event types whose lines carry no nested object or array.
  static let flatTypes: Set<String> = [
    "task.assigned", "task.started", "task.progress", "task.succeeded", "task.failed", "task.cancelled", "task.timed_out",
    "task.retrying", "task.waiting", "budget.reserved", "budget.released", "budget.overrun", "worker.ready",
  ]

  /// Where the value of `"key":` starts, or nil.
  func valueStart(_ key: StaticString) -> Int? {
    let k = UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount)
    let n = k.count
    var i = bytes.startIndex
    let end = bytes.endIndex - n - 3
    while i <= end {
      if bytes[i] == 34 && bytes[i + n + 1] == 34 && bytes[i + n + 2] == 58 {
        var j = 0
        while j < n && bytes[i + 1 + j] == k[j] { j += 1 }
        if j == n { return i + n + 3 }
      }
      i += 1
    }
    return nil
  }

  /// A string value without escapes (nil when absent, not a string, or escaped).
  func string(_ key: StaticString) -> String? {
    guard let s = valueStart(key), s < bytes.endIndex, bytes[s] == 34 else { return nil }
    var e = s + 1
    while e < bytes.endIndex && bytes[e] != 34 {
      if bytes[e] == 92 { return nil }
      e += 1
    }
    guard e < bytes.endIndex else { return nil }
    return String(decoding: bytes[(s + 1)..<e], as: UTF8.self)
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
  /// A number value (integer or not).
  func double(_ key: StaticString) -> Double? {
    guard let s = valueStart(key) else { return nil }
    var e = s
    while e < bytes.endIndex && bytes[e] != 44 && bytes[e] != 125 { e += 1 }
    return Double(String(decoding: bytes[s..<e], as: UTF8.self))
  }
}

/// One event's fields, from a full parse or from the scanner above.
enum EventFields {
  case json(JSON)
  case line(LogLine)

  func string(_ k: StaticString) -> String? {
    switch self {
    case .json(let v): v["\(k)"]?.string
    case .line(let l): l.string(k)
    }
  }
  func int(_ k: StaticString) -> Int64? {
    switch self {
    case .json(let v): v["\(k)"]?.int
    case .line(let l): l.int(k)
    }
  }
  func double(_ k: StaticString) -> Double? {
    switch self {
    case .json(let v): v["\(k)"]?.double
    case .line(let l): l.double(k)
    }
  }
  func has(_ k: StaticString) -> Bool {
    switch self {
    case .json(let v): v["\(k)"] != nil
    case .line(let l): l.valueStart(k) != nil
    }
  }
  /// The spec of a `task.submitted` (only ever parsed in full).
  var spec: JSON? { if case .json(let v) = self { v["spec"] } else { nil } }
}
