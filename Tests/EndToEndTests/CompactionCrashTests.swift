import CortexCore
import Posix
import XCTest

/// Compaction is crash-safe (SPEC §13): the daemon is made to `_exit` at every step of writing a
/// snapshot, sealing a segment, writing the manifest, removing or archiving a segment and
/// cleaning task files (`CORTEX_FAULT`, as a kill -9 at that moment), then started again: it
/// starts, and every acknowledged task has exactly one terminal event among the retained log and
/// the snapshot.
final class CompactionCrashTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  static let steps = [
    "snapshot.records", "snapshot.temp", "snapshot.rotated", "snapshot.renamed", "seal.checked", "manifest.temp",
    "manifest.renamed", "removal.listed", "removal.unlinked", "removal.compressed", "removal.reported", "removal.confirmed",
    "clean.partial",
  ]

  func config(archive: Bool) throws {
    let path = c.paths.config
    guard var cfg = try FileSystem.read(path).flatMap({ try? JSON.parse($0) })?.object else { throw HarnessError(message: "no config") }
    cfg.removeAll { $0.0 == "retention" }
    cfg.append(
      (
        "retention",
        .object([
          ("log_days", .int(0)), ("log_bytes", .int(32 << 10)), ("task_days", .double(0.00001)), ("archive", .bool(archive)),
          ("gzip", .bool(archive)),
        ])
      ))
    try FileSystem.writeAtomically(path, JSON.object(cfg).encodedBytes())
  }

  func testACrashAtEveryCompactionStepLosesNothingAcknowledged() throws {
    try c.initialize([
      ("max_queue", .int(100_000)), ("snapshot_interval_s", .double(0.2)), ("log_segment_bytes", .int(8 << 10)),
      ("orphan_timeout_s", .double(0.05)),  // no re-adoption: a crashed daemon's workers exit at once
    ])
    var acked: [String] = []
    let batch = c.scratch + "/batch.jsonl"
    // Command tasks, so there are task files to clean; some synthetic ones for volume.
    var lines = ""
    for i in 0..<40 { lines += i % 4 == 0 ? #"{"command":["true"]}"# + "\n" : #"{"synthetic":{"duration_ms":0}}"# + "\n" }
    try FileSystem.writeAtomically(batch, Array(lines.utf8), durable: false)
    // Some history first, so even a crash while the daemon starts has acknowledged tasks behind it.
    try config(archive: false)
    c.ok(["start", "--workers", "4"])
    for _ in 0..<3 { acked += c.ok(["submit", "--from", batch]).out.split(separator: "\n").map(String.init) }
    c.ok(["wait"] + acked, timeoutS: 120)
    c.ok(["stop"])
    // Each step twice where the path differs: removal by unlink, and by archive + gzip.
    let runs = Self.steps.map { ($0, $0 == "removal.compressed") } + [("removal.listed", true), ("removal.unlinked", true)]
    for (step, archive) in runs {
      try config(archive: archive)
      c.environment = ["CORTEX_FAULT=\(step)"]
      let started = c.run(["start", "--workers", "4"])
      c.environment = []
      // The step may come while it starts (a segment to seal, a manifest to write).
      var died = started.code != 0
      XCTAssertTrue(started.code == 0 || started.err.contains("CORTEX_FAULT: exiting at \(step)"), "\(step): \(started.err)")
      let pid = c.daemonPID
      // Work until the daemon dies at the step.
      let deadline = Clock.monotonicMs() + 60_000
      while !died && Clock.monotonicMs() < deadline {
        let r = c.run(["submit", "--from", batch])
        if r.code == 0 { acked += r.out.split(separator: "\n").map(String.init) }
        if let pid, !Processes.isAlive(pid) {
          died = true
          break
        }
      }
      XCTAssertTrue(died, "the daemon never reached \(step)")
      let said = String(decoding: (try? FileSystem.read(c.paths.daemonLog) ?? []) ?? [], as: UTF8.self)
      XCTAssertTrue(said.contains("CORTEX_FAULT: exiting at \(step)"), "\(step): \(said.suffix(300))")
      c.eventually("\(step): the workers of the crashed daemon exit") { c.leftovers.filter { !$0.isZombie }.isEmpty }

      // It starts, and every acknowledged task ends exactly once.
      c.ok(["start", "--workers", "4"])
      c.ok(["wait"] + Array(acked.suffix(200)), timeoutS: 120)
      c.ok(["stop"])
      let d = c.run(["doctor"])
      XCTAssertEqual(d.code, 0, "\(step): \(d.out)")
      try checkExactlyOnce(acked, after: step)
    }
    // The removals a crash interrupted were finished and logged by the next start.
    XCTAssertTrue(c.events().contains { $0.type == "log.segment_removed" && $0["resumed"]?.bool == true })
  }

  func checkExactlyOnce(_ acked: [String], after step: String) throws {
    var inLog: [String: Int] = [:]
    for e in c.events() {
      if let t = e.type, TaskState.terminalEventTypes.contains(t), let id = e.taskID { inLog[id, default: 0] += 1 }
    }
    let q = try JSON.parse(try FileSystem.read(c.paths.taskQueue) ?? [])
    var finished: Set<Int> = []
    for (_, v) in q["finished"]?.object ?? [] { for r in FinishedStates.ranges(v) ?? [] { finished.formUnion(r) } }
    for id in acked {
      let n = inLog[id] ?? 0
      XCTAssertLessThanOrEqual(n, 1, "after \(step): \(id) has \(n) terminal events")
      if n == 0 { XCTAssertTrue(finished.contains(TaskID.parse(id)!), "after \(step): \(id) ended in neither the log nor the snapshot") }
    }
  }
}
