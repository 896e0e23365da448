/// The words of a task description as routing sees them: lowercase runs of ASCII letters and
/// digits, stop words and bare numbers dropped (ids such as `#482` or `CVE-2024-3094`'s year say
/// nothing about the kind of work), each word cut to a crude stem so "tests", "testing" and
/// "tested" meet. Keyword rules and the TF-IDF history use the same function, so a rule phrase
/// matches whatever form the description uses.
public enum Tokenizer {
  /// Words that carry no hint of the kind of work.
  public static let stopWords: Set<String> = [
    "a", "an", "the", "to", "of", "for", "in", "on", "at", "by", "with", "and", "or", "is", "are", "be", "it", "its",
    "this", "that", "these", "those", "from", "as", "into", "our", "my", "we", "i", "you", "your", "me", "please", "so",
    "if", "then", "than", "there", "was", "were", "been", "has", "have", "had", "will", "would", "should", "can",
    "could", "us", "them", "they", "their", "some", "any", "up", "out", "also", "too", "just", "about", "s", "t",
  ]

  /// Lowercase runs of ASCII letters and digits, in order; everything else separates.
  public static func words(_ text: String) -> [String] {
    var out: [String] = []
    var cur: [UInt8] = []
    for b in text.utf8 {
      switch b {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): cur.append(b)
      case UInt8(ascii: "A")...UInt8(ascii: "Z"): cur.append(b + 32)
      default:
        if !cur.isEmpty {
          out.append(String(decoding: cur, as: UTF8.self))
          cur.removeAll(keepingCapacity: true)
        }
      }
    }
    if !cur.isEmpty { out.append(String(decoding: cur, as: UTF8.self)) }
    return out
  }

  /// `words` without stop words and bare numbers, each stemmed.
  public static func tokens(_ text: String) -> [String] {
    words(text).compactMap { w in
      if stopWords.contains(w) || w.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) { return nil }
      return stem(w)
    }
  }

  /// A light suffix stripper (far short of Porter's, on purpose): plural and -ing/-ed endings, a
  /// doubled final consonant left by them ("scanning" → "scan"), and a final "e" ("update" and
  /// "updated" both become "updat"). Words of four letters or fewer are left alone.
  public static func stem(_ word: String) -> String {
    var w = Array(word.utf8)
    guard w.count > 4 else { return word }
    func ends(_ s: String) -> Bool { w.count > s.utf8.count && w.suffix(s.utf8.count).elementsEqual(s.utf8) }
    var cutVerb = false
    if ends("ies") {
      w.removeLast(3)
      w.append(UInt8(ascii: "y"))
    } else if ends("ing"), w.count > 5 {
      w.removeLast(3)
      cutVerb = true
    } else if ends("ed") {
      w.removeLast(2)
      cutVerb = true
    } else if ends("es"), let p = w.dropLast(2).last, "sxzh".utf8.contains(p) {
      w.removeLast(2)
    } else if ends("s"), !ends("ss"), !ends("us"), !ends("is") {
      w.removeLast(1)
    }
    if cutVerb, w.count >= 3, w[w.count - 1] == w[w.count - 2], !"lsz".utf8.contains(w[w.count - 1]) {
      w.removeLast(1)
    }
    if w.count > 4, w.last == UInt8(ascii: "e") { w.removeLast(1) }
    return String(decoding: w, as: UTF8.self)
  }
}
