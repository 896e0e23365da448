import CortexCore

/// A Prometheus histogram: cumulative buckets, a sum and a count.
struct Histogram {
  static let bounds: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600]
  var counts = [Int](repeating: 0, count: Histogram.bounds.count)
  var sum = 0.0
  var count = 0

  mutating func observe(_ seconds: Double) {
    let v = max(0, seconds)
    sum += v
    count += 1
    if let i = Self.bounds.firstIndex(where: { v <= $0 }) { counts[i] += 1 }
  }

  /// Adds bucket counts taken elsewhere (the daemon's fsync timings).
  init(counts: [Int] = [Int](repeating: 0, count: Histogram.bounds.count), sum: Double = 0, count: Int = 0) {
    self.counts = counts
    self.sum = sum
    self.count = count
  }

  func exposition(_ name: String, _ help: String) -> String {
    var s = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
    var cumulative = 0
    for (i, b) in Self.bounds.enumerated() {
      cumulative += counts[i]
      s += "\(name)_bucket{le=\"\(Self.format(b))\"} \(cumulative)\n"
    }
    s += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(Self.format(sum))\n\(name)_count \(count)\n"
    return s
  }

  static func format(_ d: Double) -> String {
    if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
    return String(d)
  }
}

/// Counters, histograms and the per-second series behind `/metrics` and the overview's charts.
struct FleetMetrics {
  var finishedTotal: [String: Int] = [:]
  var queueWait = Histogram()
  var run = Histogram()
  var series = Series()

  mutating func finished(outcome: String, count: Int, tsMs: Int64, latencyMs: Int64?) {
    finishedTotal[outcome, default: 0] += count
    series.add(tsMs: tsMs, count: count, latencyMs: latencyMs)
  }

  /// Finished tasks and their end-to-end latency (submitted → finished) per second for the last
  /// `seconds` seconds; latency kept as counts in log-spaced buckets so quantiles cost no samples.
  struct Series {
    static let seconds = 600
    /// Upper bounds of the latency buckets in ms: 1, 1.25, 1.56, … (×1.25), up to ~1 day.
    static let latencyBounds: [Double] = (0..<82).map { pow125($0) }
    var startSec: Int64 = 0
    var finished = [Int](repeating: 0, count: Series.seconds)
    var latency = [[UInt32]](repeating: [], count: Series.seconds)

    static func pow125(_ n: Int) -> Double {
      var v = 1.0
      for _ in 0..<n { v *= 1.25 }
      return v
    }

    mutating func add(tsMs: Int64, count: Int, latencyMs: Int64?) {
      let sec = tsMs / 1000
      advance(to: sec)
      guard sec > startSec - Int64(Self.seconds) || startSec == 0 else { return }
      let i = Int(((sec % Int64(Self.seconds)) + Int64(Self.seconds)) % Int64(Self.seconds))
      finished[i] += count
      if let l = latencyMs {
        if latency[i].isEmpty { latency[i] = [UInt32](repeating: 0, count: Self.latencyBounds.count + 1) }
        let b = Self.latencyBounds.firstIndex(where: { Double(l) <= $0 }) ?? Self.latencyBounds.count
        latency[i][b] += 1
      }
    }

    /// Moves the window's end to `sec`, clearing the seconds that fall out.
    mutating func advance(to sec: Int64) {
      if startSec == 0 {
        startSec = sec
        return
      }
      guard sec > startSec else { return }
      let steps = min(Int(sec - startSec), Self.seconds)
      for k in 1...steps {
        let i = Int(((startSec + Int64(k)) % Int64(Self.seconds) + Int64(Self.seconds)) % Int64(Self.seconds))
        finished[i] = 0
        latency[i] = []
      }
      startSec = sec
    }

    /// `points` windows of `step` seconds ending at `nowSec`: tasks/s and p50/p95/p99 latency (ms).
    func json(nowSec: Int64, step: Int = 5, points: Int = 60) -> JSON {
      var rate: [JSON] = []
      var p50: [JSON] = []
      var p95: [JSON] = []
      var p99: [JSON] = []
      let first = nowSec - Int64(step * points) + 1
      for p in 0..<points {
        var n = 0
        var buckets = [UInt32](repeating: 0, count: Self.latencyBounds.count + 1)
        var any = false
        for s in 0..<step {
          let sec = first + Int64(p * step + s)
          guard sec <= startSec, sec > startSec - Int64(Self.seconds) else { continue }
          let i = Int((sec % Int64(Self.seconds) + Int64(Self.seconds)) % Int64(Self.seconds))
          n += finished[i]
          if !latency[i].isEmpty {
            any = true
            for b in 0..<buckets.count { buckets[b] += latency[i][b] }
          }
        }
        rate.append(.double(Double(n) / Double(step)))
        if any {
          p50.append(.double(Self.quantile(buckets, 0.50)))
          p95.append(.double(Self.quantile(buckets, 0.95)))
          p99.append(.double(Self.quantile(buckets, 0.99)))
        } else {
          p50.append(.null)
          p95.append(.null)
          p99.append(.null)
        }
      }
      return .object([
        ("end_ms", .int((nowSec + 1) * 1000)), ("step_s", .int(Int64(step))), ("tasks_per_s", .array(rate)),
        ("latency_p50_ms", .array(p50)), ("latency_p95_ms", .array(p95)), ("latency_p99_ms", .array(p99)),
      ])
    }

    static func quantile(_ b: [UInt32], _ q: Double) -> Double {
      let total = b.reduce(0) { $0 + Int($1) }
      guard total > 0 else { return 0 }
      let want = max(1, Int((Double(total) * q).rounded(.up)))
      var seen = 0
      for (i, c) in b.enumerated() {
        seen += Int(c)
        if seen >= want { return i < latencyBounds.count ? latencyBounds[i] : latencyBounds.last! * 1.25 }
      }
      return latencyBounds.last!
    }
  }
}
