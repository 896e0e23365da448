/// The "did you mean" of a misspelled command, option, spec field or setting.
public enum Suggest {
  /// The candidate `word` is most likely a typo of: the nearest by `distance`, at most two edits
  /// and at most half the word's letters (so `x` suggests nothing); else the one candidate that
  /// starts with `word` (`--prio` → `--priority`). Nil when none is close or several tie.
  public static func nearest(_ word: String, among candidates: [String]) -> String? {
    let letters = word.drop { $0 == "-" }.count
    let scored = candidates.map { ($0, distance(word, $0)) }.filter { $0.1 <= min(2, letters / 2) }
    if let best = scored.map(\.1).min() {
      let at = scored.filter { $0.1 == best }
      return at.count == 1 ? at[0].0 : nil
    }
    let extending = candidates.filter { $0.hasPrefix(word) }
    return letters >= 3 && extending.count == 1 ? extending[0] : nil
  }

  /// Edit distance between two short words: one insertion, deletion, replacement or swap of two
  /// neighbours counts 1 (optimal string alignment), so `lsit` is one edit from `list`.
  public static func distance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
      for j in 1...b.count {
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
      }
    }
    return d[a.count][b.count]
  }
}

extension Suggest {
  /// "; did you mean X?" for an unknown `word` near one of `candidates`, else "".
  public static func hint(_ word: String, among candidates: some Sequence<String>) -> String {
    nearest(word, among: Array(candidates).sorted()).map { "; did you mean \($0)?" } ?? ""
  }
}
