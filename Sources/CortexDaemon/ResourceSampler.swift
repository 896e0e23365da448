import CortexCore
import Posix

/// Samples idle CPU (from the deltas of /proc/stat) and available memory (/proc/meminfo) for the
/// scheduler's feasibility check.
struct ResourceSampler {
  private var lastIdle: Int64 = 0
  private var lastTotal: Int64 = 0

  /// Idle cores since the previous call, and MemAvailable in MiB; nil if /proc cannot be read.
  mutating func sample() -> (idleCores: Double, availableMB: Int)? {
    guard let stat = (try? FileSystem.read("/proc/stat")) ?? nil,
      let mem = (try? FileSystem.read("/proc/meminfo")) ?? nil
    else { return nil }
    var cores = 0
    var idle: Int64 = 0
    var total: Int64 = 0
    for line in stat.split(separator: 10) {
      guard line.starts(with: Array("cpu".utf8)) else { continue }
      if line.count > 3 && line[line.startIndex + 3] != 32 {
        cores += 1
        continue
      }
      let fields = line.split(separator: 32).dropFirst().compactMap { Int64(String(decoding: $0, as: UTF8.self)) }
      total = fields.reduce(0, +)
      idle = (fields.count > 3 ? fields[3] : 0) + (fields.count > 4 ? fields[4] : 0)
    }
    var availableKB = 0
    for line in mem.split(separator: 10) where line.starts(with: Array("MemAvailable:".utf8)) {
      availableKB = line.split(separator: 32).dropFirst().first.flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
    }
    defer {
      lastIdle = idle
      lastTotal = total
    }
    let dTotal = total - lastTotal
    let idleFraction = lastTotal == 0 || dTotal <= 0 ? 1.0 : Double(idle - lastIdle) / Double(dTotal)
    return (max(0, idleFraction) * Double(max(1, cores)), availableKB / 1024)
  }
}
