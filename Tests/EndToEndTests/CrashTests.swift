import CortexCore
import Posix
import XCTest

/// Faults injected into the real binary: kill -9 of the daemon and of workers, SIGSTOP, torn and
/// corrupt logs, a damaged hot state. A deterministic subset of scripts/fault-inject.
final class CrashTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// Every task id with its terminal events, and a check that seq strictly increases.
  func terminals(file: StaticString = #filePath, line: UInt = #line) -> [String: Int] {
    var last: Int64 = 0
    var out: [String: Int] = [:]
    for e in c.events(file: file, line: line) {
      let seq = e["seq"]?.int ?? 0
      XCTAssertGreaterThan(seq, last, "seq does not increase at \(e.encoded())", file: file, line: line)
      last = seq
      if let t = e.type, TaskState.terminalEventTypes.contains(t), let id = e.taskID { out[id, default: 0] += 1 }
    }
    return out
  }

  func testKill9OfTheDaemonLosesNoAcknowledgedTask() throws {
    try c.initialize([("max_queue", .int(100_000))])
    var acked: [String] = []
    var rng = SplitMix64(seed: 42)
    for round in 0..<3 {
      c.ok(["start", "--workers", "8"])
      guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
      // A burst of mixed tasks, submitted in batches while the daemon is killed at a random moment.
      var batch = ""
      for i in 0..<120 {
        batch += i % 3 == 0 ? #"{"command":["true"]}"# : #"{"synthetic":{"duration_ms":\#(i % 20),"tokens":5}}"#
        batch += "\n"
      }
      let file = c.scratch + "/batch-\(round).jsonl"
      try FileSystem.writeAtomically(file, Array(batch.utf8), durable: false)
      var submitters: [Int32] = []
      var outputs: [String] = []
      let devnull = try FileDescriptor.open("/dev/null", .readWrite)
      for k in 0..<4 {
        let outPath = c.scratch + "/acked-\(round)-\(k)"
        let out = try FileDescriptor.open(outPath, [.writeOnly, .create, .truncate])
        submitters.append(
          try Processes.spawn(
            [Cortex.binary, "--dir", c.root, "submit", "--from", file], environment: Environment.all(), stdin: devnull,
            stdout: out, stderr: devnull, newProcessGroup: false))
        out.close()
        outputs.append(outPath)
      }
      devnull.close()
      sleepMs(Int(rng.below(120)))
      XCTAssertTrue(Processes.signal(pid, Signal.kill))
      for s in submitters { _ = Processes.wait(s) }
      for o in outputs {
        acked += String(decoding: (try FileSystem.read(o)) ?? [], as: UTF8.self).split(separator: "\n").map(String.init)
      }
      // The workers keep their tasks; the next start re-adopts them (ReadoptTests, SPEC §14).
      c.eventually("round \(round): the killed daemon is gone") { !Processes.isAlive(pid) }
    }
    c.ok(["start", "--workers", "8"])
    XCTAssertTrue(c.events().contains { $0.type == "daemon.recovered" })
    if !acked.isEmpty {
      let w = c.run(["wait"] + acked, timeoutS: 120)
      XCTAssertEqual(
        w.code, 0, "an acknowledged task did not succeed: \(w.err.split(separator: "\n").filter { !$0.contains("succeeded") }.prefix(5))")
    }
    c.ok(["stop"])
    let ends = terminals()
    for id in acked { XCTAssertEqual(ends[id], 1, "\(id) was acknowledged; it must end exactly once") }
    XCTAssertTrue(ends.values.allSatisfy { $0 == 1 }, "a task ended twice")
    let budget = try JSON.parse(try FileSystem.read(c.paths.tokenBudget) ?? [])
    XCTAssertEqual(budget["reserved"]?.int, 0)
    XCTAssertGreaterThanOrEqual(budget["available"]?.int ?? -1, 0)
  }

  /// One process per task, as a shell loop submits (`submit -p -- CMD`, the path tuned for speed:
  /// the answer goes out before the task's spec.json is written): the daemon is killed with
  /// SIGKILL as soon as the last acknowledgement is read. Every acknowledged task is in the log
  /// after the restart, and runs and ends exactly once.
  func testKill9RightAfterAPerProcessAckLosesNoTask() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    var acked: [String] = []
    for i in 0..<12 { acked.append(c.ok(["submit", "-p", "--", "sh", "-c", "echo \(i)"]).out.trimmed) }
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the killed daemon is gone") { !Processes.isAlive(pid) }
    XCTAssertEqual(Set(acked).count, 12, "\(acked)")
    let submitted = Set(c.events().filter { $0.type == "task.submitted" }.compactMap(\.taskID))
    for id in acked { XCTAssertTrue(submitted.contains(id), "\(id) was acknowledged but is not in the log") }
    c.ok(["start", "--workers", "2"])
    let w = c.run(["wait"] + acked, timeoutS: 60)
    XCTAssertEqual(w.code, 0, w.err)
    for (i, id) in acked.enumerated() { XCTAssertEqual(c.ok(["log", id]).out, "\(i)\n", id) }
    c.ok(["stop"])
    let ends = terminals()
    for id in acked { XCTAssertEqual(ends[id], 1, "\(id) was acknowledged; it must end exactly once") }
  }

  /// After a kill -9 of the daemon, doctor said "2 workers keep their tasks" when one of the two
  /// was idle: it counts the workers that hold a task (the hot state's slots, by pid).
  func testDoctorAfterAKill9CountsTheWorkersThatHoldATask() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    let id = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    // The hot state (what doctor reads of a dead daemon) shows it running.
    c.eventually("\(id) runs") { (try? JSON.parse(Array(c.run(["--json", "status"]).out.utf8)))?["tasks"]?["running"]?.int == 1 }
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the killed daemon is gone") { !Processes.isAlive(pid) }
    let doctor = c.run(["doctor"]).out
    XCTAssertTrue(doctor.contains("no daemon running"), "killed \(pid): \(doctor)")
    XCTAssertTrue(
      doctor.contains("2 workers wait for the next daemon to re-adopt them (until orphan_timeout_s); 1 of them holds a task"), doctor)
    c.ok(["start", "--workers", "2"])
    c.ok(["cancel", id])
    c.ok(["stop"])
  }

  func testKill9OfAWorkerRestartsItAndRetriesItsTask() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    // Attempt 1 runs until its worker is killed (a `sleep 1` could end first on a slow machine,
    // and then nothing was retried); attempt 2 succeeds at once.
    let id = c.ok(["submit", "--shell", #"if [ "$CORTEX_ATTEMPT" = 1 ]; then sleep 60; fi"#]).out.trimmed
    c.eventually("\(id) started") { c.events().contains { $0.type == "task.started" && $0.taskID == id } }
    guard let wid = c.events().last(where: { $0.type == "task.started" && $0.taskID == id })?["worker_id"]?.string,
      let slot = WorkerID.parse(wid),
      let worker = c.leftovers.first(where: {
        $0.commandLine.contains("--slot") && $0.commandLine.contains(String(slot)) && $0.commandLine.contains("worker")
      })
    else { return XCTFail("cannot find the worker of \(id)") }
    XCTAssertTrue(Processes.signal(worker.pid, Signal.kill))
    c.eventually("\(wid) restarted") { c.events().contains { $0.type == "worker.restarted" && $0["worker_id"]?.string == wid } }
    // Measured by the daemon's own clock (the log), not this test's polling under a loaded machine.
    let ev0 = c.events()
    let died = ev0.last { $0.type == "worker.exited" && $0["worker_id"]?.string == wid }?["ts"]?.string.flatMap(Timestamp.parse)
    let back = ev0.last { $0.type == "worker.restarted" && $0["worker_id"]?.string == wid }?["ts"]?.string.flatMap(Timestamp.parse)
    let diedMs = try XCTUnwrap(died, "worker.exited for \(wid) with a timestamp")
    let backMs = try XCTUnwrap(back, "worker.restarted for \(wid) with a timestamp")
    XCTAssertLessThanOrEqual(backMs - diedMs, 1000, "a crashed worker is back within a second")
    let r = c.run(["wait", id], timeoutS: 30)
    XCTAssertEqual(r.code, 0, r.err)
    let ev = c.events()
    XCTAssertTrue(ev.contains { $0.type == "worker.exited" && $0["reason"]?.string == "crashed" })
    XCTAssertTrue(ev.contains { $0.type == "task.retrying" && $0.taskID == id && $0["reason"]?.string == "worker_exited" })
    XCTAssertFalse(c.leftovers.contains(where: \.isZombie))
  }

  func testAStoppedWorkerIsFoundByItsMissedHeartbeats() throws {
    try c.initialize([("heartbeat_interval_s", .double(0.2))])
    c.ok(["start", "--workers", "2"])
    guard
      let w1 = c.leftovers.first(where: {
        $0.commandLine.contains("worker") && $0.commandLine.contains("1") && $0.commandLine.contains("--slot")
      })
    else { return XCTFail("no worker-001") }
    XCTAssertTrue(Processes.signal(w1.pid, Signal.stop))
    c.eventually("worker-001 unhealthy, killed and restarted") {
      let ev = c.events()
      return ev.contains {
        $0.type == "worker.unhealthy" && $0["worker_id"]?.string == "worker-001" && $0["reason"]?.string == "heartbeat_missed"
      }
        && ev.contains { $0.type == "worker.restarted" && $0["worker_id"]?.string == "worker-001" }
    }
    XCTAssertNil(Processes.info(w1.pid).flatMap { $0.isZombie ? nil : $0 }, "the stopped worker was not killed")
  }

  func logWithTasks() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    c.ok(["submit", "--wait", "--from", "-"], input: String(repeating: #"{"synthetic":{"duration_ms":1}}"# + "\n", count: 5))
    c.ok(["stop"])
  }

  var segment: String { c.paths.events + "/" + LogSegments.name(1) }

  func testATornLastLineIsCutAtStartAtManyOffsets() throws {
    try logWithTasks()
    let original = try FileSystem.read(segment) ?? []
    let lastStart = original.dropLast().lastIndex(of: 10)! + 1
    let lastLength = original.count - lastStart
    for cut in [1, lastLength / 2, lastLength - 1] {
      var bytes = try FileSystem.read(segment) ?? []
      let thisLast = bytes.dropLast().lastIndex(of: 10)! + 1
      bytes = Array(bytes[..<(thisLast + cut)])
      try FileSystem.writeAtomically(segment, bytes)
      c.ok(["start", "--workers", "1"])
      let ev = c.events()
      XCTAssertTrue(ev.contains { $0.type == "log.truncated" && $0["bytes"]?.int == Int64(cut) }, "cut \(cut): no log.truncated")
      c.ok(["stop"])
      _ = terminals()
    }
  }

  func testCorruptionBeforeTheLastLineStopsTheStartUntilDoctorRepairs() throws {
    try logWithTasks()
    var bytes = try FileSystem.read(segment) ?? []
    let third = bytes.indices.filter { bytes[$0] == 10 }[2] + 5
    bytes[third] = UInt8(ascii: "#")
    try FileSystem.writeAtomically(segment, bytes)
    let start = c.run(["start"])
    XCTAssertNotEqual(start.code, 0)
    XCTAssertTrue(start.err.contains("cortex doctor --repair"), start.err)
    XCTAssertEqual(try FileSystem.read(segment), bytes, "a refused start changed the log")
    let check = c.run(["doctor"])
    XCTAssertEqual(check.code, 1)
    XCTAssertTrue(
      check.out.split(separator: "\n").contains { $0.hasPrefix("FAIL") && $0.contains("event log:") && $0.contains("byte") }, check.out)
    let fix = c.run(["doctor", "--repair"])
    XCTAssertEqual(fix.code, 0, fix.out + fix.err)
    let aside = try FileSystem.list(c.paths.events).filter { $0.contains(".bad-") }
    XCTAssertEqual(aside.count, 1, "the bad tail is kept aside, not deleted")
    c.ok(["start", "--workers", "1"])
    c.ok(["stop"])
    _ = terminals()
    XCTAssertEqual(c.run(["doctor"]).code, 0)
  }

  /// kill -9 of the daemon once its hot state has caught up with the log (the next start compares
  /// the two; it was a fixed 300 ms, a guess), leaving no snapshot.
  func crash(file: StaticString = #filePath, line: UInt = #line) throws {
    let logged = UInt64(c.events().last?["seq"]?.int ?? 0)
    c.eventually("hot-state.mmap has seen the log's last seq \(logged)", file: file, line: line) {
      guard let bytes = (try? FileSystem.read(c.paths.hotState)) ?? nil,
        case .success(let hot) = bytes.withUnsafeBytes({ HotState.read($0) })
      else { return false }  // a write in progress: its checksum does not match yet
      return hot.lastSeq >= logged
    }
    let pid = try XCTUnwrap(c.daemonPID, file: file, line: line)
    XCTAssertTrue(Processes.signal(pid, Signal.kill), file: file, line: line)
    c.eventually("the daemon is gone", file: file, line: line) { !Processes.isAlive(pid) }
    c.eventually("its worker is gone", file: file, line: line) { c.leftovers.filter { !$0.isZombie }.isEmpty }
  }

  /// The tasks whose `task.submitted` is in segment `i`.
  func submittedIn(_ i: Int) throws -> [String] {
    let bytes = try FileSystem.read(c.paths.events + "/" + LogSegments.name(i)) ?? []
    return try bytes.split(separator: 10).compactMap { l in
      let v = try JSON.parse(l)
      return v.type == "task.submitted" ? v.taskID : nil
    }
  }

  /// A log segment removed by hand (SPEC §13), with no snapshot covering it. The newest: the start
  /// says which events and task numbers are gone, and gives none of them out again (before, it
  /// said nothing and reused both). One in the middle: the start refuses naming it, doctor names
  /// the missing seqs and what they held, and after `--repair` the start says what is missing.
  func testASegmentRemovedByHandIsNamedAndNothingOfItIsReused() throws {
    try c.initialize([("log_segment_bytes", .int(4096)), ("snapshot_interval_s", .int(3600)), ("orphan_timeout_s", .double(0.05))])
    c.ok(["start", "--workers", "1"])
    c.ok(["pause"])
    var ids: [String] = []
    for _ in 0..<6 { ids.append(c.ok(["submit", "-p", "--", "true"]).out.trimmed) }
    // The segment before the newest is sealed: the start after the newest is removed must not
    // write to it (it did, and the next start refused the log: "changed after it was sealed").
    let written = LogSegments.indexes(try FileSystem.list(c.paths.events))
    XCTAssertGreaterThanOrEqual(written.count, 2, "the log has one segment: \(written)")
    c.eventually("\(LogSegments.name(written[written.count - 2])) is sealed") {
      ((try? FileSystem.read(c.paths.manifest)) ?? nil).flatMap { try? Manifest.decode($0) }?.segment(written[written.count - 2]) != nil
    }
    try crash()
    XCTAssertFalse(FileSystem.exists(c.paths.taskQueue), "no snapshot covers the log")
    let newest = try XCTUnwrap(LogSegments.indexes(try FileSystem.list(c.paths.events)).last)
    let lostAtTheEnd = try submittedIn(newest)
    XCTAssertFalse(lostAtTheEnd.isEmpty)
    try FileSystem.remove(c.paths.events + "/" + LogSegments.name(newest))
    let started = c.ok(["start", "--workers", "1"])
    XCTAssertTrue(started.err.contains("cortex: warning: hot-state.mmap saw seq"), "start says nothing: \(started.err)")
    let behind = try XCTUnwrap(c.events().last { $0["reason"]?.string == "log_behind" }, "no warning that the log lost its end")
    let said = behind["detail"]?.string ?? ""
    XCTAssertTrue(said.contains(lostAtTheEnd.last!) && said.contains("are missing"), said)
    let fresh = c.ok(["submit", "-p", "--", "true"]).out.trimmed
    XCTAssertGreaterThan(TaskID.parse(fresh)!, TaskID.parse(ids.last!)!, "a task number was given out twice")
    let sealedBefore = try XCTUnwrap(try Manifest.decode(try FileSystem.read(c.paths.manifest) ?? []).segment(written[written.count - 2]))
    XCTAssertEqual(FileSystem.size(c.paths.events + "/" + sealedBefore.name), sealedBefore.bytes, "a sealed segment was written to")
    ids += [fresh]
    for _ in 0..<6 { ids.append(c.ok(["submit", "-p", "--", "true"]).out.trimmed) }
    let seqs = c.events().compactMap { $0["seq"]?.int }
    XCTAssertEqual(Set(seqs).count, seqs.count, "a seq was used twice")

    // A sealed segment in the middle.
    let segments = LogSegments.indexes(try FileSystem.list(c.paths.events))
    let middle = segments[segments.count - 3]
    c.eventually("\(LogSegments.name(middle)) is sealed") {
      ((try? FileSystem.read(c.paths.manifest)) ?? nil).flatMap { try? Manifest.decode($0) }?.segment(middle) != nil
    }
    try crash()
    let sealed = try XCTUnwrap(try Manifest.decode(try FileSystem.read(c.paths.manifest) ?? []).segment(middle))
    let lostInTheMiddle = try submittedIn(middle)
    try FileSystem.remove(c.paths.events + "/" + sealed.name)
    let refused = c.run(["start", "--workers", "1"])
    XCTAssertEqual(refused.code, 1)
    XCTAssertTrue(
      refused.err.contains("events/\(sealed.name) (seq \(sealed.firstSeq)–\(sealed.lastSeq)) is listed in manifest.json but missing")
        && refused.err.contains("no snapshot covers those events") && refused.err.contains("cortex doctor"), refused.err)
    let found = c.run(["doctor"])
    XCTAssertEqual(found.code, 1)
    XCTAssertTrue(found.out.contains("seq \(sealed.firstSeq)–\(sealed.lastSeq) are missing before"), found.out)
    XCTAssertTrue(found.out.contains("no snapshot covers them"), found.out)
    c.ok(["doctor", "--repair"])
    let again = c.ok(["start", "--workers", "1"])
    XCTAssertTrue(again.err.contains("cortex: warning: events/") && again.err.contains("are missing"), again.err)
    let gap = try XCTUnwrap(c.events().last { $0["reason"]?.string == "log_gap" }, "no warning about the missing events")
    XCTAssertEqual(gap["first_missing"]?.int, Int64(sealed.firstSeq))
    XCTAssertEqual(gap["last_missing"]?.int, Int64(sealed.lastSeq))
    c.ok(["resume"])
    let kept = ids.filter { !lostAtTheEnd.contains($0) && !lostInTheMiddle.contains($0) }
    XCTAssertGreaterThan(kept.count, 4)
    c.ok(["wait"] + kept, timeoutS: 60)
    let later = c.ok(["submit", "-p", "--", "true"]).out.trimmed
    XCTAssertGreaterThan(TaskID.parse(later)!, TaskID.parse(ids.last!)!)
  }

  func testADamagedHotStateNeverCrashesStatusAndIsSetAsideAtStart() throws {
    try logWithTasks()
    var bytes = try FileSystem.read(c.paths.hotState) ?? []
    bytes[HotState.headerSize + 8] ^= 0xFF  // worker-001's pid: checksummed
    try FileSystem.writeAtomically(c.paths.hotState, bytes)
    var s = c.run(["status"])
    XCTAssertEqual(s.code, 1)
    XCTAssertTrue(s.err.contains("CRC32C"), s.err)
    for size in [0, 10, 300, 5000] {
      try FileSystem.writeAtomically(c.paths.hotState, Array(bytes.prefix(size)))
      s = c.run(["status"])
      XCTAssertEqual(s.code, 1, "size \(size): \(s.err)")
      XCTAssertFalse(s.err.isEmpty)
    }
    try FileSystem.writeAtomically(c.paths.hotState, Array(repeating: 0x41, count: HotState.fileSize))
    XCTAssertEqual(c.run(["status"]).code, 1)
    c.ok(["start", "--workers", "1"])
    XCTAssertTrue(try FileSystem.list(c.root).contains { $0.hasPrefix("hot-state.mmap.bad-") })
    XCTAssertTrue(c.events().contains { $0.type == "daemon.warning" && $0["reason"]?.string == "hot_state_invalid" })
    XCTAssertEqual(c.run(["status"]).code, 0)
  }

  /// Found by a chaos run (submits, restarts and kill -9 at once): a start after a kill -9 warned
  /// `log_behind` ("events are missing … tasks … are unknown to this daemon") with nothing lost:
  /// the hot state had been written with the seq of events still buffered for the loop's commit.
  /// `CORTEX_FAULT=hot.buffered` kills the daemon right after such a write.
  func testAKill9RightAfterAHotStateWriteLeavesItNoAheadOfTheLog() throws {
    try c.initialize()
    c.environment = ["CORTEX_FAULT=hot.buffered"]
    let started = c.run(["start", "--workers", "2"])
    c.environment = []
    var acked: [String] = []
    if started.code == 0 {
      guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
      let deadline = Clock.monotonicMs() + 60_000
      while Processes.isAlive(pid) && Clock.monotonicMs() < deadline {
        let r = c.run(["submit", "-p", "--synthetic", "1"])
        if r.code == 0 { acked.append(r.out.trimmed) }
      }
      XCTAssertFalse(Processes.isAlive(pid), "the daemon never wrote the hot state with events buffered")
    } else {
      // The start's own events can be buffered at a hot-state write (the workers' readiness):
      // the same crash, before any submit (seen once in CI). What follows checks it alike.
      XCTAssertTrue(started.err.contains("CORTEX_FAULT: exiting at hot.buffered"), started.err)
    }
    let said = String(decoding: (try? FileSystem.read(c.paths.daemonLog) ?? []) ?? [], as: UTF8.self)
    XCTAssertTrue(said.contains("CORTEX_FAULT: exiting at hot.buffered"), String(said.suffix(300)))

    c.ok(["start", "--workers", "2"])
    let warnings = c.events().filter { $0.type == "daemon.warning" }
    XCTAssertFalse(
      warnings.contains { $0["reason"]?.string == "log_behind" },
      "the hot state was ahead of the log: \(warnings.compactMap { $0["detail"]?.string })")
    // Every acknowledged task is there (the fault may come before the first answer).
    if !acked.isEmpty { c.ok(["wait"] + acked, timeoutS: 60) }
  }
}
