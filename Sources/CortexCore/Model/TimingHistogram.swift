import Synchronization

/// Counts of durations in the buckets of Prometheus histograms, shared between threads: the
/// daemon's log writer records its fdatasync times, the web thread reads them for `/metrics`.
public final class TimingHistogram: Sendable {
  public static let bounds: [Double] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
  ]
  private struct Counts {
    var buckets = [Int](repeating: 0, count: TimingHistogram.bounds.count)
    var totalNs = 0
    var count = 0
  }
  private let state = Mutex(Counts())

  public init() {}

  public func observe(ns: Int64) {
    let s = Double(max(0, ns)) / 1e9
    let i = Self.bounds.firstIndex(where: { s <= $0 })
    state.withLock { c in
      if let i { c.buckets[i] += 1 }
      c.totalNs += Int(max(0, ns))
      c.count += 1
    }
  }

  /// (per-bucket counts, sum in seconds, count).
  public func read() -> ([Int], Double, Int) {
    state.withLock { c in (c.buckets, Double(c.totalNs) / 1e9, c.count) }
  }
}
