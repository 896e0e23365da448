/// A provider's rate limits for one group or worker type, as two token buckets: starts per minute
/// and tokens per minute (a task's `token_budget` is taken at dispatch, like the budget). Pure:
/// every method takes the time.
///
/// With `adaptive`, the allowed start rate follows AIMD, as TCP's congestion window does:
/// - decrease: the rate is multiplied by 0.7 when a task that *started after* the last decrease
///   is refused by the provider's limit (the tasks started before it reflect the old rate: one
///   decrease per round trip, TCP NewReno's rule). A refusal that names a `retry_after` is the
///   provider's quota speaking and counts at once; one without it (an exit code, a bare 429)
///   may be noise, so it counts when 4 of the last 6 outcomes since the last decrease were
///   refusals (random 429s at 15 % do that in about one window of 170, a rate well over the
///   limit at once);
/// - increase: each success adds 1 % of the ceiling per minute, a twentieth of that within 5 % below
///   the rate of the last decrease (probe gently where the limit was, as CUBIC does), up to the
///   configured `starts_per_min`.
/// A `retry_after` also holds the whole group until then, and empties the start bucket so the
/// group resumes at its allowed rate rather than in a burst.
public struct RateLimiter: Sendable, Equatable {
  public let config: RateConfig
  /// Starts per minute allowed now (nil: no start limit).
  public internal(set) var allowedPerMin: Double?
  var startTokens: Double
  var startsRefilledMs: Int64
  var tokenBucket: Double
  var tokensRefilledMs: Int64
  /// The provider asked to wait until then (`retry_after_s`).
  public internal(set) var holdUntilMs: Int64 = 0
  public internal(set) var lastDecreaseMs: Int64 = .min
  /// The allowed rate when it was last decreased (where the limit was found).
  var rateAtDecrease: Double?
  /// Outcomes since the last decrease, newest last (true: refused), at most `window`.
  var recent: [Bool] = []
  /// The rate last written to the log, so increases are logged when they add up, not per task.
  var loggedPerMin: Double?
  public internal(set) var starts = 0
  public internal(set) var rateLimited = 0
  public internal(set) var decreases = 0

  static let decrease = 0.7
  static let increaseShare = 0.01
  static let window = 6
  static let refusalsInWindow = 4

  public init(_ config: RateConfig, now: Int64) {
    self.config = config
    allowedPerMin = config.startsPerMin
    loggedPerMin = allowedPerMin
    startTokens = max(1, (config.startsPerMin ?? 0) / 60)
    startsRefilledMs = now
    tokenBucket = Double(config.tokensPerMin ?? 0)
    tokensRefilledMs = now
  }

  /// At most one second's worth of starts at once (at least one).
  var burst: Double { max(1, (allowedPerMin ?? 0) / 60) }
  var floorPerMin: Double { max(0.1, (config.startsPerMin ?? 0) * 0.01) }

  mutating func refill(_ now: Int64) {
    if let r = allowedPerMin, now > startsRefilledMs {
      startTokens = min(burst, startTokens + Double(now - startsRefilledMs) * r / 60_000)
    }
    startsRefilledMs = max(startsRefilledMs, now)
    if let cap = config.tokensPerMin, now > tokensRefilledMs {
      tokenBucket = min(Double(cap), tokenBucket + Double(now - tokensRefilledMs) * Double(cap) / 60_000)
    }
    tokensRefilledMs = max(tokensRefilledMs, now)
  }

  /// The tokens a task needs from the tokens-per-minute bucket: its budget, at most a full bucket.
  func need(_ tokens: Int) -> Double { Double(min(tokens, config.tokensPerMin ?? 0)) }

  /// nil when a task needing `tokens` may start now; else the earliest time it may.
  public func readyAtMs(now: Int64, tokens: Int) -> Int64? {
    var wait: Int64 = 0
    if holdUntilMs > now { wait = holdUntilMs - now }
    if let r = allowedPerMin {
      let have = min(burst, startTokens + Double(max(0, now - startsRefilledMs)) * r / 60_000)
      if have < 1 { wait = max(wait, Int64(((1 - have) * 60_000 / r).rounded(.up))) }
    }
    if let cap = config.tokensPerMin, tokens > 0 {
      let have = min(Double(cap), tokenBucket + Double(max(0, now - tokensRefilledMs)) * Double(cap) / 60_000)
      let want = need(tokens)
      if have < want { wait = max(wait, Int64(((want - have) * 60_000 / Double(cap)).rounded(.up))) }
    }
    return wait > 0 ? now + max(1, wait) : nil
  }

  /// When a task needing `tokens` may start, from the buckets as they were last refilled (no clock
  /// needed): for the loop's timer.
  public func nextReadyMs(tokens: Int) -> Int64 {
    var at = holdUntilMs
    if let r = allowedPerMin, startTokens < 1 {
      at = max(at, startsRefilledMs + Int64(((1 - startTokens) * 60_000 / r).rounded(.up)))
    }
    if let cap = config.tokensPerMin, tokens > 0, tokenBucket < need(tokens) {
      at = max(at, tokensRefilledMs + Int64(((need(tokens) - tokenBucket) * 60_000 / Double(cap)).rounded(.up)))
    }
    return at
  }

  /// A task starts: takes one start and its tokens.
  mutating func take(now: Int64, tokens: Int) {
    refill(now)
    if allowedPerMin != nil { startTokens -= 1 }
    if config.tokensPerMin != nil { tokenBucket -= need(tokens) }
    starts += 1
  }

  /// A task that started at `startedMs` reported a rate limit. Returns the rate before and after
  /// when it decreased.
  mutating func rateLimited(now: Int64, startedMs: Int64, retryAfterMs: Int64?) -> (Double, Double)? {
    rateLimited += 1
    if let r = retryAfterMs, r > 0 {
      holdUntilMs = max(holdUntilMs, now + r)
      refill(now)
      startTokens = min(startTokens, 0)
    }
    guard config.adaptive, let r = allowedPerMin, startedMs > lastDecreaseMs else { return nil }
    note(true)
    let quota = (retryAfterMs ?? 0) > 0
    guard quota || recent.filter({ $0 }).count >= Self.refusalsInWindow else { return nil }
    refill(now)
    let next = max(floorPerMin, r * Self.decrease)
    allowedPerMin = next
    rateAtDecrease = r
    startTokens = min(startTokens, burst)
    lastDecreaseMs = now
    recent.removeAll()
    decreases += 1
    loggedPerMin = next
    return (r, next)
  }

  mutating func note(_ refused: Bool) {
    recent.append(refused)
    if recent.count > Self.window { recent.removeFirst() }
  }

  /// A task succeeded: additive increase, up to the ceiling. Returns (logged before, now) when the
  /// rate grew by a tenth since it was last logged, or reached the ceiling.
  mutating func succeeded(now: Int64, startedMs: Int64) -> (Double, Double)? {
    guard config.adaptive, let r = allowedPerMin, let ceiling = config.startsPerMin else { return nil }
    if startedMs > lastDecreaseMs { note(false) }
    guard r < ceiling else { return nil }
    refill(now)
    var step = ceiling * Self.increaseShare
    if let top = rateAtDecrease, r >= top * 0.95, r < top { step /= 20 }
    let next = min(ceiling, r + step)
    allowedPerMin = next
    let last = loggedPerMin ?? r
    if next >= ceiling || next >= last * 1.1 {
      loggedPerMin = next
      return (last, next)
    }
    return nil
  }

  /// Settings changed (SIGHUP): keep the learned rate under the new ceiling.
  mutating func reconfigure(_ c: RateConfig, now: Int64) {
    var n = RateLimiter(c, now: now)
    if let learned = allowedPerMin, let ceiling = c.startsPerMin, c.adaptive { n.allowedPerMin = min(learned, ceiling) }
    n.holdUntilMs = holdUntilMs
    n.starts = starts
    n.rateLimited = rateLimited
    n.decreases = decreases
    self = n
  }

  public func json(now: Int64) -> JSON {
    var o: [(String, JSON)] = []
    if let c = config.startsPerMin { o.append(("starts_per_min_limit", .double(c))) }
    if let a = allowedPerMin { o.append(("starts_per_min_allowed", .double((a * 100).rounded() / 100))) }
    if let t = config.tokensPerMin { o.append(("tokens_per_min_limit", .int(Int64(t)))) }
    o.append(("adaptive", .bool(config.adaptive)))
    if holdUntilMs > now { o.append(("hold_until", .string(Timestamp.rfc3339(ms: holdUntilMs)))) }
    o.append(("starts", .int(Int64(starts))))
    o.append(("rate_limited", .int(Int64(rateLimited))))
    o.append(("decreases", .int(Int64(decreases))))
    return .object(o)
  }
}
