/// Finding a short byte string in a longer one, without the generic collection search of the
/// standard library (which costs microseconds per call: a start with 10,000 active tasks looks
/// for the redaction marker in every spec).
public enum ByteSearch {
  /// The offset (from `haystack.startIndex`) of the first occurrence of `needle`, or nil.
  public static func firstIndex(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
    guard let first = needle.first, needle.count <= haystack.count else { return needle.isEmpty ? 0 : nil }
    return haystack.withUnsafeBufferPointer { h in
      needle.withUnsafeBufferPointer { n in
        var i = 0
        let last = h.count - n.count
        while i <= last {
          if h[i] == first {
            var k = 1
            while k < n.count && h[i + k] == n[k] { k += 1 }
            if k == n.count { return i }
          }
          i += 1
        }
        return nil
      }
    }
  }

  public static func contains(_ needle: [UInt8], in haystack: [UInt8]) -> Bool { firstIndex(of: needle, in: haystack[...]) != nil }
}
