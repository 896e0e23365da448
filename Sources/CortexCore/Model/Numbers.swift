/// Every number that enters Cortex from outside (socket, command line, config, inbox, FIFO,
/// report lines) passes through one of these checks, so none can reach an arithmetic trap
/// (a Double → Int64 conversion of a huge or infinite value, or an Int64 overflow) later.
public enum Numbers {
  /// The longest duration Cortex accepts anywhere: 100 years, in milliseconds. Far below
  /// Int64.max, so sums of a time and a duration cannot overflow.
  public static let maxDurationMs: Int64 = 100 * 365 * 86_400_000
  /// The latest timestamp accepted from a worker (ms since the epoch, about the year 5138).
  public static let maxTimestampMs: Int64 = 100_000_000_000_000
  /// The most tokens one task may reserve or report (2^40, about 1.1e12).
  public static let maxTokens = 1 << 40

  /// `a + b` for token counts: held to `0...maxTokens`, never trapping, whatever the operands (a
  /// running sum over an agent's output may be fed millions of maximal counts).
  public static func addTokens(_ a: Int, _ b: Int) -> Int {
    let (sum, overflow) = a.addingReportingOverflow(b)
    if overflow { return b > 0 ? maxTokens : 0 }
    return Swift.min(Swift.max(sum, 0), maxTokens)
  }

  /// A whole number in `min...max`, or a `SpecError` naming the field.
  public static func int(_ field: String, _ v: JSON, min: Int, max: Int) throws(SpecError) -> Int {
    guard let i = v.int else {
      if let d = v.double { throw SpecError(field, "must be a whole number from \(min) to \(max), not \(text(d))") }
      throw SpecError(field, "must be a whole number, not \(v.kindName)")
    }
    guard i >= min && i <= max else { throw SpecError(field, "must be from \(min) to \(max), not \(i)") }
    return Int(i)
  }

  /// A finite number of seconds in `min...max` (`min` excluded when `exclusiveMin`).
  public static func seconds(
    _ field: String, _ v: JSON, min: Double = 0, max: Double, exclusiveMin: Bool = true
  ) throws(SpecError) -> Double {
    guard let d = v.double else { throw SpecError(field, "must be a number of seconds, not \(v.kindName)") }
    let low = exclusiveMin ? d > min : d >= min
    guard d.isFinite, low, d <= max else {
      let lower = exclusiveMin ? "more than \(text(min))" : "at least \(text(min))"
      throw SpecError(field, "must be \(lower) and at most \(text(max)) seconds, not \(text(d))")
    }
    return d
  }

  /// A finite number in `min...max`.
  public static func double(_ field: String, _ v: JSON, min: Double, max: Double) throws(SpecError) -> Double {
    guard let d = v.double else { throw SpecError(field, "must be a number, not \(v.kindName)") }
    guard d.isFinite, d >= min, d <= max else {
      throw SpecError(field, "must be from \(text(min)) to \(text(max)), not \(text(d))")
    }
    return d
  }

  /// Seconds to milliseconds, saturating at 0 and `maxDurationMs` (NaN is 0): for values already
  /// range-checked, a second line of defence that never traps.
  public static func ms(fromSeconds s: Double) -> Int64 { ms(s * 1000) }

  /// A Double to a whole number of milliseconds in `0...maxDurationMs`; never traps.
  public static func ms(_ d: Double) -> Int64 {
    guard !d.isNaN, d > 0 else { return 0 }
    if d >= Double(maxDurationMs) { return maxDurationMs }
    return Int64(d)
  }

  /// A number as a person would write it: 30 rather than 30.0.
  public static func text(_ d: Double) -> String {
    if d.isFinite && d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
    return String(d)
  }
}
