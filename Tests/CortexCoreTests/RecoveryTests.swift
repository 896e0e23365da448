import CortexCore
import XCTest

/// Recovery as a function: snapshot + replayed log → the same state; and the hot-state file.
final class RecoveryTests: XCTestCase {
  /// A scheduler with finished, failed, running, queued and blocked tasks, and its log as JSONL values.
  func busySim() -> (Sim, [JSON]) {
    var sim = Sim(workers: 2)
    let a = sim.submitOne(#"{"command":["true"],"token_budget":100}"#)
    let b = sim.submitOne(#"{"command":["false"]}"#)
    sim.finish(a, tokens: 60)
    sim.finish(b, exit: 1)
    let c = sim.submitOne(#"{"command":["sleep","9"],"token_budget":50,"priority":"high"}"#)
    _ = sim.submitOne(#"{"command":["sleep","9"]}"#)
    _ = sim.submitOne(#"{"command":["true"],"priority":"low"}"#)
    _ = sim.submitOne(#"{"command":["true"],"depends_on":["\#(TaskID.format(c))"]}"#)
    sim.feed(.worker(sim.worker(of: c)!, .started(task: c, pid: 4242, atMs: sim.now)))
    var lines: [JSON] = []
    for (i, e) in sim.log.enumerated() {
      var w = JSONWriter()
      e.encode(seq: UInt64(i + 1), tsMs: sim.now, into: &w)
      lines.append(try! JSON.parse(w.bytes))
    }
    return (sim, lines)
  }

  func testReplayRebuildsTheStateAndRequeuesWhatWasRunning() {
    let (sim, lines) = busySim()
    var r = Scheduler(config: sim.s.config)
    for l in lines { r.replay(l) }
    XCTAssertEqual(r.nextTaskNumber, sim.s.nextTaskNumber)
    XCTAssertEqual(r.tokensUsed, 60)
    for n in 1..<sim.s.nextTaskNumber { XCTAssertEqual(r.state(of: n), sim.s.state(of: n), TaskID.format(n)) }
    var out: [Action] = []
    let settled = r.settleAfterRecovery(now: sim.now, into: &out)
    XCTAssertEqual(settled.requeued, 2, "the two tasks on workers go back to the queue")
    let retried = out.compactMap { if case .log(let e) = $0, e.type == "task.retrying" { return e.reason } else { return nil } }
    XCTAssertEqual(retried, ["daemon_restarted", "daemon_restarted"])
    XCTAssertTrue(
      out.contains { if case .killGroup(4242, true) = $0 { return true } else { return false } }, "the orphaned group is killed")
    XCTAssertEqual(r.tokensReserved, 0)
    XCTAssertEqual(r.state(of: 6), .queued)
  }

  /// A snapshot from before keys were forgotten lists a finished task's key without its end
  /// time: it takes the snapshot's time, so `task_days` forgets it a retention period after the
  /// upgrade, and `cortex clean` (no age) at once; an unfinished task's key is never forgotten.
  func testKeysOfAnOldSnapshotEndWhenItWasWrittenAndAreForgottenByTheCleanRule() throws {
    let written: Int64 = 1_800_000_000_000
    let snap = try JSON.parse(
      #"{"seq":9,"next_task":3,"written":"\#(Timestamp.rfc3339(ms: written))","finished":{"succeeded":"1"},"#
        + #""tasks":[{"id":"task-000002","state":"queued","spec":{"command":["true"],"idempotency_key":"live"}}],"#
        + #""idempotency":{"old":"task-000001","live":"task-000002"}}"#)
    var s = Scheduler(config: Config())
    _ = try s.restore(snapshot: snap)
    XCTAssertEqual(s.idempotency["old"], 1)
    XCTAssertEqual(
      s.queueSnapshot(seq: 9, nowMs: written)["idempotency"]?.encoded(), #"{"old":["task-000001",\#(written)],"live":"task-000002"}"#)
    var out: [Action] = []
    let day: Int64 = 86_400_000
    XCTAssertEqual(s.forgetKeys(.init(olderThanMs: day), reason: "task_days", now: written + day - 1, into: &out), 0)
    XCTAssertEqual(s.forgetKeys(.init(state: .failed), reason: "requested", now: written, into: &out), 0)
    XCTAssertTrue(out.isEmpty, "nothing forgotten, nothing logged")
    XCTAssertEqual(s.forgetKeys(.init(olderThanMs: day), reason: "task_days", now: written + day, into: &out), 1)
    XCTAssertNil(s.idempotency["old"])
    XCTAssertEqual(s.forgetKeys(.init(), reason: "requested", now: written + day, into: &out), 0, "an unfinished task keeps its key")
    XCTAssertEqual(s.idempotency["live"], 2)
    guard case .log(let e) = out.first else { return XCTFail("no event: \(out)") }
    XCTAssertEqual(e.type, "idempotency.forgotten")
    XCTAssertEqual(e.fields.first { $0.0 == "ended_by_ms" }?.1.int, written)
  }

  func testSnapshotPlusTailEqualsFullReplay() throws {
    let (sim, lines) = busySim()
    for cut in [0, 5, lines.count / 2, lines.count - 1, lines.count] {
      var partial = Scheduler(config: sim.s.config)
      for l in lines.prefix(cut) { partial.replay(l) }
      let snap = partial.queueSnapshot(seq: UInt64(cut), nowMs: sim.now)
      // The daemon hands the snapshot thread a view without the finished records; it writes the same.
      XCTAssertEqual(partial.snapshotView().queueSnapshot(seq: UInt64(cut), nowMs: sim.now).encoded(), snap.encoded(), "cut \(cut)")
      XCTAssertEqual(
        partial.snapshotView().budgetSnapshot(seq: 1, nowMs: sim.now).encoded(), partial.budgetSnapshot(seq: 1, nowMs: sim.now).encoded())
      // The snapshot goes through its file form.
      var r = Scheduler(config: sim.s.config)
      let seq = try r.restore(snapshot: try JSON.parse(snap.encoded()))
      XCTAssertEqual(seq, UInt64(cut))
      for l in lines where UInt64(l["seq"]!.int!) > seq { r.replay(l) }
      for n in 1..<sim.s.nextTaskNumber { XCTAssertEqual(r.state(of: n), sim.s.state(of: n), "cut \(cut): \(TaskID.format(n))") }
      XCTAssertEqual(r.tokensUsed, sim.s.tokensUsed, "cut \(cut)")
      XCTAssertEqual(r.nextTaskNumber, sim.s.nextTaskNumber, "cut \(cut)")
    }
  }

  func testFinishedStatesStoreOneByteEachAndReadBack() {
    var f = FinishedStates()
    XCTAssertNil(f[5])
    f[5] = .failed
    f[2] = .succeeded
    f[100_000] = .timedOut
    XCTAssertEqual(f[5], .failed)
    XCTAssertEqual(f[2], .succeeded)
    XCTAssertNil(f[3])
    XCTAssertNil(f[-1])
    XCTAssertEqual(f.all.map(\.0), [2, 5, 100_000])
    f[5] = nil
    XCTAssertNil(f[5])
  }

  func testFinishedStatesAreSnapshottedAsRangesThatReadBack() throws {
    var f = FinishedStates()
    for n in 1...5000 { f[n] = .succeeded }
    f[17] = .failed
    f[5002] = .cancelled
    XCTAssertEqual(
      f.runs.map { "\($0.first)-\($0.last) \($0.state.rawValue)" },
      ["1-16 succeeded", "17-17 failed", "18-5000 succeeded", "5002-5002 cancelled"])
    XCTAssertEqual(FinishedStates.ranges(.string("1-16,18-5000,5002")), [1...16, 18...5000, 5002...5002])
    XCTAssertEqual(FinishedStates.ranges(.string("")), [])
    XCTAssertEqual(FinishedStates.ranges(.array([.int(3), .int(9)])), [3...3, 9...9], "the older one-number-per-task form")
    for bad in ["5-2", "a", "1,,2", "-3", "1-2-3", "0", "7-"] {
      XCTAssertNil(FinishedStates.ranges(.string(bad)), bad)
    }

    // Through a snapshot: 5,000 finished tasks take a few runs, not 5,000 numbers.
    // (Loaded from the older one-number-per-task form, then written in the new one.)
    var old: [String: [JSON]] = [:]
    for (n, st) in f.all { old[st.rawValue, default: []].append(.int(Int64(n))) }
    var s = Scheduler(config: Config())
    _ = try s.restore(
      snapshot: .object([
        ("seq", .int(1)), ("next_task", .int(5003)), ("tasks", .array([])), ("finished", .object(old.map { ($0.key, .array($0.value)) })),
      ]))
    let snap = try JSON.parse(s.queueSnapshot(seq: 1, nowMs: 0).encoded())
    XCTAssertEqual(snap["finished"]?["succeeded"]?.string, "1-16,18-5000")
    var r = Scheduler(config: Config())
    _ = try r.restore(snapshot: snap)
    for n in [1, 16, 17, 18, 5000, 5001, 5002] { XCTAssertEqual(r.state(of: n), f[n], "\(n)") }
    XCTAssertEqual(r.counts[.succeeded], 4999)

    var bad = Scheduler(config: Config())
    let damaged = JSON.object([
      ("seq", .int(1)), ("next_task", .int(3)), ("tasks", .array([])), ("finished", .object([("failed", .string("2-1"))])),
    ])
    XCTAssertThrowsError(try bad.restore(snapshot: damaged))
  }

  func testRestoreRefusesASnapshotWithoutItsFields() {
    var r = Scheduler(config: Config())
    XCTAssertThrowsError(try r.restore(snapshot: .object([("seq", .int(3))])))
  }

  // MARK: hot state

  func withHotState(_ s: Scheduler, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
    var bytes = [UInt8](repeating: 0, count: HotState.fileSize)
    bytes.withUnsafeMutableBytes { buf in
      HotState.write(s, to: buf.baseAddress!, lastSeq: 77, pid: 123, startedMs: 5, nowMs: 9)
      body(buf)
    }
  }

  /// `cortex status` copies only the header and `usedRegions` (pread): the rest of its buffer is
  /// never looked at, so garbage there reads the same as the whole file.
  func testHotStateReadsOnlyTheHeaderAndTheUsedEntries() {
    let (sim, _) = busySim()
    withHotState(sim.s) { buf in
      let file = UnsafeRawBufferPointer(buf)
      let regions = HotState.usedRegions(header: UnsafeRawBufferPointer(rebasing: file[0..<HotState.headerSize]))
      XCTAssertEqual(regions.count, 2)
      XCTAssertEqual(regions.map(\.count).reduce(0, +) % 64, 0)
      XCTAssertLessThan(regions.map(\.count).reduce(0, +), 4096)
      var partial = [UInt8](repeating: 0xA5, count: HotState.fileSize)
      for r in [0..<HotState.headerSize] + regions { partial.replaceSubrange(r, with: file[r]) }
      guard case .success(let whole) = HotState.read(file),
        case .success(let part) = partial.withUnsafeBytes({ HotState.read($0) })
      else { return XCTFail("did not read back") }
      XCTAssertEqual(part.workers.map(\.pid), whole.workers.map(\.pid))
      XCTAssertEqual(part.tasks.map(\.number), whole.tasks.map(\.number))
      XCTAssertEqual(part.counts, whole.counts)
      XCTAssertEqual(part.lastSeq, whole.lastSeq)
      // A damaged count still names ranges inside the file.
      var header = Array(file[0..<HotState.headerSize])
      for i in 92..<100 { header[i] = 0xFF }
      let wild = header.withUnsafeBytes { HotState.usedRegions(header: $0) }
      XCTAssertTrue(wild.allSatisfy { $0.upperBound <= HotState.fileSize })
    }
  }

  func testHotStateRoundTrip() {
    let (sim, _) = busySim()
    withHotState(sim.s) { buf in
      guard case .success(let v) = HotState.read(UnsafeRawBufferPointer(buf)) else { return XCTFail("did not read back") }
      XCTAssertEqual(v.lastSeq, 77)
      XCTAssertEqual(v.pid, 123)
      XCTAssertEqual(v.counts[.succeeded], 1)
      XCTAssertEqual(v.counts[.failed], 1)
      XCTAssertEqual(v.counts[.running], 1)
      XCTAssertEqual(v.tokensUsed, 60)
      XCTAssertEqual(v.tokensTotal, v.tokensReserved + v.tokensUsed + v.tokensAvailable)
      XCTAssertEqual(v.workers.count, 2)
      XCTAssertEqual(v.tasks.map(\.number), v.tasks.map(\.number).sorted())
      XCTAssertTrue(v.tasks.contains { $0.pid == 4242 && $0.state == .running })
    }
  }

  /// More tasks queued than the table holds: the tasks on workers are always in it (what
  /// `cortex top` shows), the table is full, and the header still counts every active task.
  func testHotStateWithMoreTasksThanItsTableShowsTheRunningOnes() {
    var sim = Sim(workers: 3) { $0.maxQueue = 10_000 }
    let n = HotState.taskCapacity + 500
    let r = sim.submit(Array(repeating: #"{"command":["sleep","9"]}"#, count: n))
    XCTAssertEqual(r["ids"]?.array?.count, n)
    let onWorkers = sim.s.workers.compactMap(\.task)
    XCTAssertEqual(onWorkers.count, 3)
    withHotState(sim.s) { buf in
      guard case .success(let v) = HotState.read(UnsafeRawBufferPointer(buf)) else { return XCTFail("did not read back") }
      XCTAssertEqual(v.tasks.count, HotState.taskCapacity)
      XCTAssertEqual(v.activeTotal, n)
      XCTAssertEqual(Set(v.tasks.map(\.number)).count, HotState.taskCapacity, "no task twice")
      for t in onWorkers { XCTAssertTrue(v.tasks.contains { $0.number == t && $0.worker != nil }, "task \(t) on a worker is in the table") }
    }
  }

  func testHotStateRejectsEveryKindOfDamageWithoutCrashing() {
    let (sim, _) = busySim()
    withHotState(sim.s) { buf in
      func read() -> HotState.ReadError? {
        if case .failure(let e) = HotState.read(UnsafeRawBufferPointer(buf)) { return e }
        return nil
      }
      XCTAssertNil(read())
      buf[HotState.headerSize + 3] ^= 0x40  // a worker slot byte
      XCTAssertEqual(read(), .checksum)
      buf[HotState.headerSize + 3] ^= 0x40
      buf[0] = UInt8(ascii: "X")
      XCTAssertEqual(read(), .badMagic)
    }
    // Truncated and garbage files of many sizes: an error, never a trap.
    var rng = SplitMix64(seed: 3)
    for size in [0, 1, 7, 8, 63, 64, 255, 256, 257, 4096, HotState.fileSize - 1] {
      var garbage = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
      if size >= 8 { garbage.replaceSubrange(0..<8, with: HotState.magic) }
      let r = garbage.withUnsafeBytes { HotState.read($0) }
      if case .success = r { XCTFail("accepted \(size) bytes of garbage") }
    }
  }
}
