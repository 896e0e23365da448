import CortexCore
import Posix

/// What a load run submits and how: the task latency distribution, token use, injected 429s,
/// retries, and the load shape (closed loop of agents, or an open-loop rate).
struct LoadOptions {
  enum Latency: Equatable {
    case fixed(Double)
    case uniform(Double, Double)
    case lognormal(p50: Double, p99: Double)

    /// `50ms` · `uniform=10ms..200ms` · `p50=200ms,p99=2s` (lognormal through both quantiles).
    static func parse(_ s: String) throws(CLIError) -> Latency {
      func ms(_ t: Substring) throws(CLIError) -> Double {
        guard let v = DurationText.parseMs(String(t)) else {
          throw CLIError.usage("--latency: \(quoted(t)) is not a duration like 200ms or 2s (in \(quoted(s)))", BenchCommand.usage)
        }
        return Double(v)
      }
      if s.hasPrefix("uniform=") {
        let parts = s.dropFirst(8).split(separator: ".", omittingEmptySubsequences: true)
        guard parts.count == 2 else { throw CLIError.usage("--latency: \(quoted(s)) is not uniform=LO..HI", BenchCommand.usage) }
        let lo = try ms(parts[0]), hi = try ms(parts[1])
        guard lo <= hi else { throw CLIError.usage("--latency: uniform low is above high in \(quoted(s))", BenchCommand.usage) }
        return .uniform(lo, hi)
      }
      if s.contains("=") {
        var p50: Double?, p99: Double?
        for part in s.split(separator: ",") {
          let kv = part.split(separator: "=", maxSplits: 1)
          guard kv.count == 2 else { throw CLIError.usage("--latency: \(quoted(part)) is not p50=D or p99=D", BenchCommand.usage) }
          switch kv[0] {
          case "p50": p50 = try ms(kv[1])
          case "p99": p99 = try ms(kv[1])
          default: throw CLIError.usage("--latency: unknown quantile \(quoted(kv[0])) (use p50 and p99)", BenchCommand.usage)
          }
        }
        guard let p50, let p99, p50 > 0, p99 >= p50 else {
          throw CLIError.usage("--latency: give p50=D,p99=D with 0 < p50 <= p99 (got \(quoted(s)))", BenchCommand.usage)
        }
        return .lognormal(p50: p50, p99: p99)
      }
      return .fixed(try ms(Substring(s)))
    }

    func sample(_ rng: inout SplitMix64) -> Int64 {
      switch self {
      case .fixed(let v): return Int64(v)
      case .uniform(let lo, let hi): return Int64(lo + (hi - lo) * rng.unit())
      case .lognormal(let p50, let p99):
        // ln X ~ N(mu, sigma): mu = ln p50, sigma from the 99th percentile (z = 2.3263).
        let mu = Math.log(p50), sigma = (Math.log(p99) - mu) / 2.3263
        return Int64(Math.exp(mu + sigma * rng.gaussian()))
      }
    }

    var json: JSON {
      switch self {
      case .fixed(let v): .object([("fixed_ms", .double(v))])
      case .uniform(let lo, let hi): .object([("uniform_ms", .array([.double(lo), .double(hi)]))])
      case .lognormal(let a, let b): .object([("lognormal_p50_ms", .double(a)), ("lognormal_p99_ms", .double(b))])
      }
    }
  }

  var latency: Latency = .fixed(50)
  var tokens = 100
  var errorRate = 0.0
  var maxAttempts = 3
  var kind = "synthetic"
  var workers = 20
  var errorBudgetRate = 0.0
  var sampleMs: Int64 = 1000

  /// One task spec for the next submit.
  func spec(_ rng: inout SplitMix64) -> JSON {
    if kind == "exec" {
      return .object([("command", .array([.string("true")])), ("max_attempts", .int(Int64(maxAttempts)))])
    }
    let tokensUsed = tokens > 0 ? Int64(rng.below(Int64(tokens) * 2 + 1)) : 0
    return .object([
      (
        "synthetic",
        .object([
          ("duration_ms", .int(max(0, latency.sample(&rng)))), ("tokens", .int(tokensUsed)), ("error_rate", .double(errorRate)),
        ])
      ),
      ("token_budget", .int(Int64(tokens) * 2)), ("max_attempts", .int(Int64(maxAttempts))),
    ])
  }

  var json: JSON {
    .object([
      ("kind", .string(kind)), ("latency", latency.json), ("tokens_mean", .int(Int64(tokens))),
      ("injected_429_rate", .double(errorRate)), ("max_attempts", .int(Int64(maxAttempts))),
      ("workers", .int(Int64(workers))), ("error_budget_rate", .double(errorBudgetRate)),
    ])
  }

  /// `8..1000`: doubling steps from 8, ending exactly at 1000. A single number is one step.
  static func agentSteps(_ s: String) throws(CLIError) -> [Int] {
    let parts = s.split(separator: ".", omittingEmptySubsequences: true)
    guard parts.count == 1 || parts.count == 2, let lo = Int(parts[0]), let hi = Int(parts.last!), lo >= 1, hi >= lo, hi <= 10_000 else {
      throw CLIError.usage("--agents: \(quoted(s)) is not N or LO..HI with 1 <= LO <= HI <= 10000", BenchCommand.usage)
    }
    var steps: [Int] = []
    var n = lo
    while n < hi {
      steps.append(n)
      n *= 2
    }
    steps.append(hi)
    return steps
  }

  /// `200/s` or `200`.
  static func rate(_ s: String) throws(CLIError) -> Double {
    let t = s.hasSuffix("/s") ? String(s.dropLast(2)) : s
    guard let r = Double(t), r > 0, r <= 1_000_000 else {
      throw CLIError.usage("--rate: \(quoted(s)) is not a positive rate like 200/s", BenchCommand.usage)
    }
    return r
  }
}

extension SplitMix64 {
  /// Uniform in [0, 1).
  mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
  /// Standard normal (Box–Muller).
  mutating func gaussian() -> Double {
    let u1 = max(unit(), 1e-12), u2 = unit()
    return (-2 * Math.log(u1)).squareRoot() * Math.cos(2 * Double.pi * u2)
  }
}
