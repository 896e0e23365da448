/// A JSON value. Objects keep their keys in order (what a person reads in a file is what was
/// written). Integers that fit in Int64 stay exact.
public enum JSON: Equatable, Sendable {
  case null
  case bool(Bool)
  case int(Int64)
  case double(Double)
  case string(String)
  case array([JSON])
  case object([(String, JSON)])

  public static func == (a: JSON, b: JSON) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.int(let x), .int(let y)): return x == y
    case (.double(let x), .double(let y)): return x == y
    case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
    case (.string(let x), .string(let y)): return x == y
    case (.array(let x), .array(let y)): return x == y
    case (.object(let x), .object(let y)):
      return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    default: return false
    }
  }

  public subscript(key: String) -> JSON? {
    guard case .object(let pairs) = self else { return nil }
    for (k, v) in pairs where k == key { return v }
    return nil
  }

  public var string: String? { if case .string(let s) = self { return s } else { return nil } }
  public var int: Int64? {
    switch self {
    case .int(let i): return i
    case .double(let d) where d.rounded() == d && abs(d) < 9e18: return Int64(d)
    default: return nil
    }
  }
  public var double: Double? {
    switch self {
    case .int(let i): return Double(i)
    case .double(let d): return d
    default: return nil
    }
  }
  public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
  public var array: [JSON]? { if case .array(let a) = self { return a } else { return nil } }
  public var object: [(String, JSON)]? { if case .object(let o) = self { return o } else { return nil } }
  public var isNull: Bool { if case .null = self { return true } else { return false } }

  /// The name of the value's kind, for error messages ("a string", "an object").
  public var kindName: String {
    switch self {
    case .null: "null"
    case .bool: "a boolean"
    case .int, .double: "a number"
    case .string: "a string"
    case .array: "an array"
    case .object: "an object"
    }
  }

  /// Compact one-line encoding.
  public func encoded() -> String {
    var w = JSONWriter()
    w.value(self)
    return w.string
  }

  public func encodedBytes() -> [UInt8] {
    var w = JSONWriter()
    w.value(self)
    return w.bytes
  }

  /// Indented encoding for files people read.
  public func pretty() -> String {
    var out = ""
    prettyPrint(into: &out, indent: 0)
    return out
  }

  private func prettyPrint(into out: inout String, indent: Int) {
    let pad = String(repeating: "  ", count: indent + 1)
    let close = String(repeating: "  ", count: indent)
    switch self {
    case .array(let a) where !a.isEmpty:
      out += "[\n"
      for (i, v) in a.enumerated() {
        out += pad
        v.prettyPrint(into: &out, indent: indent + 1)
        out += i == a.count - 1 ? "\n" : ",\n"
      }
      out += close + "]"
    case .object(let o) where !o.isEmpty:
      out += "{\n"
      for (i, (k, v)) in o.enumerated() {
        out += pad + JSON.string(k).encoded() + ": "
        v.prettyPrint(into: &out, indent: indent + 1)
        out += i == o.count - 1 ? "\n" : ",\n"
      }
      out += close + "}"
    default:
      out += encoded()
    }
  }
}

/// Appends JSON text to a byte buffer without building `JSON` values; used on hot paths
/// (event lines, FIFO messages).
public struct JSONWriter {
  public var bytes: [UInt8] = []
  private var needsComma: [Bool] = []

  public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

  public var string: String { String(decoding: bytes, as: UTF8.self) }

  @inline(__always) private mutating func separator() {
    if let last = needsComma.last {
      if last { bytes.append(UInt8(ascii: ",")) }
      needsComma[needsComma.count - 1] = true
    }
  }

  public mutating func beginObject() {
    valuePrefix()
    bytes.append(UInt8(ascii: "{"))
    needsComma.append(false)
  }
  public mutating func endObject() {
    needsComma.removeLast()
    bytes.append(UInt8(ascii: "}"))
  }
  public mutating func beginArray() {
    valuePrefix()
    bytes.append(UInt8(ascii: "["))
    needsComma.append(false)
  }
  public mutating func endArray() {
    needsComma.removeLast()
    bytes.append(UInt8(ascii: "]"))
  }

  /// Writes `"key":` inside an object; the value written next belongs to it.
  public mutating func key(_ k: String) {
    separator()
    appendQuoted(k)
    bytes.append(UInt8(ascii: ":"))
    pendingKey = true
  }
  private var pendingKey = false

  @inline(__always) private mutating func valuePrefix() {
    if pendingKey {
      pendingKey = false
    } else {
      separator()
    }
  }

  public mutating func string(_ s: String) {
    valuePrefix()
    appendQuoted(s)
  }
  public mutating func int<I: BinaryInteger>(_ i: I) {
    valuePrefix()
    if let v = Int64(exactly: i) { appendDecimal(v) } else { bytes.append(contentsOf: String(i).utf8) }
  }
  public mutating func double(_ d: Double) {
    valuePrefix()
    if d.isFinite {
      if d.rounded() == d && abs(d) < 1e15 {
        bytes.append(contentsOf: String(Int64(d)).utf8)
      } else {
        bytes.append(contentsOf: String(d).utf8)
      }
    } else {
      bytes.append(contentsOf: "null".utf8)
    }
  }
  public mutating func bool(_ b: Bool) {
    valuePrefix()
    bytes.append(contentsOf: (b ? "true" : "false").utf8)
  }
  public mutating func null() {
    valuePrefix()
    bytes.append(contentsOf: "null".utf8)
  }
  /// Writes bytes that should be UTF-8 as a string value; invalid sequences become U+FFFD, as
  /// `String(decoding:as:)` makes them. For values read straight from C memory (environ).
  public mutating func string(utf8: UnsafeBufferPointer<UInt8>) {
    valuePrefix()
    appendQuoted(utf8: utf8)
  }
  /// `key(_:)` for a name given as UTF-8 bytes.
  public mutating func key(utf8: UnsafeBufferPointer<UInt8>) {
    separator()
    appendQuoted(utf8: utf8)
    bytes.append(UInt8(ascii: ":"))
    pendingKey = true
  }
  private mutating func appendQuoted(utf8: UnsafeBufferPointer<UInt8>) {
    // ASCII (nearly every environment variable) is valid UTF-8 as it is; anything else is
    // validated (and repaired) by String.
    for b in utf8 where b >= 0x80 {
      appendQuoted(String(decoding: utf8, as: UTF8.self))
      return
    }
    appendQuotedValid(utf8)
  }

  /// Writes pre-encoded JSON text as a value.
  public mutating func raw(_ encoded: [UInt8]) {
    valuePrefix()
    bytes.append(contentsOf: encoded)
  }

  public mutating func value(_ v: JSON) {
    switch v {
    case .null: null()
    case .bool(let b): bool(b)
    case .int(let i): int(i)
    case .double(let d): double(d)
    case .string(let s): string(s)
    case .array(let a):
      beginArray()
      for e in a { value(e) }
      endArray()
    case .object(let o):
      beginObject()
      for (k, e) in o {
        key(k)
        value(e)
      }
      endObject()
    }
  }

  // Convenience pairs.
  public mutating func field(_ k: String, _ v: String) {
    key(k)
    string(v)
  }
  public mutating func field(_ k: String, _ v: String?) {
    guard let v else { return }
    key(k)
    string(v)
  }
  public mutating func field<I: BinaryInteger>(_ k: String, _ v: I) {
    key(k)
    int(v)
  }
  public mutating func field<I: BinaryInteger>(_ k: String, _ v: I?) {
    guard let v else { return }
    key(k)
    int(v)
  }
  public mutating func field(_ k: String, _ v: Double) {
    key(k)
    double(v)
  }
  public mutating func field(_ k: String, _ v: Bool) {
    key(k)
    bool(v)
  }
  public mutating func field(_ k: String, json v: JSON) {
    key(k)
    value(v)
  }

  private mutating func appendQuoted(_ s: String) {
    var s = s
    s.withUTF8 { appendQuotedValid($0) }
  }

  /// `utf8` is valid UTF-8: only the quote, the backslash and control characters are escaped.
  private mutating func appendQuotedValid(_ utf8: UnsafeBufferPointer<UInt8>) {
    bytes.append(UInt8(ascii: "\""))
    // Fast path: nothing to escape (the common case for ids, types and reasons).
    var clean = true
    for b in utf8 where b < 0x20 || b == 34 || b == 92 {
      clean = false
      break
    }
    if clean {
      bytes.append(contentsOf: utf8)
    } else {
      for b in utf8 {
        switch b {
        case UInt8(ascii: "\""):
          bytes.append(92)
          bytes.append(34)
        case UInt8(ascii: "\\"):
          bytes.append(92)
          bytes.append(92)
        case 0x0A:
          bytes.append(92)
          bytes.append(UInt8(ascii: "n"))
        case 0x0D:
          bytes.append(92)
          bytes.append(UInt8(ascii: "r"))
        case 0x09:
          bytes.append(92)
          bytes.append(UInt8(ascii: "t"))
        case 0..<0x20:
          let hex: StaticString = "0123456789abcdef"
          let h = hex.utf8Start
          bytes.append(92)
          bytes.append(UInt8(ascii: "u"))
          bytes.append(48)
          bytes.append(48)
          bytes.append(h[Int(b >> 4)])
          bytes.append(h[Int(b & 15)])
        default: bytes.append(b)
        }
      }
    }
    bytes.append(UInt8(ascii: "\""))
  }

  /// Decimal digits without an intermediate String.
  @inline(__always) private mutating func appendDecimal(_ v: Int64) {
    if v == 0 {
      bytes.append(48)
      return
    }
    var m = v.magnitude
    if v < 0 { bytes.append(UInt8(ascii: "-")) }
    var tmp:
      (
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
        UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
      ) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    var n = 0
    withUnsafeMutableBytes(of: &tmp) { buf in
      while m > 0 {
        buf[n] = UInt8(48 + m % 10)
        m /= 10
        n += 1
      }
      for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(buf[i]) }
    }
  }
}
