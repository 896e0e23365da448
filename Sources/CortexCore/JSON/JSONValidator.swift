/// Checks that bytes are one valid JSON value (RFC 8259 syntax, UTF-8 not decoded) without
/// building it: no allocation, several times faster than `JSON.parse`. Recovery uses it for log
/// lines a snapshot already covers, so corruption anywhere is still refused.
public enum JSONValidator {
  public static func isValid(_ bytes: ArraySlice<UInt8>) -> Bool {
    bytes.withUnsafeBufferPointer { b in
      var v = Cursor(b: b)
      v.space()
      guard v.value(depth: 0) else { return false }
      v.space()
      return v.i == b.count
    }
  }

  private struct Cursor {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0

    mutating func space() {
      while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    mutating func value(depth: Int) -> Bool {
      guard i < b.count, depth < JSON.maxDepth else { return false }
      switch b[i] {
      case UInt8(ascii: "{"):
        i += 1
        space()
        if i < b.count, b[i] == UInt8(ascii: "}") {
          i += 1
          return true
        }
        while true {
          guard i < b.count, b[i] == UInt8(ascii: "\""), string() else { return false }
          space()
          guard i < b.count, b[i] == UInt8(ascii: ":") else { return false }
          i += 1
          space()
          guard value(depth: depth + 1) else { return false }
          space()
          guard i < b.count else { return false }
          if b[i] == UInt8(ascii: ",") {
            i += 1
            space()
            continue
          }
          guard b[i] == UInt8(ascii: "}") else { return false }
          i += 1
          return true
        }
      case UInt8(ascii: "["):
        i += 1
        space()
        if i < b.count, b[i] == UInt8(ascii: "]") {
          i += 1
          return true
        }
        while true {
          guard value(depth: depth + 1) else { return false }
          space()
          guard i < b.count else { return false }
          if b[i] == UInt8(ascii: ",") {
            i += 1
            space()
            continue
          }
          guard b[i] == UInt8(ascii: "]") else { return false }
          i += 1
          return true
        }
      case UInt8(ascii: "\""): return string()
      case UInt8(ascii: "t"): return literal("true")
      case UInt8(ascii: "f"): return literal("false")
      case UInt8(ascii: "n"): return literal("null")
      default: return number()
      }
    }

    mutating func literal(_ word: StaticString) -> Bool {
      let n = word.utf8CodeUnitCount
      guard i + n <= b.count else { return false }
      for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
      i += n
      return true
    }

    mutating func string() -> Bool {
      i += 1  // the opening quote
      while i < b.count {
        let c = b[i]
        if c == UInt8(ascii: "\"") {
          i += 1
          return true
        }
        if c < 0x20 { return false }
        if c >= 0x80 {
          guard utf8Sequence() else { return false }
          continue
        }
        if c == UInt8(ascii: "\\") {
          guard i + 1 < b.count else { return false }
          switch b[i + 1] {
          case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            i += 2
          case UInt8(ascii: "u"):
            // As the parser: a high surrogate needs a low one right after; a lone low one is invalid.
            guard let v = hex4(at: i + 2) else { return false }
            i += 6
            if v >= 0xD800 && v < 0xDC00 {
              guard i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u"),
                let low = hex4(at: i + 2), low >= 0xDC00 && low < 0xE000
              else { return false }
              i += 6
            } else if v >= 0xDC00 && v < 0xE000 {
              return false
            }
          default: return false
          }
          continue
        }
        i += 1
      }
      return false
    }

    /// One well-formed UTF-8 sequence starting at a byte ≥ 0x80 (RFC 3629: no overlongs, no surrogates).
    mutating func utf8Sequence() -> Bool {
      let c = b[i]
      var lo: UInt8 = 0x80
      var hi: UInt8 = 0xBF
      let extra: Int
      switch c {
      case 0xC2...0xDF: extra = 1
      case 0xE0:
        extra = 2
        lo = 0xA0
      case 0xE1...0xEC, 0xEE...0xEF: extra = 2
      case 0xED:
        extra = 2
        hi = 0x9F
      case 0xF0:
        extra = 3
        lo = 0x90
      case 0xF1...0xF3: extra = 3
      case 0xF4:
        extra = 3
        hi = 0x8F
      default: return false
      }
      guard i + extra < b.count else { return false }
      guard b[i + 1] >= lo && b[i + 1] <= hi else { return false }
      for k in stride(from: 2, through: extra, by: 1) where b[i + k] < 0x80 || b[i + k] > 0xBF { return false }
      i += extra + 1
      return true
    }

    func hex4(at j: Int) -> UInt32? {
      guard j + 4 <= b.count else { return nil }
      var v: UInt32 = 0
      for k in 0..<4 {
        let c = b[j + k]
        let d: UInt32
        switch c {
        case 48...57: d = UInt32(c - 48)
        case 65...70: d = UInt32(c - 55)
        case 97...102: d = UInt32(c - 87)
        default: return nil
        }
        v = v << 4 | d
      }
      return v
    }

    func isHex(_ c: UInt8) -> Bool {
      (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102)
    }

    mutating func digits() -> Int {
      let s = i
      while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
      return i - s
    }

    mutating func number() -> Bool {
      let start = i
      if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
      guard i < b.count else { return false }
      var whole = 1
      if b[i] == 48 {
        i += 1
      } else {
        whole = digits()
        if whole == 0 { return false }
      }
      if i < b.count, b[i] == UInt8(ascii: ".") {
        i += 1
        guard digits() > 0 else { return false }
      }
      var exponent = false
      if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
        exponent = true
        i += 1
        if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
        guard digits() > 0 else { return false }
      }
      // Like the parser, refuse what overflows to infinity (1e400); only such rare numbers are
      // converted, so the common path stays free of allocation.
      if exponent || whole > 300 {
        var text = ""
        for k in start..<i { text.unicodeScalars.append(UnicodeScalar(b[k])) }
        return Double(text)?.isFinite ?? false
      }
      return true
    }
  }
}
