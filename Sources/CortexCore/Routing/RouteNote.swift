/// The routing decision a submit carries when the client picked the type from the description
/// (`"routed": {"reason": "...", "confidence": 0.8, "fell_back": false}`). The daemon logs it as
/// `task.routed` after `task.submitted`, so the choice is in the decision log with the task.
public struct RouteNote: Equatable, Sendable {
  public var reason: String
  public var confidence: Double
  public var fellBack: Bool

  public init(reason: String, confidence: Double, fellBack: Bool) {
    self.reason = reason
    self.confidence = confidence
    self.fellBack = fellBack
  }

  public init(_ d: RouteDecision) { self.init(reason: d.reason, confidence: d.confidence, fellBack: d.fellBack) }

  /// The reason as one machine word: `default_type` (below the threshold), `history` (similar
  /// past descriptions decided) or `keyword` (the rules did).
  public var word: String { fellBack ? "default_type" : reason.hasPrefix("similar") ? "history" : "keyword" }

  /// The longest reason kept (longer ones are cut).
  static let maxReasonBytes = 256

  public func json() -> JSON {
    .object([("reason", .string(reason)), ("confidence", .double(confidence)), ("fell_back", .bool(fellBack))])
  }

  static func decode(_ field: String, _ v: JSON) throws(SpecError) -> RouteNote {
    guard v.object != nil else { throw SpecError(field, "must be an object with reason and confidence") }
    guard let r = v["reason"]?.string, !r.isEmpty else { throw SpecError(field + ".reason", "must be a non-empty string") }
    let c = try Numbers.double(field + ".confidence", v["confidence"] ?? .null, min: 0, max: 1)
    let reason = r.utf8.count <= maxReasonBytes ? r : String(decoding: r.utf8.prefix(maxReasonBytes), as: UTF8.self)
    return RouteNote(reason: reason, confidence: c, fellBack: v["fell_back"]?.bool == true)
  }
}
