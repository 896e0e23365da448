/// What a limiter has learned, kept across restarts: the snapshot carries it (`learnedJSON`), the
/// `rate.decreased` and `rate.increased` events after the snapshot replay it. Without it a restart
/// after a provider's refusals started the group again at its ceiling, in a burst of refusals.
/// The buckets are not kept (a start refills them from empty, at the learned rate).
extension RateLimiter {
  /// Nothing beyond its configuration: a fresh limiter at its ceiling, no hold.
  func learnedNothing(now: Int64) -> Bool {
    holdUntilMs <= now && refusalsBeganPerMin == nil && allowedPerMin == config.startsPerMin && climbFromPerMin == nil
  }

  /// The learned part, for the snapshot; nil when there is nothing to keep.
  public func learnedJSON(now: Int64) -> JSON? {
    guard !learnedNothing(now: now) else { return nil }
    var o: [(String, JSON)] = []
    if let a = allowedPerMin { o.append(("allowed_per_min", .double(a))) }
    if let b = refusalsBeganPerMin { o.append(("refusals_began_per_min", .double(b))) }
    if let f = climbFromPerMin { o.append(("climb_from_per_min", .double(f))) }
    o.append(("climbed_ms", .int(climbedMs)))
    if lastDecreaseMs != .min { o.append(("last_decrease_ms", .int(lastDecreaseMs))) }
    if holdUntilMs > now { o.append(("hold_until_ms", .int(holdUntilMs))) }
    return .object(o)
  }

  /// Puts back what `learnedJSON` kept, under the ceiling configured now (config.json may have
  /// changed between the two runs). The climb goes on from where it was; time while no daemon
  /// ran does not count (it counts only while the rate holds the group back).
  mutating func restoreLearned(_ v: JSON, now: Int64) {
    if let h = v["hold_until_ms"]?.int, h > holdUntilMs { holdUntilMs = h }
    guard config.adaptive, let ceiling = config.startsPerMin, let a = v["allowed_per_min"]?.double, a > 0 else { return }
    allowedPerMin = min(ceiling, max(floorPerMin, a))
    loggedPerMin = allowedPerMin
    refusalsBeganPerMin = v["refusals_began_per_min"]?.double.map { min($0, ceiling) }
    climbFromPerMin = v["climb_from_per_min"]?.double.map { min($0, ceiling) }
    climbedMs = max(0, v["climbed_ms"]?.int ?? 0)
    lastDecreaseMs = v["last_decrease_ms"]?.int ?? lastDecreaseMs
    climbCountedMs = now
    startTokens = min(startTokens, burst)
  }

  /// A `rate.decreased` event after the snapshot: the rate it fell to, where refusals began, when.
  mutating func replayDecrease(_ e: JSON, atMs: Int64) {
    guard config.adaptive, let ceiling = config.startsPerMin, let to = e["to_per_min"]?.double, to > 0 else { return }
    allowedPerMin = min(ceiling, max(floorPerMin, to))
    loggedPerMin = allowedPerMin
    if let b = e["refusals_began_per_min"]?.double { refusalsBeganPerMin = min(b, ceiling) }
    climbFromPerMin = allowedPerMin
    climbedMs = 0
    climbCountedMs = atMs
    lastDecreaseMs = atMs
    decreases += 1
  }

  /// A `rate.increased` event after the snapshot: the rate it climbed to, and how far along the climb.
  mutating func replayIncrease(_ e: JSON, atMs: Int64) {
    guard config.adaptive, let ceiling = config.startsPerMin, let to = e["to_per_min"]?.double, to > 0 else { return }
    allowedPerMin = min(ceiling, max(floorPerMin, to))
    loggedPerMin = allowedPerMin
    if let c = e["climbed_ms"]?.int { climbedMs = max(0, c) }
    climbCountedMs = atMs
  }
}
