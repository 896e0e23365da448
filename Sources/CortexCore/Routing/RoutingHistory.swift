/// Past (description, type) pairs as TF-IDF vectors, for "what was chosen for similar
/// descriptions". Built once from the entries; `nearest` is a linear scan of cosine similarity,
/// which is plenty for the few thousand tasks a history holds.
public struct RoutingHistory: Sendable {
  public struct Entry: Equatable, Sendable {
    public var id: String
    public var description: String
    public var type: String
    public init(id: String, description: String, type: String) {
      self.id = id
      self.description = description
      self.type = type
    }
  }

  public struct Neighbour: Equatable, Sendable {
    public var id: String
    public var type: String
    public var similarity: Double
  }

  public let entries: [Entry]
  private let vocabulary: [String: Int]
  private let idf: [Double]
  private let vectors: [[(Int, Double)]]

  public init(_ entries: [Entry]) {
    self.entries = entries
    var vocabulary: [String: Int] = [:]
    var df: [Int] = []
    let docs = entries.map { Tokenizer.tokens($0.description) }
    for d in docs {
      for t in Set(d) {
        if let i = vocabulary[t] {
          df[i] += 1
        } else {
          vocabulary[t] = df.count
          df.append(1)
        }
      }
    }
    let n = Double(entries.count)
    let idf = df.map { Self.ln((n + 1) / (Double($0) + 1)) + 1 }
    self.vocabulary = vocabulary
    self.idf = idf
    self.vectors = docs.map { Self.vector($0, vocabulary, idf) }
  }

  /// Sublinear term frequency times IDF, L2-normalised, sorted by term index. Words the history
  /// never saw are dropped: they cannot match anything.
  private static func vector(_ tokens: [String], _ vocabulary: [String: Int], _ idf: [Double]) -> [(Int, Double)] {
    var tf: [Int: Double] = [:]
    for t in tokens { if let i = vocabulary[t] { tf[i, default: 0] += 1 } }
    var v = tf.map { (i, c) in (i, (1 + Self.ln(c)) * idf[i]) }
    let norm = v.reduce(0.0) { $0 + $1.1 * $1.1 }.squareRoot()
    guard norm > 0 else { return [] }
    v = v.map { ($0.0, $0.1 / norm) }.sorted { $0.0 < $1.0 }
    return v
  }

  private static func cosine(_ a: [(Int, Double)], _ b: [(Int, Double)]) -> Double {
    var i = 0
    var j = 0
    var s = 0.0
    while i < a.count, j < b.count {
      if a[i].0 == b[j].0 {
        s += a[i].1 * b[j].1
        i += 1
        j += 1
      } else if a[i].0 < b[j].0 {
        i += 1
      } else {
        j += 1
      }
    }
    return s
  }

  /// The `k` most similar past descriptions with similarity above 0, most similar first (ties
  /// in history order). `excluding` leaves one entry out (for leave-one-out evaluation).
  public func nearest(_ description: String, k: Int, excluding: String? = nil) -> [Neighbour] {
    let q = Self.vector(Tokenizer.tokens(description), vocabulary, idf)
    guard !q.isEmpty, k > 0 else { return [] }
    var scored: [(Int, Double)] = []
    for (i, v) in vectors.enumerated() where entries[i].id != excluding {
      let s = Self.cosine(q, v)
      if s > 0 { scored.append((i, s)) }
    }
    scored.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    return scored.prefix(k).map { Neighbour(id: entries[$0.0].id, type: entries[$0.0].type, similarity: $0.1) }
  }

  /// Natural logarithm of a positive finite x, without Foundation (CortexCore imports nothing):
  /// x = m·2^e with m in [1, 2), ln m = 2·atanh((m−1)/(m+1)) summed to double precision.
  static func ln(_ x: Double) -> Double {
    precondition(x > 0 && x.isFinite)
    let e = Double(x.exponent)
    let m = x.significand
    let z = (m - 1) / (m + 1)
    let z2 = z * z
    var term = z
    var sum = 0.0
    var k = 1.0
    while abs(term / k) > 1e-17 {
      sum += term / k
      term *= z2
      k += 2
    }
    return e * 0.693_147_180_559_945_3 + 2 * sum
  }
}

extension RoutingHistory {
  /// `ln`, for the tests that compare it with Foundation's.
  public static func lnForTesting(_ x: Double) -> Double { ln(x) }
}
