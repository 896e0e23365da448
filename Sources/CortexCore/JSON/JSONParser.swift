/// A strict RFC 8259 parser. Errors say what was expected and at which byte. Nesting is limited
/// so hostile input cannot exhaust the stack.
public struct JSONParseError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public let offset: Int
  public var description: String { "invalid JSON at byte \(offset): \(message)" }
}

extension JSON {
  public static let maxDepth = 64

  public static func parse(_ text: String) throws(JSONParseError) -> JSON {
    try parse(Array(text.utf8))
  }

  public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSON {
    try bytes.withUnsafeBufferPointer { (p) throws(JSONParseError) -> JSON in try parse(bytes: p) }
  }

  public static func parse(_ bytes: ArraySlice<UInt8>) throws(JSONParseError) -> JSON {
    try bytes.withUnsafeBufferPointer { (p) throws(JSONParseError) -> JSON in try parse(bytes: p) }
  }

  public static func parse(bytes: UnsafeBufferPointer<UInt8>) throws(JSONParseError) -> JSON {
    var p = Parser(b: bytes)
    p.skipSpace()
    let v = try p.value(depth: 0)
    p.skipSpace()
    if p.i != bytes.count { throw p.fail("unexpected text after the value") }
    return v
  }
}

private struct Parser {
  let b: UnsafeBufferPointer<UInt8>
  var i = 0

  func fail(_ m: String) -> JSONParseError { JSONParseError(message: m, offset: i) }

  mutating func skipSpace() {
    while i < b.count {
      switch b[i] {
      case 0x20, 0x0A, 0x0D, 0x09: i += 1
      default: return
      }
    }
  }

  mutating func value(depth: Int) throws(JSONParseError) -> JSON {
    guard i < b.count else { throw fail("unexpected end of input") }
    switch b[i] {
    case UInt8(ascii: "{"):
      if depth >= JSON.maxDepth { throw fail("nested deeper than \(JSON.maxDepth)") }
      return try object(depth: depth + 1)
    case UInt8(ascii: "["):
      if depth >= JSON.maxDepth { throw fail("nested deeper than \(JSON.maxDepth)") }
      return try array(depth: depth + 1)
    case UInt8(ascii: "\""): return .string(try string())
    case UInt8(ascii: "t"):
      try literal("true")
      return .bool(true)
    case UInt8(ascii: "f"):
      try literal("false")
      return .bool(false)
    case UInt8(ascii: "n"):
      try literal("null")
      return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
    default: throw fail(unexpected())
    }
  }

  /// The byte at `i` named so that it can be seen: a printable ASCII character as itself, a UTF-8
  /// byte order mark (which editors on Windows write, and RFC 8259 text has not) as such, any other
  /// byte in hex (a NUL or the first byte of `é` printed as itself shows nothing or something else).
  func unexpected() -> String {
    let c = b[i]
    if c > 0x20 && c < 0x7F { return "unexpected character '\(Unicode.Scalar(c))'" }
    if c == 0xEF && i + 2 < b.count && b[i + 1] == 0xBB && b[i + 2] == 0xBF {
      return "a UTF-8 byte order mark (EF BB BF), which JSON text does not start with: save it without one"
    }
    return "unexpected byte 0x\(c < 16 ? "0" : "")\(String(c, radix: 16, uppercase: true))"
  }

  mutating func literal(_ word: StaticString) throws(JSONParseError) {
    let n = word.utf8CodeUnitCount
    guard i + n <= b.count else { throw fail("unexpected end of input") }
    let w = word.utf8Start
    for k in 0..<n where b[i + k] != w[k] { throw fail("invalid literal") }
    i += n
  }

  mutating func object(depth: Int) throws(JSONParseError) -> JSON {
    i += 1
    var pairs: [(String, JSON)] = []
    skipSpace()
    if i < b.count && b[i] == UInt8(ascii: "}") {
      i += 1
      return .object(pairs)
    }
    while true {
      skipSpace()
      guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
      let k = try string()
      skipSpace()
      guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
      i += 1
      skipSpace()
      let v = try value(depth: depth)
      pairs.append((k, v))
      skipSpace()
      guard i < b.count else { throw fail("unexpected end of input in an object") }
      if b[i] == UInt8(ascii: ",") {
        i += 1
        continue
      }
      if b[i] == UInt8(ascii: "}") {
        i += 1
        return .object(pairs)
      }
      throw fail("expected ',' or '}' in an object")
    }
  }

  mutating func array(depth: Int) throws(JSONParseError) -> JSON {
    i += 1
    var items: [JSON] = []
    skipSpace()
    if i < b.count && b[i] == UInt8(ascii: "]") {
      i += 1
      return .array(items)
    }
    while true {
      skipSpace()
      items.append(try value(depth: depth))
      skipSpace()
      guard i < b.count else { throw fail("unexpected end of input in an array") }
      if b[i] == UInt8(ascii: ",") {
        i += 1
        continue
      }
      if b[i] == UInt8(ascii: "]") {
        i += 1
        return .array(items)
      }
      throw fail("expected ',' or ']' in an array")
    }
  }

  mutating func hex4() throws(JSONParseError) -> UInt32 {
    guard i + 4 <= b.count else { throw fail("truncated \\u escape") }
    var v: UInt32 = 0
    for _ in 0..<4 {
      let c = b[i]
      let d: UInt32
      switch c {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
      case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
      case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
      default: throw fail("invalid hex digit in \\u escape")
      }
      v = v << 4 | d
      i += 1
    }
    return v
  }

  mutating func string() throws(JSONParseError) -> String {
    i += 1
    let start = i
    // Fast path: no escapes (and, most often, only ASCII, which needs no UTF-8 validation).
    var high: UInt8 = 0
    while i < b.count {
      let c = b[i]
      if c == UInt8(ascii: "\"") {
        let s = UnsafeBufferPointer(rebasing: b[start..<i])
        i += 1
        if high < 0x80 { return String(decoding: s, as: UTF8.self) }
        guard let str = String(validating: s, as: UTF8.self) else {
          throw JSONParseError(message: "invalid UTF-8 in a string", offset: start)
        }
        return str
      }
      if c == UInt8(ascii: "\\") || c < 0x20 { break }
      high |= c
      i += 1
    }
    var out: [UInt8] = Array(UnsafeBufferPointer(rebasing: b[start..<i]))
    while i < b.count {
      let c = b[i]
      if c == UInt8(ascii: "\"") {
        i += 1
        guard let str = String(validating: out, as: UTF8.self) else {
          throw JSONParseError(message: "invalid UTF-8 in a string", offset: start)
        }
        return str
      }
      if c < 0x20 { throw fail("control character in a string") }
      if c != UInt8(ascii: "\\") {
        out.append(c)
        i += 1
        continue
      }
      i += 1
      guard i < b.count else { break }
      let e = b[i]
      i += 1
      switch e {
      case UInt8(ascii: "\""): out.append(0x22)
      case UInt8(ascii: "\\"): out.append(0x5C)
      case UInt8(ascii: "/"): out.append(0x2F)
      case UInt8(ascii: "b"): out.append(0x08)
      case UInt8(ascii: "f"): out.append(0x0C)
      case UInt8(ascii: "n"): out.append(0x0A)
      case UInt8(ascii: "r"): out.append(0x0D)
      case UInt8(ascii: "t"): out.append(0x09)
      case UInt8(ascii: "u"):
        var scalar = try hex4()
        if scalar >= 0xD800 && scalar < 0xDC00 {
          guard i + 6 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
            throw fail("unpaired surrogate in \\u escape")
          }
          i += 2
          let low = try hex4()
          guard low >= 0xDC00 && low < 0xE000 else { throw fail("invalid low surrogate") }
          scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
        } else if scalar >= 0xDC00 && scalar < 0xE000 {
          throw fail("unpaired surrogate in \\u escape")
        }
        guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
        out.append(contentsOf: String(Character(u)).utf8)
      default: throw fail("invalid escape")
      }
    }
    throw fail("unterminated string")
  }

  mutating func number() throws(JSONParseError) -> JSON {
    let start = i
    // Fast path: a whole number of at most 18 digits, read without making a String.
    var k = i
    let negative = b[k] == UInt8(ascii: "-")
    if negative { k += 1 }
    var n: Int64 = 0
    let digitsStart = k
    while k < b.count, k - digitsStart < 18, b[k] >= UInt8(ascii: "0") && b[k] <= UInt8(ascii: "9") {
      n = n * 10 + Int64(b[k] - UInt8(ascii: "0"))
      k += 1
    }
    let digits = k - digitsStart
    if digits > 0, !(digits > 1 && b[digitsStart] == UInt8(ascii: "0")),
      k == b.count || !(b[k] == UInt8(ascii: ".") || b[k] == UInt8(ascii: "e") || b[k] == UInt8(ascii: "E") || (b[k] >= 48 && b[k] <= 57))
    {
      i = k
      return .int(negative ? -n : n)
    }
    var isInt = true
    if b[i] == UInt8(ascii: "-") { i += 1 }
    guard i < b.count, b[i] >= UInt8(ascii: "0") && b[i] <= UInt8(ascii: "9") else {
      throw fail("expected a digit")
    }
    if b[i] == UInt8(ascii: "0") {
      i += 1
      if i < b.count, b[i] >= UInt8(ascii: "0") && b[i] <= UInt8(ascii: "9") {
        throw fail("leading zero in a number")
      }
    } else {
      while i < b.count, b[i] >= UInt8(ascii: "0") && b[i] <= UInt8(ascii: "9") { i += 1 }
    }
    if i < b.count, b[i] == UInt8(ascii: ".") {
      isInt = false
      i += 1
      let d = i
      while i < b.count, b[i] >= UInt8(ascii: "0") && b[i] <= UInt8(ascii: "9") { i += 1 }
      if i == d { throw fail("expected a digit after '.'") }
    }
    if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
      isInt = false
      i += 1
      if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
      let d = i
      while i < b.count, b[i] >= UInt8(ascii: "0") && b[i] <= UInt8(ascii: "9") { i += 1 }
      if i == d { throw fail("expected a digit in the exponent") }
    }
    let text = String(decoding: UnsafeBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
    if isInt, let v = Int64(text) { return .int(v) }
    guard let d = Double(text) else { throw JSONParseError(message: "invalid number", offset: start) }
    // 1e400 reads as infinity: refuse it here, so no decoder ever sees a number it cannot use.
    guard d.isFinite else { throw JSONParseError(message: "number out of range", offset: start) }
    return .double(d)
  }
}
