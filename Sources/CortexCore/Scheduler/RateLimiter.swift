/// A provider's rate limits for one group or worker type, as two token buckets: starts per minute
/// and tokens per minute (a task's `token_budget` is taken at dispatch, like the budget). Pure:
/// every method takes the time.
///
/// With `adaptive`, the allowed start rate follows AIMD, shaped as TCP CUBIC shapes its window:
/// - decrease: the rate is multiplied by 0.7 when a task that started at least a second after the
///   last decrease is refused by the provider's limit (the tasks started before it, or in the
///   second after it while the provider's own burst is still empty, reflect the old rate: one
///   decrease per round trip, TCP NewReno's rule). A refusal that names a `retry_after` is the
///   provider's quota speaking and counts at once; one without it (an exit code, a bare 429)
///   may be noise, so it counts when 4 of the last 6 outcomes since the last decrease were
///   refusals (random 429s at 15 % do that about once in 40 refusals);
/// - where refusals began (`refusalsBeganPerMin`, CUBIC's W_max): the rate of a decrease at or
///   above 95 % of it replaces it; a decrease below it (one more in a run, while the rate is
///   still climbing back) lowers it by a tenth at most, so one burst of refusals does not make
///   the rate forget where the limit was, while a limit that really fell is found in a few
///   rounds. A refusal without `retry_after` only ever raises it (it may be noise);
/// - increase, by time rather than per success: the rate climbs back to 95 % of where refusals
///   began in 10 s along a concave curve (fast at first, flat near the old limit), then probes
///   above that by 0.5 % of it a second, up to the configured `starts_per_min`. Just under, not
///   at: a provider's burst hides how far past its limit the rate was when it refused, so where
///   refusals began overstates the limit; a refusal at the plateau lowers it by 5 % each time
///   until the plateau holds. Time only counts while the rate is what holds the group back (a
///   start emptied the bucket), so an idle group does not drift up to its ceiling.
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
  /// Where refusals began (CUBIC's W_max): the rate of the last decreases, see above.
  public internal(set) var refusalsBeganPerMin: Double?
  /// The rate just after the last decrease, where the climb back starts.
  var climbFromPerMin: Double?
  /// Time counted toward the climb since the last decrease, and when it was last counted.
  var climbedMs: Int64 = 0
  var climbCountedMs: Int64
  /// A start found the bucket empty since the climb was last counted: the rate holds the group back.
  var pressed = false
  /// Outcomes since the last decrease, newest last (true: refused), at most `window`.
  var recent: [Bool] = []
  /// The rate last written to the log, so increases are logged when they add up, not per task.
  var loggedPerMin: Double?
  public internal(set) var starts = 0
  public internal(set) var rateLimited = 0
  public internal(set) var decreases = 0

  static let decrease = 0.7
  /// A further decrease needs a task started this long after the last one.
  static let settleMs: Int64 = 1000
  /// The time to climb back to `climbToShare` of where refusals began.
  static let climbMs: Int64 = 10_000
  static let climbToShare = 0.95
  /// Past it, the probe's growth a second, as a share of it.
  static let probeShare = 0.005
  /// A decrease within this share below where refusals began replaces it; further below, it
  /// lowers it by `forgetShare` at most.
  static let sameLimitShare = 0.95
  static let forgetShare = 0.9
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
    climbCountedMs = now
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
    if allowedPerMin != nil {
      startTokens -= 1
      if startTokens < 1 { pressed = true }
    }
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
    guard lastDecreaseMs == .min || startedMs >= lastDecreaseMs + Self.settleMs else { return nil }
    refill(now)
    let next = max(floorPerMin, r * Self.decrease)
    allowedPerMin = next
    if let began = refusalsBeganPerMin, r < began * Self.sameLimitShare {
      if quota { refusalsBeganPerMin = max(r, began * Self.forgetShare) }
    } else if quota || r > (refusalsBeganPerMin ?? 0) {
      refusalsBeganPerMin = r
    }
    climbFromPerMin = next
    climbedMs = 0
    climbCountedMs = now
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

  /// The rate `climbed` ms of climbing after the last decrease: a concave (cubic) curve from the
  /// rate after it to just under where refusals began in `climbMs`, then a linear probe above it.
  func climbTarget(_ climbed: Int64) -> Double? {
    guard let from = climbFromPerMin else { return nil }
    let top = max(from, (refusalsBeganPerMin ?? from) * Self.climbToShare)
    if climbed < Self.climbMs {
      let left = 1 - Double(climbed) / Double(Self.climbMs)
      return top - (top - from) * left * left * left
    }
    return top + top * Self.probeShare * Double(climbed - Self.climbMs) / 1000
  }

  /// A task succeeded: the rate climbs by the time that passed while the rate held the group back
  /// (see above), up to the ceiling. Returns (logged before, now) when the rate grew by a tenth
  /// since it was last logged, or reached the ceiling.
  mutating func succeeded(now: Int64, startedMs: Int64) -> (Double, Double)? {
    guard config.adaptive, let r = allowedPerMin, let ceiling = config.startsPerMin else { return nil }
    if startedMs > lastDecreaseMs { note(false) }
    if pressed, now > climbCountedMs { climbedMs += now - climbCountedMs }
    climbCountedMs = max(climbCountedMs, now)
    pressed = false
    guard r < ceiling, let target = climbTarget(climbedMs), target > r else { return nil }
    refill(now)
    let next = min(ceiling, target)
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
    if c.adaptive, let ceiling = c.startsPerMin {
      n.refusalsBeganPerMin = refusalsBeganPerMin.map { min($0, ceiling) }
      // Never decreased yet but under a higher ceiling: it probes up from the learned rate.
      n.climbFromPerMin = climbFromPerMin.map { min($0, ceiling) } ?? n.allowedPerMin.flatMap { $0 < ceiling ? $0 : nil }
      n.climbedMs = climbedMs
      n.lastDecreaseMs = lastDecreaseMs
    }
    n.starts = starts
    n.rateLimited = rateLimited
    n.decreases = decreases
    self = n
  }

  public func json(now: Int64) -> JSON {
    var o: [(String, JSON)] = []
    if let c = config.startsPerMin { o.append(("starts_per_min_limit", .double(c))) }
    if let a = allowedPerMin { o.append(("starts_per_min_allowed", .double((a * 100).rounded() / 100))) }
    if let b = refusalsBeganPerMin { o.append(("starts_per_min_refusals_began", .double((b * 100).rounded() / 100))) }
    if let t = config.tokensPerMin { o.append(("tokens_per_min_limit", .int(Int64(t)))) }
    o.append(("adaptive", .bool(config.adaptive)))
    if holdUntilMs > now { o.append(("hold_until", .string(Timestamp.rfc3339(ms: holdUntilMs)))) }
    o.append(("starts", .int(Int64(starts))))
    o.append(("rate_limited", .int(Int64(rateLimited))))
    o.append(("decreases", .int(Int64(decreases))))
    return .object(o)
  }
}
