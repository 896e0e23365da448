/// One decision for the log (SPEC §4). The scheduler creates events; the log writer stamps them
/// with `seq` and `ts` and encodes them as one JSON line.
public struct Event: Sendable {
  public var type: String
  public var task: Int?
  public var worker: Int?
  public var attempt: Int?
  public var reason: String?
  public var detail: String?
  /// Further fields, written after the standard ones.
  public var fields: [(String, JSON)]
  /// A pre-encoded `spec` object (task.submitted), so a spec is encoded once.
  public var specJSON: [UInt8]?

  public init(
    _ type: String, task: Int? = nil, worker: Int? = nil, attempt: Int? = nil, reason: String? = nil,
    detail: String? = nil, fields: [(String, JSON)] = [], specJSON: [UInt8]? = nil
  ) {
    self.type = type
    self.task = task
    self.worker = worker
    self.attempt = attempt
    self.reason = reason
    self.detail = detail
    self.fields = fields
    self.specJSON = specJSON
  }

  /// The JSON line, without the trailing newline.
  public func encode(seq: UInt64, tsMs: Int64, into w: inout JSONWriter) {
    encode(seq: seq, ts: Timestamp.rfc3339(ms: tsMs), into: &w)
  }

  /// The same with the timestamp already formatted (the log writer reuses it within a millisecond).
  /// `node`: a cluster node's name, written on every line of its log (SPEC §11).
  public func encode(seq: UInt64, ts: String, node: String? = nil, into w: inout JSONWriter) {
    w.beginObject()
    w.field("seq", seq)
    w.key("ts")
    w.string(ts)
    w.field("type", type)
    if let node, !fields.contains(where: { $0.0 == "node" }) { w.field("node", node) }
    if let task { w.field("task_id", TaskID.format(task)) }
    if let worker { w.field("worker_id", WorkerID.format(worker)) }
    w.field("attempt", attempt)
    w.field("reason", reason)
    w.field("detail", detail)
    for (k, v) in fields {
      w.key(k)
      w.value(v)
    }
    if let specJSON {
      w.key("spec")
      w.raw(specJSON)
    }
    w.endObject()
  }
}

/// RFC 3339 UTC timestamps with milliseconds, computed without the C library.
public enum Timestamp {
  public static func rfc3339(ms: Int64) -> String {
    let secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
    let milli = Int(ms - secs * 1000)
    var days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400
    let rem = Int(secs - days * 86400)
    // Civil from days (Howard Hinnant's algorithm).
    days += 719_468
    let era = (days >= 0 ? days : days - 146_096) / 146_097
    let doe = days - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    var y = yoe + era * 400
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    if m <= 2 { y += 1 }
    if (0...9999).contains(y) {
      // The usual case, written as bytes: string interpolation cost ~40 times as much, and the
      // scheduler formats a time for every task that waits on a rate limit.
      return String(unsafeUninitializedCapacity: 24) { b in
        func put(_ v: Int, _ at: Int, _ n: Int) {
          var v = v
          for i in stride(from: at + n - 1, through: at, by: -1) {
            b[i] = UInt8(48 + v % 10)
            v /= 10
          }
        }
        put(Int(y), 0, 4)
        put(Int(m), 5, 2)
        put(Int(d), 8, 2)
        put(rem / 3600, 11, 2)
        put(rem / 60 % 60, 14, 2)
        put(rem % 60, 17, 2)
        put(milli, 20, 3)
        (b[4], b[7], b[10], b[13], b[16], b[19], b[23]) = (
          UInt8(ascii: "-"), UInt8(ascii: "-"), UInt8(ascii: "T"), UInt8(ascii: ":"), UInt8(ascii: ":"), UInt8(ascii: "."),
          UInt8(ascii: "Z")
        )
        return 24
      }
    }
    func pad(_ v: Int, _ n: Int) -> String {
      let s = String(v)
      return s.count >= n ? s : String(repeating: "0", count: n - s.count) + s
    }
    return
      "\(pad(Int(y), 4))-\(pad(Int(m), 2))-\(pad(Int(d), 2))T\(pad(rem / 3600, 2)):\(pad(rem / 60 % 60, 2)):\(pad(rem % 60, 2)).\(pad(milli, 3))Z"
  }

  /// Parses what `rfc3339(ms:)` writes (UTC, "Z", optional fraction); nil otherwise.
  public static func parse(_ s: String) -> Int64? { parse(utf8: Array(s.utf8)[...]) }

  /// The same from the text's bytes (a log line's, without making a String of them).
  public static func parse(utf8 bytes: ArraySlice<UInt8>) -> Int64? {
    bytes.withUnsafeBufferPointer { b -> Int64? in
      guard b.count >= 20, b[4] == 45, b[7] == 45, b[10] == 84, b[13] == 58, b[16] == 58, b.last == 90 else {
        return nil
      }
      func num(_ r: Range<Int>) -> Int? {
        var v = 0
        for i in r {
          guard b[i] >= 48 && b[i] <= 57 else { return nil }
          v = v * 10 + Int(b[i] - 48)
        }
        return v
      }
      guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10), let h = num(11..<13),
        let mi = num(14..<16), let se = num(17..<19), (1...12).contains(mo), h < 24, mi < 60, se < 60
      else { return nil }
      // A day the month has (February's 29th in leap years only).
      let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
      let monthDays = mo == 2 ? (leap ? 29 : 28) : (mo == 4 || mo == 6 || mo == 9 || mo == 11 ? 30 : 31)
      guard (1...monthDays).contains(d) else { return nil }
      var ms = 0
      if b.count > 20 {
        // At most nine digits of fraction (more would overflow the number they are read into).
        guard b[19] == 46, (1...9).contains(b.count - 21), let f = num(20..<(b.count - 1)) else { return nil }
        let digits = b.count - 21
        ms = digits >= 3 ? f / Int(pow10(digits - 3)) : f * Int(pow10(3 - digits))
      }
      let yy = mo <= 2 ? y - 1 : y
      let era = (yy >= 0 ? yy : yy - 399) / 400
      let yoe = yy - era * 400
      let mp = mo > 2 ? mo - 3 : mo + 9
      let doy = (153 * mp + 2) / 5 + d - 1
      let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
      let days = era * 146_097 + doe - 719_468
      return Int64(days) * 86_400_000 + Int64(h * 3600 + mi * 60 + se) * 1000 + Int64(ms)
    }
  }

  private static func pow10(_ n: Int) -> Int64 {
    var r: Int64 = 1
    for _ in 0..<n { r *= 10 }
    return r
  }
}

/// Durations on the command line. Anything negative, not finite or longer than
/// `Numbers.maxDurationMs` (100 years) is refused (nil).
public enum DurationText {
  static let units: [(String, Double)] = [
    ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000),
  ]

  /// Milliseconds of a duration: a number of seconds (`90`, `1.5`), a number with a unit (`500ms`,
  /// `30s`, `5m`, `2h`, `7d`, `1w`), or several of those, largest first, as `2h30m` or `1d12h`.
  /// Nil for anything else, or past `Numbers.maxDurationMs` (100 years).
  public static func parseMs(_ s: String) -> Int64? {
    if let v = Double(s) { return checked(v * 1000) }
    var rest = Substring(s)
    var total = 0.0
    var lastFactor = Double.infinity
    while !rest.isEmpty {
      let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
      rest = rest.dropFirst(number.count)
      let unit = rest.prefix { $0.isASCII && $0.isLetter }
      rest = rest.dropFirst(unit.count)
      guard let v = Double(number), let f = units.first(where: { $0.0 == unit })?.1, f < lastFactor else { return nil }
      lastFactor = f
      total += v * f
    }
    return s.isEmpty ? nil : checked(total)
  }

  private static func checked(_ ms: Double) -> Int64? {
    guard ms.isFinite, ms >= 0, ms <= Double(Numbers.maxDurationMs) else { return nil }
    return Int64(ms)
  }
}
