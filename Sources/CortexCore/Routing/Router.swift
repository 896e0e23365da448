/// A routing answer: the type, how sure (0…1), and why in words a person can check.
public struct RouteDecision: Equatable, Sendable {
  public var type: String
  public var confidence: Double
  /// "keyword: cve, vulnerability", "similar to task-000042 (0.82)", or "default: …".
  public var reason: String
  /// True when no type reached the threshold and `defaultType` was used.
  public var fellBack: Bool
}

/// Picks a worker type for a description (issue 17 part 5, the vision's "MoE routing"). Pure: the
/// caller supplies the rules and the history; nothing here reads a file or a clock.
///
/// Each type's evidence is the summed weight of its rule phrases found in the description plus
/// `historyWeight` × the summed similarity of the `neighbours` most similar past descriptions
/// labelled with it. Confidence is the best type's evidence over (all evidence + 1): the "+1" is
/// a pseudo-count for "none of these", so one weak hint never reads as certainty. Below
/// `threshold` the answer is `defaultType`. With `historyOnlyWhenUnsure` (the default) the
/// history is consulted only when the keyword rules alone would fall back.
public struct Router: Sendable {
  public var rules: RoutingRules
  public var history: RoutingHistory?

  public init(rules: RoutingRules = RoutingRules(), history: RoutingHistory? = nil) {
    self.rules = rules
    self.history = history
  }

  /// Each type with a phrase found in `tokens`: its summed weight and the phrases, in rule order.
  public func keywordMatches(_ tokens: [String]) -> [(type: String, score: Double, phrases: [String])] {
    var out: [(type: String, score: Double, phrases: [String])] = []
    for (type, phrases) in rules.rules {
      var score = 0.0
      var found: [String] = []
      for p in phrases where Self.contains(tokens, p.tokens) {
        score += p.weight
        found.append(p.text)
      }
      if score > 0 { out.append((type, score, found)) }
    }
    return out
  }

  /// Routes by keyword rules alone when `useHistory` is false. `excluding` leaves one history
  /// entry out (so a description is not its own neighbour in leave-one-out evaluation).
  public func route(_ description: String, useHistory: Bool = true, excluding: String? = nil) -> RouteDecision {
    if useHistory, history != nil, rules.historyOnlyWhenUnsure {
      let byKeyword = route(description, useHistory: false)
      if !byKeyword.fellBack { return byKeyword }
    }
    let tokens = Tokenizer.tokens(description)
    var order: [String] = []
    var keyword: [String: Double] = [:]
    var phrases: [String: [String]] = [:]
    var similar: [String: Double] = [:]
    var best: [String: RoutingHistory.Neighbour] = [:]
    for m in keywordMatches(tokens) {
      order.append(m.type)
      keyword[m.type] = m.score
      phrases[m.type] = m.phrases
    }
    if useHistory, let history {
      for n in history.nearest(description, k: rules.neighbours, excluding: excluding) {
        if keyword[n.type] == nil, similar[n.type] == nil { order.append(n.type) }
        similar[n.type, default: 0] += rules.historyWeight * n.similarity
        if best[n.type] == nil { best[n.type] = n }
      }
    }
    func evidence(_ t: String) -> Double { keyword[t, default: 0] + similar[t, default: 0] }
    let total = order.reduce(0.0) { $0 + evidence($1) }
    // The first type in rule order among equal maxima, so ties resolve the same way every time.
    var winner: String? = nil
    for t in order where winner == nil || evidence(t) > evidence(winner!) { winner = t }
    guard let winner, total > 0 else {
      return RouteDecision(
        type: rules.defaultType, confidence: 0, reason: "default: no keyword or similar past task", fellBack: true)
    }
    let confidence = evidence(winner) / (total + 1)
    if confidence < rules.threshold {
      return RouteDecision(
        type: rules.defaultType, confidence: confidence,
        reason: "default: best was \(winner) at \(Self.fixed2(confidence)), below \(Self.fixed2(rules.threshold))",
        fellBack: true)
    }
    let reason: String
    if keyword[winner, default: 0] >= similar[winner, default: 0], let p = phrases[winner] {
      reason = "keyword: " + p.joined(separator: ", ")
    } else if let n = best[winner] {
      reason = "similar to \(n.id) (\(Self.fixed2(n.similarity)))"
    } else {
      reason = "keyword: " + (phrases[winner] ?? []).joined(separator: ", ")
    }
    return RouteDecision(type: winner, confidence: confidence, reason: reason, fellBack: false)
  }

  /// Whether `needle` occurs as consecutive tokens in `hay`.
  static func contains(_ hay: [String], _ needle: [String]) -> Bool {
    guard !needle.isEmpty, needle.count <= hay.count else { return false }
    for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
      if needle.indices.allSatisfy({ hay[i + $0] == needle[$0] }) { return true }
    }
    return false
  }

  /// "0.82": two decimals without Foundation's formatting.
  public static func fixed2(_ x: Double) -> String {
    let c = Int((x * 100).rounded())
    let frac = c % 100
    return "\(c / 100).\(frac < 10 ? "0" : "")\(frac)"
  }
}
