/// Fleet control settings in `config.json` (SPEC §15): groups with a `parallel` limit, rate limits
/// (per group or worker type) and `on_finish` hooks.
///
/// ```json
/// "on_finish": "notify-send \"$CORTEX_TASK_ID $CORTEX_TASK_STATE\"",
/// "hook_timeout_s": 30,
/// "groups": {"openai": {"parallel": 4, "rate": {"starts_per_min": 600, "tokens_per_min": 90000},
///                       "on_finish": "echo done >> /tmp/openai.log"}}
/// ```
public struct GroupConfig: Equatable, Sendable {
  /// Most tasks of the group assigned or running at once; 0 = no limit.
  public var parallel = 0
  public var rate: RateConfig?
  public var onFinish: String?
  public init(parallel: Int = 0, rate: RateConfig? = nil, onFinish: String? = nil) {
    self.parallel = parallel
    self.rate = rate
    self.onFinish = onFinish
  }

  public func json() -> JSON {
    var o: [(String, JSON)] = [("parallel", .int(Int64(parallel)))]
    if let rate { o.append(("rate", rate.json())) }
    if let onFinish { o.append(("on_finish", .string(onFinish))) }
    return .object(o)
  }

  static func decode(_ field: String, _ v: JSON) throws(SpecError) -> GroupConfig {
    guard let o = v.object else { throw SpecError(field, "must be an object") }
    var g = GroupConfig()
    for (k, val) in o {
      let f = "\(field).\(k)"
      switch k {
      case "parallel": g.parallel = try Numbers.int(f, val, min: 0, max: 1_000_000)
      case "rate": g.rate = try RateConfig.decode(f, val)
      case "on_finish": g.onFinish = try FleetNames.hook(f, val)
      default: throw SpecError(f, "unknown field")
      }
    }
    return g
  }
}

/// A provider's limits: starts per minute and tokens per minute (token buckets). With `adaptive`
/// (the default) the allowed start rate shrinks when tasks report being rate limited and grows
/// back over time while they succeed (AIMD, see `RateLimiter`); `starts_per_min` is its ceiling.
public struct RateConfig: Equatable, Sendable {
  public var startsPerMin: Double?
  public var tokensPerMin: Int?
  public var adaptive = true
  /// An exit code that means "rate limited" for this provider's tool (besides the report line).
  public var rateLimitedExitCode: Int32?
  public init(startsPerMin: Double? = nil, tokensPerMin: Int? = nil, adaptive: Bool = true, rateLimitedExitCode: Int32? = nil) {
    self.startsPerMin = startsPerMin
    self.tokensPerMin = tokensPerMin
    self.adaptive = adaptive
    self.rateLimitedExitCode = rateLimitedExitCode
  }

  public func json() -> JSON {
    var o: [(String, JSON)] = []
    if let startsPerMin { o.append(("starts_per_min", .double(startsPerMin))) }
    if let tokensPerMin { o.append(("tokens_per_min", .int(Int64(tokensPerMin)))) }
    o.append(("adaptive", .bool(adaptive)))
    if let rateLimitedExitCode { o.append(("rate_limited_exit_code", .int(Int64(rateLimitedExitCode)))) }
    return .object(o)
  }

  static func decode(_ field: String, _ v: JSON) throws(SpecError) -> RateConfig {
    guard let o = v.object else { throw SpecError(field, "must be an object") }
    var r = RateConfig()
    for (k, val) in o {
      let f = "\(field).\(k)"
      switch k {
      case "starts_per_min":
        r.startsPerMin = try Numbers.double(f, val, min: 0.01, max: 1_000_000)
      case "tokens_per_min": r.tokensPerMin = try Numbers.int(f, val, min: 1, max: Numbers.maxTokens)
      case "adaptive":
        guard let b = val.bool else { throw SpecError(f, "must be true or false") }
        r.adaptive = b
      case "rate_limited_exit_code": r.rateLimitedExitCode = Int32(try Numbers.int(f, val, min: 1, max: 255))
      default: throw SpecError(f, "unknown field (use starts_per_min, tokens_per_min, adaptive, rate_limited_exit_code)")
      }
    }
    if r.startsPerMin == nil && r.tokensPerMin == nil {
      throw SpecError(field, "needs starts_per_min or tokens_per_min")
    }
    return r
  }
}

/// Names and commands of the fleet settings, checked in one place.
public enum FleetNames {
  public static let defaultGroup = "default"
  /// The longest group name.
  public static let maxGroupName = 64

  /// A group name: 1–64 of A–Z a–z 0–9 . _ -
  public static func checkGroup(_ field: String, _ name: String) throws(SpecError) -> String {
    guard !name.isEmpty, name.utf8.count <= maxGroupName,
      name.utf8.allSatisfy({ c in
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 46 || c == 95 || c == 45
      })
    else {
      throw SpecError(field, "\(quoted(name)) is not a group name (1 to \(maxGroupName) of letters, digits, '.', '_' and '-')")
    }
    return name
  }

  static func hook(_ field: String, _ v: JSON) throws(SpecError) -> String {
    guard let s = v.string, !s.isEmpty else { throw SpecError(field, "must be a non-empty shell command") }
    if s.utf8.contains(0) { throw SpecError(field, "must not contain a NUL byte") }
    return s
  }

  static func groups(_ field: String, _ v: JSON) throws(SpecError) -> [(String, GroupConfig)] {
    guard let o = v.object else { throw SpecError(field, "must be an object of groups") }
    var out: [(String, GroupConfig)] = []
    for (name, gv) in o {
      _ = try checkGroup("\(field).\(name)", name)
      out.append((name, try GroupConfig.decode("\(field).\(name)", gv)))
    }
    return out
  }
}
