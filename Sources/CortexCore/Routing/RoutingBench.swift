/// Routing accuracy on a labelled set (`docs/bench/routing/descriptions.jsonl`): one JSON object
/// per line with `id`, `description`, `type` and `split` ("train" or "heldout"). Train rows are
/// the "past tasks" of the history; held-out rows are routed and compared with their label.
/// Train rows are also scored leave-one-out, which is the figure to tune rules against without
/// looking at the held-out split.
public enum RoutingBench {
  public struct Row: Equatable, Sendable {
    public var id: String
    public var description: String
    public var type: String
    public var heldOut: Bool
  }

  public struct Score: Equatable, Sendable {
    public var correct = 0
    public var total = 0
    /// Answers that were the default type because nothing reached the threshold.
    public var fellBack = 0
    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }
    public var percent: String { Router.fixed2(accuracy * 100) + "%" }
  }

  public struct Result: Sendable {
    public var keywordHeldOut = Score()
    public var historyHeldOut = Score()
    public var keywordTrain = Score()
    public var historyTrainLeaveOneOut = Score()
    /// Per type, held-out: (type, keyword-only correct, with-history correct, rows).
    public var perType: [(type: String, keyword: Int, history: Int, total: Int)] = []
    /// Held-out rows the with-history router got wrong: (id, label, answer, reason).
    public var misses: [(id: String, label: String, answer: String, reason: String)] = []
  }

  public static func parse(_ text: String) throws(SpecError) -> [Row] {
    var rows: [Row] = []
    for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
      let v: JSON
      do { v = try JSON.parse(String(line)) } catch { throw SpecError("line \(n + 1)", "not JSON") }
      guard let id = v["id"]?.string, let d = v["description"]?.string, let t = v["type"]?.string,
        let s = v["split"]?.string, s == "train" || s == "heldout"
      else { throw SpecError("line \(n + 1)", "needs id, description, type and split (train|heldout)") }
      rows.append(Row(id: id, description: d, type: t, heldOut: s == "heldout"))
    }
    return rows
  }

  public static func evaluate(_ rows: [Row], rules: RoutingRules = RoutingRules()) -> Result {
    let train = rows.filter { !$0.heldOut }
    let history = RoutingHistory(train.map { .init(id: $0.id, description: $0.description, type: $0.type) })
    let router = Router(rules: rules, history: history)
    var r = Result()
    func add(_ s: inout Score, _ d: RouteDecision, _ label: String) {
      s.total += 1
      if d.type == label { s.correct += 1 }
      if d.fellBack { s.fellBack += 1 }
    }
    for row in train {
      add(&r.keywordTrain, router.route(row.description, useHistory: false), row.type)
      add(&r.historyTrainLeaveOneOut, router.route(row.description, excluding: row.id), row.type)
    }
    var perType: [String: (Int, Int, Int)] = [:]
    var order: [String] = []
    for row in rows where row.heldOut {
      let k = router.route(row.description, useHistory: false)
      let h = router.route(row.description)
      add(&r.keywordHeldOut, k, row.type)
      add(&r.historyHeldOut, h, row.type)
      if perType[row.type] == nil { order.append(row.type) }
      var p = perType[row.type, default: (0, 0, 0)]
      p.0 += k.type == row.type ? 1 : 0
      p.1 += h.type == row.type ? 1 : 0
      p.2 += 1
      perType[row.type] = p
      if h.type != row.type { r.misses.append((row.id, row.type, h.type, h.reason)) }
    }
    r.perType = order.map { ($0, perType[$0]!.0, perType[$0]!.1, perType[$0]!.2) }
    return r
  }

  /// The figures as plain text, one per line, then per type and the held-out misses.
  public static func report(_ r: Result) -> String {
    func line(_ name: String, _ s: Score) -> String {
      "\(name): \(s.correct)/\(s.total) = \(s.percent) (fell back to default: \(s.fellBack))"
    }
    var out = [
      line("held-out, keyword rules only", r.keywordHeldOut),
      line("held-out, keyword + history", r.historyHeldOut),
      line("train, keyword rules only", r.keywordTrain),
      line("train, keyword + history (leave-one-out)", r.historyTrainLeaveOneOut),
      "per type (held-out): type keyword history rows",
    ]
    out += r.perType.map { "  \($0.type) \($0.keyword) \($0.history) \($0.total)" }
    out.append("held-out misses (keyword + history): id label -> answer (reason)")
    out += r.misses.map { "  \($0.id) \($0.label) -> \($0.answer) (\($0.reason))" }
    return out.joined(separator: "\n") + "\n"
  }
}
