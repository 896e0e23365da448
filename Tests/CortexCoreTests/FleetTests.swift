import CortexCore
import XCTest

/// Groups, pause/resume, retry, edit and rate limits in the pure scheduler (SPEC §15).
final class FleetTests: XCTestCase {
  func groups(_ c: inout Config, _ list: [(String, GroupConfig)]) { c.groups = list }

  func running(_ sim: Sim, group: String) -> Int {
    sim.s.tasks.values.filter { ($0.state == .assigned || $0.state == .running) && sim.s.groupName($0.spec) == group }.count
  }

  func control(_ sim: inout Sim, _ cmd: FleetCommand) -> JSON {
    let c = sim.nextClient
    sim.nextClient += 1
    sim.feed(.control(c, cmd))
    return sim.replies.last { $0.0 == c }!.1
  }

  func testAFullGroupDoesNotBlockAnotherGroup() {
    var sim = Sim(workers: 4) { self.groups(&$0, [("a", GroupConfig(parallel: 1))]) }
    let a1 = sim.submitOne(#"{"command":["true"],"group":"a"}"#)
    let a2 = sim.submitOne(#"{"command":["true"],"group":"a","priority":"high"}"#)
    let b1 = sim.submitOne(#"{"command":["true"],"group":"b"}"#)
    let d1 = sim.submitOne(#"{"command":["true"]}"#)
    XCTAssertEqual(sim.runOrder, [a1, b1, d1], "a2 waits for a's one slot; b and default go past it")
    let w = sim.events("task.waiting", task: a2)
    XCTAssertEqual(w.map(\.reason), ["group_full"])
    XCTAssertEqual(running(sim, group: "a"), 1)
    sim.finish(a1)
    XCTAssertEqual(sim.runOrder.last, a2)
    sim.checkInvariants()
  }

  func testPrioritiesOrderTasksAcrossGroups() {
    var sim = Sim(workers: 1)
    let x = sim.submitOne(#"{"command":["sleep","1"],"group":"x"}"#)
    let low = sim.submitOne(#"{"command":["true"],"group":"x","priority":"low"}"#)
    let med = sim.submitOne(#"{"command":["true"],"group":"y"}"#)
    let crit = sim.submitOne(#"{"command":["true"],"group":"z","priority":"critical"}"#)
    let med2 = sim.submitOne(#"{"command":["true"],"group":"x"}"#)
    sim.finish(x)
    sim.finish(crit)
    sim.finish(med)
    sim.finish(med2)
    XCTAssertEqual(sim.runOrder, [x, crit, med, med2, low], "priority first, then the order of submission, across groups")
  }

  func testPauseStopsStartsAndResumeStartsThem() {
    var sim = Sim(workers: 2)
    let r = control(&sim, .pause(group: nil))
    XCTAssertEqual(r["queue_paused"]?.bool, true)
    let a = sim.submitOne(#"{"command":["true"]}"#)
    XCTAssertEqual(sim.runOrder, [])
    XCTAssertEqual(sim.events("task.waiting", task: a).map(\.reason), ["paused"])
    XCTAssertEqual(sim.events("queue.paused").count, 1)
    _ = control(&sim, .resume(group: nil))
    XCTAssertEqual(sim.runOrder, [a])
    // One group paused: the others go on.
    _ = control(&sim, .pause(group: "slow"))
    let s1 = sim.submitOne(#"{"command":["true"],"group":"slow"}"#)
    let f1 = sim.submitOne(#"{"command":["true"],"group":"fast"}"#)
    XCTAssertEqual(sim.runOrder, [a, f1])
    XCTAssertEqual(sim.events("task.waiting", task: s1).map(\.reason), ["paused"])
    _ = control(&sim, .resume(group: "slow"))
    sim.finish(a)
    XCTAssertEqual(sim.runOrder, [a, f1, s1])
    sim.checkInvariants()
  }

  /// Pauses and live limits are in the log: a replay (as after kill -9) and a snapshot keep them.
  func testPauseAndLimitsSurviveReplayAndSnapshot() throws {
    var sim = Sim(workers: 2)
    _ = control(&sim, .pause(group: nil))
    _ = control(&sim, .pause(group: "g"))
    _ = control(&sim, .setParallel(group: "g", 3))
    _ = sim.submitOne(#"{"command":["true"],"group":"g"}"#)
    var lines: [JSON] = []
    for (i, e) in sim.log.enumerated() {
      var w = JSONWriter()
      e.encode(seq: UInt64(i + 1), tsMs: sim.now, into: &w)
      lines.append(try JSON.parse(w.bytes))
    }
    var r = Scheduler(config: sim.s.config)
    for l in lines { r.replay(l) }
    XCTAssertTrue(r.fleet.paused)
    let g = r.fleet.groups.first { $0.name == "g" }!
    XCTAssertTrue(g.paused)
    XCTAssertEqual(g.parallel, 3)
    var snapped = Scheduler(config: sim.s.config)
    _ = try snapped.restore(snapshot: try JSON.parse(r.queueSnapshot(seq: 9, nowMs: sim.now).encoded()))
    XCTAssertTrue(snapped.fleet.paused)
    XCTAssertEqual(snapped.fleet.groups.first { $0.name == "g" }?.parallel, 3)
    // Nothing starts after recovery while paused.
    var out: [Action] = []
    _ = r.settleAfterRecovery(now: sim.now, into: &out)
    r.start(now: sim.now, into: &out)
    for w in 1...2 {
      r.handle(.workerSpawned(w, pid: Int32(10 + w)), now: sim.now, into: &out)
      r.handle(.worker(w, .ready(pid: Int32(10 + w))), now: sim.now, into: &out)
    }
    XCTAssertFalse(out.contains { if case .send(_, .run) = $0 { return true } else { return false } })
  }

  func testSnapshotsWithoutFleetStillLoad() throws {
    // A task-queue.json written before groups existed: no "fleet", specs without "group".
    let old =
      #"{"seq":3,"next_task":2,"tokens_used":0,"tasks":[{"id":"task-000001","state":"queued","spec":{"priority":"medium","command":["true"]}}],"finished":{}}"#
    var s = Scheduler(config: Config())
    _ = try s.restore(snapshot: try JSON.parse(old))
    XCTAssertFalse(s.fleet.paused)
    XCTAssertEqual(s.groupName(s.tasks[1]!.spec), "default")
  }

  func testRetrySubmitsALinkedNewTask() {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["false"],"env":{"API_TOKEN":"sk-secret-value-123456"}}"#)
    sim.finish(a, exit: 1)
    let b = sim.submitOne(#"{"command":["true"]}"#)
    let r = control(&sim, .retry([b], allFailed: false))
    XCTAssertEqual(r["ok"]?.bool, false, "a running task is not retried")
    XCTAssertEqual(r["error"]?.string?.contains("only a finished task"), true)
    sim.finish(b)
    let r2 = control(&sim, .retry([], allFailed: true))
    XCTAssertEqual(r2["retried"]?.array?.compactMap(\.string), [TaskID.format(a)])
    guard let id = r2["ids"]?.array?.first?.string, let n = TaskID.parse(id) else { return XCTFail(r2.encoded()) }
    XCTAssertEqual(sim.s.tasks[n]?.spec.retryOf, a)
    XCTAssertEqual(sim.s.tasks[n]?.spec.env.first?.1, "sk-secret-value-123456", "the secret goes to the new attempt")
    let submitted = sim.events("task.submitted", task: n).first!
    let spec = String(decoding: submitted.specJSON!, as: UTF8.self)
    XCTAssertTrue(spec.contains("\"retry_of\":\"\(TaskID.format(a))\""), spec)
    XCTAssertFalse(spec.contains("sk-secret"), spec)
    XCTAssertEqual(control(&sim, .retry([999], allFailed: false))["code"]?.int, 65)
  }

  /// A spec's `retry_of` must name a task the daemon knows (live or finished), or the whole batch
  /// is refused with 65 naming the field; a malformed one is refused when the spec is decoded.
  func testRetryOfANonexistentTaskIsRefusedNamingTheField() {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["false"]}"#)
    sim.finish(a, exit: 1)
    let r = sim.submit([#"{"command":["true"],"retry_of":"task-000999"}"#])
    XCTAssertEqual(r["ok"]?.bool, false, r.encoded())
    XCTAssertEqual(r["code"]?.int, 65, r.encoded())
    XCTAssertEqual(r["field"]?.string, "retry_of", r.encoded())
    XCTAssertEqual(r["error"]?.string?.contains("unknown task task-000999"), true, r.encoded())
    // In a batch the good task is not accepted either; the position is named.
    let batch = sim.submit([#"{"command":["true"]}"#, #"{"command":["true"],"retry_of":"task-000002"}"#])
    XCTAssertEqual(batch["field"]?.string, "[2].retry_of", batch.encoded())
    XCTAssertEqual(sim.events("task.submitted").count, 1, "a refused submit accepted something")
    // A finished task, and a live one, can be named.
    let b = sim.submitOne(#"{"command":["true"],"retry_of":"\#(TaskID.format(a))"}"#)
    XCTAssertEqual(sim.s.tasks[b]?.spec.retryOf, a)
    XCTAssertNotEqual(sim.submitOne(#"{"command":["true"],"retry_of":"\#(TaskID.format(b))"}"#), 0)
    for bad in [#""nope""#, "12", #""task-""#] {
      XCTAssertThrowsError(try TaskSpec.decode(try JSON.parse(#"{"command":["true"],"retry_of":\#(bad)}"#)), bad) {
        XCTAssertEqual(($0 as? SpecError)?.field, "retry_of", bad)
      }
    }
  }

  func testRetryAllFailedTakesOnlyTheNewestOfEachRetryChain() {
    var sim = Sim(workers: 1)
    let a = sim.submitOne(#"{"command":["false"]}"#)
    sim.finish(a, exit: 1)
    let first = control(&sim, .retry([], allFailed: true))
    XCTAssertEqual(first["retried"]?.array?.compactMap(\.string), [TaskID.format(a)])
    guard let id = first["ids"]?.array?.first?.string, let b = TaskID.parse(id) else { return XCTFail(first.encoded()) }
    // While the retry has not ended, the original is not retried again.
    let again = control(&sim, .retry([], allFailed: true))
    XCTAssertEqual(again["ids"]?.array?.count, 0, again.encoded())
    sim.finish(b, exit: 1)
    let second = control(&sim, .retry([], allFailed: true))
    XCTAssertEqual(second["retried"]?.array?.compactMap(\.string), [TaskID.format(b)], "only the failed retry, not its original too")
    // Named explicitly, an already retried task is still retried.
    XCTAssertEqual(control(&sim, .retry([a], allFailed: false))["ok"]?.bool, true)
  }

  func testEditChangesAQueuedTaskAndLogsBeforeAndAfter() throws {
    var sim = Sim(workers: 1) { self.groups(&$0, [("one", GroupConfig(parallel: 1))]) }
    let busy = sim.submitOne(#"{"command":["sleep","9"]}"#)
    let a = sim.submitOne(#"{"command":["true"],"priority":"low"}"#)
    let b = sim.submitOne(#"{"command":["true"]}"#)
    var change = TaskSpec()
    change.priority = .high
    change.env = [("API_KEY", "sk-live-abcdefabcdef1234")]
    change.timeoutS = 5
    let r = control(&sim, .edit(a, change, fields: ["priority", "env", "timeout_s"]))
    XCTAssertEqual(r["ok"]?.bool, true, r.encoded())
    let e = sim.events("task.edited", task: a).first!
    var w = JSONWriter()
    e.encode(seq: 1, tsMs: sim.now, into: &w)
    let line = String(decoding: w.bytes, as: UTF8.self)
    XCTAssertTrue(line.contains(#""before":{"priority":"low","env":null,"timeout_s":null}"#), line)
    XCTAssertTrue(line.contains(#""after":{"priority":"high""#), line)
    XCTAssertFalse(line.contains("sk-live"), "secrets are redacted: \(line)")
    XCTAssertEqual(sim.s.tasks[a]?.timeoutMs, 5000)
    sim.finish(busy)
    XCTAssertEqual(sim.runOrder, [busy, a], "now high, it goes before b")
    XCTAssertEqual(control(&sim, .edit(a, change, fields: ["priority"]))["ok"]?.bool, false, "a running task cannot be edited")
    // Moving a queued task to a group changes where it waits.
    var g = TaskSpec()
    g.group = "one"
    _ = control(&sim, .edit(b, g, fields: ["group"]))
    XCTAssertEqual(sim.s.groupName(sim.s.tasks[b]!.spec), "one")
    sim.finish(a)
    XCTAssertEqual(sim.runOrder.last, b)
    sim.checkInvariants()
  }

  func testRateLimitSpacesStartsAndAdaptsToRateLimitedReports() {
    let rate = RateConfig(startsPerMin: 60)
    var sim = Sim(workers: 4) { self.groups(&$0, [("api", GroupConfig(rate: rate))]) }
    let ids = (0..<4).map { _ in sim.submitOne(#"{"synthetic":{"duration_ms":1},"group":"api"}"#) }
    XCTAssertEqual(sim.runOrder.count, 1, "one second's worth of starts at 60/min")
    let w = sim.events("task.waiting", task: ids[1]).first!
    XCTAssertEqual(w.reason, "rate_limited")
    XCTAssertTrue(w.fields.contains { $0.0 == "not_before" })
    XCTAssertEqual(sim.s.nextWakeMs(), sim.now + 1000)
    sim.advance(1000)
    XCTAssertEqual(sim.runOrder.count, 2)
    // A rate-limited report: the rate shrinks, the task is retried after retry_after, not failed.
    let first = sim.runOrder[0]
    var o = TaskOutcome(task: first, exitCode: 1, signal: nil, tokensUsed: 0, startedMs: sim.now, endedMs: sim.now)
    o.rateLimited = true
    o.retryAfterMs = 3000
    sim.now += 1
    sim.feed(.worker(sim.worker(of: first)!, .done(o)))
    XCTAssertEqual(sim.s.tasks[first]?.state, .queued)
    let retry = sim.events("task.retrying", task: first).last!
    XCTAssertEqual(retry.reason, "rate_limited")
    let dec = sim.events("rate.decreased").first!
    XCTAssertTrue(dec.fields.contains { $0.0 == "to_per_min" && $0.1.double == 42 }, "60 × 0.7")
    XCTAssertEqual(sim.s.fleet.groups.first { $0.name == "api" }?.limiter?.allowedPerMin, 42)
    sim.checkInvariants()
  }

  func testFleetConfigRoundTripsAndNamesBadFields() throws {
    var c = Config()
    c.onFinish = "echo done"
    c.hookTimeoutS = 5
    c.groups = [("api", GroupConfig(parallel: 3, rate: RateConfig(startsPerMin: 90, tokensPerMin: 5000, rateLimitedExitCode: 75)))]
    c.workerTypes[0].1.group = "api"
    c.workerTypes[0].1.rate = RateConfig(startsPerMin: 10, adaptive: false)
    XCTAssertEqual(try Config.decode(try JSON.parse(c.json().encoded())), c)
    let bad: [(String, String)] = [
      (#"{"groups":{"a b":{}}}"#, "groups.a b"), (#"{"groups":{"a":{"parallel":-1}}}"#, "groups.a.parallel"),
      (#"{"groups":{"a":{"rate":{}}}}"#, "groups.a.rate"), (#"{"groups":{"a":{"rate":{"per_hour":3}}}}"#, "groups.a.rate.per_hour"),
      (#"{"on_finish":""}"#, "on_finish"), (#"{"worker_types":{"x":{"group":""}}}"#, "worker_types.x.group"),
    ]
    for (text, field) in bad {
      XCTAssertThrowsError(try Config.decode(try JSON.parse(text)), text) { e in
        XCTAssertEqual((e as? SpecError)?.field, field, text)
      }
    }
    // Specs: a bad group is named; an old spec without group or retry_of still decodes.
    XCTAssertThrowsError(try TaskSpec.decode(try JSON.parse(#"{"shell":"true","group":"no/slash"}"#)))
    XCTAssertNil(try TaskSpec.decode(try JSON.parse(#"{"shell":"true"}"#)).group)
  }

  func testReportLineRateLimited() {
    let r = ReportLine.parse(ArraySlice(Array(#"{"rate_limited": true, "retry_after_s": 2.5}"#.utf8)))
    XCTAssertTrue(r.rateLimited)
    XCTAssertEqual(r.retryAfterS, 2.5)
    let bad = ReportLine.parse(ArraySlice(Array(#"{"rate_limited": "yes", "retry_after_s": -1}"#.utf8)))
    XCTAssertEqual(bad.refused.count, 2, "\(bad.refused)")
    var o = TaskOutcome(task: 3, exitCode: 1, signal: nil, tokensUsed: 0, startedMs: 1, endedMs: 2)
    o.rateLimited = true
    o.retryAfterMs = 2500
    let line = WorkerToDaemon.done(o).encodedLine()
    XCTAssertEqual(try WorkerToDaemon.decode(ArraySlice(line.dropLast())), .done(o))
  }

  /// A worker type's own rate limit holds its tasks; another group's tasks go past.
  func testWorkerTypeRateLimit() {
    var sim = Sim(workers: 3) {
      $0.workerTypes = [("review", Config.WorkerType(tokenBudget: 0, timeoutS: 60, memoryMB: 0, cpu: 0, command: ["true"]))]
      $0.workerTypes[0].1.rate = RateConfig(startsPerMin: 60)
      $0.workerTypes[0].1.group = "reviews"
    }
    let r1 = sim.submitOne(#"{"type":"review","description":"a"}"#)
    let r2 = sim.submitOne(#"{"type":"review","description":"b"}"#)
    let other = sim.submitOne(#"{"command":["true"]}"#)
    XCTAssertEqual(sim.runOrder, [r1, other])
    XCTAssertEqual(sim.s.groupName(sim.s.tasks[r2]!.spec), "reviews")
    XCTAssertEqual(sim.events("task.waiting", task: r2).first?.reason, "rate_limited")
    sim.advance(1000)
    XCTAssertEqual(sim.runOrder, [r1, other, r2])
    sim.checkInvariants()
  }

  /// A worker type's tokens-per-minute limit: the loop's timer is set for when the held task's
  /// tokens are there, and the task starts then. Before, the timer looked at the type's starts
  /// only (as for a task needing no tokens), so the task waited for some other input: in a real
  /// daemon it started a second past its `not_before`.
  func testAWorkerTypesTokenLimitSetsTheTimerForTheHeldTask() {
    var sim = Sim(workers: 8) {
      $0.workerTypes = [("review", Config.WorkerType(tokenBudget: 1000, timeoutS: 60, memoryMB: 0, cpu: 0, command: ["true"]))]
      $0.workerTypes[0].1.rate = RateConfig(tokensPerMin: 6000, adaptive: false)
    }
    let ids = (0..<7).map { _ in sim.submitOne(#"{"type":"review","description":"a"}"#) }
    XCTAssertEqual(sim.runOrder, Array(ids.prefix(6)), "a full bucket holds six tasks of 1,000 tokens")
    let wait = sim.events("task.waiting", task: ids[6]).first
    XCTAssertEqual(wait?.reason, "rate_limited")
    guard let notBefore = wait?.fields.first(where: { $0.0 == "not_before" })?.1.string.flatMap(Timestamp.parse) else {
      return XCTFail("no not_before in \(String(describing: wait))")
    }
    XCTAssertEqual(notBefore, sim.now + 10_000, "1,000 tokens at 6,000 a minute")
    XCTAssertEqual(sim.s.nextWakeMs(), notBefore, "the loop's timer")
    sim.now = notBefore
    sim.feed(.tick)
    XCTAssertEqual(sim.runOrder.last, ids[6], "started at its not_before")
    sim.checkInvariants()
  }

  /// A group's tokens-per-minute limit judged by the head of its queue: when the head is
  /// cancelled, the next task's own tokens count, not the cancelled one's.
  func testACancelledHeadDoesNotHoldARateLimitedGroupForItsTokens() {
    var sim = Sim(workers: 4) { self.groups(&$0, [("api", GroupConfig(rate: RateConfig(tokensPerMin: 6000, adaptive: false)))]) }
    let spec = { (tokens: Int) in #"{"synthetic":{"duration_ms":1},"group":"api","token_budget":\#(tokens)}"# }
    let a = sim.submitOne(spec(6000))
    let b = sim.submitOne(spec(6000))
    let c = sim.submitOne(spec(100))
    XCTAssertEqual(sim.runOrder, [a], "the first empties the bucket")
    sim.feed(.cancel(99, [b]))
    XCTAssertEqual(sim.s.tasks[b]?.state, .cancelled)
    // 100 tokens at 6,000 a minute: a second.
    sim.advance(1000)
    XCTAssertEqual(sim.runOrder, [a, c], "c waited for the tokens of the cancelled b")
    sim.checkInvariants()
  }

  /// Random sequences of submits, outcomes (some rate limited), pauses, resumes, limit changes and
  /// time: after every step, running per group ≤ its limit (unless lowered live below what ran),
  /// starts per minute ≤ the rate plus one second's burst, nothing starts while paused, and the
  /// scheduler's invariants hold.
  func testRandomizedFleetInvariants() {
    for seed in UInt64(1)...4 {
      var rng = SplitMix64(seed: seed)
      let names = ["a", "b", "c", "default"]
      var sim = Sim(workers: 6, seed: seed) {
        self.groups(
          &$0,
          [
            ("a", GroupConfig(parallel: 2)), ("b", GroupConfig(parallel: 1, rate: RateConfig(startsPerMin: 12))),
            ("c", GroupConfig(rate: RateConfig(startsPerMin: 6, tokensPerMin: 3000))),
          ])
      }
      var starts: [String: [Int64]] = [:]
      for step in 0..<400 {
        let pausedBefore = sim.s.fleet.paused
        let pausedGroups = Set(sim.s.fleet.groups.filter(\.paused).map(\.name))
        let runningBefore = Dictionary(uniqueKeysWithValues: names.map { ($0, running(sim, group: $0)) })
        let logBefore = sim.log.count
        var resumed = false
        switch rng.below(10) {
        case 0, 1, 2:
          let g = names[Int(rng.below(4))]
          let p = ["low", "medium", "high", "critical"][Int(rng.below(4))]
          sim.submit([#"{"synthetic":{"duration_ms":5},"token_budget":\#(rng.below(500)),"group":"\#(g)","priority":"\#(p)"}"#])
        case 3, 4:
          let busy = sim.s.tasks.values.filter { $0.state == .assigned || $0.state == .running }.map(\.number).sorted()
          if let n = busy.isEmpty ? nil : busy[Int(rng.below(Int64(busy.count)))] {
            let kind = rng.below(4)
            var o = TaskOutcome(task: n, exitCode: kind == 0 ? 1 : 0, signal: nil, tokensUsed: 0, startedMs: sim.now, endedMs: sim.now)
            if kind == 0 {
              o.rateLimited = true
              o.retryAfterMs = rng.below(2) == 0 ? nil : 500
            }
            sim.feed(.worker(sim.worker(of: n)!, .done(o)))
          }
        case 5:
          let g: String? = rng.below(3) == 0 ? nil : names[Int(rng.below(4))]
          _ = control(&sim, .pause(group: g))
        case 6:
          let g: String? = rng.below(2) == 0 ? nil : names[Int(rng.below(4))]
          _ = control(&sim, .resume(group: g))
          resumed = true
        case 7:
          _ = control(&sim, .setParallel(group: names[Int(rng.below(4))], Int(rng.below(4))))
        default:
          sim.advance(rng.below(3000))
        }
        sim.checkInvariants()
        let assigned = sim.log[logBefore...].filter { $0.type == "task.assigned" }
        for e in assigned {
          let g = sim.s.groupName(sim.s.tasks[e.task!]!.spec)
          starts[g, default: []].append(sim.now)
          if !resumed {
            XCTAssertFalse(pausedBefore, "seed \(seed) step \(step): a task started while the queue was paused")
            XCTAssertFalse(pausedGroups.contains(g), "seed \(seed) step \(step): a task of paused group \(g) started")
          }
        }
        for gs in sim.s.fleet.groups {
          XCTAssertEqual(gs.running, running(sim, group: gs.name), "seed \(seed) step \(step): running count of \(gs.name)")
          if gs.parallel > 0 && !assigned.isEmpty {
            XCTAssertLessThanOrEqual(
              gs.running, max(gs.parallel, runningBefore[gs.name] ?? 0), "seed \(seed) step \(step): group \(gs.name) over its limit")
          }
        }
        // The busiest minute ends at a start: check the minute ending at each start of this step.
        for (g, perMin) in [("b", 12.0), ("c", 6.0)] where !assigned.isEmpty {
          let inWindow = (starts[g] ?? []).filter { $0 > sim.now - 60_000 }.count
          XCTAssertLessThanOrEqual(
            Double(inWindow), perMin + max(1, perMin / 60), "seed \(seed) step \(step): group \(g) started \(inWindow) in a minute")
        }
      }
      XCTAssertGreaterThan(starts["b"]?.count ?? 0, 5, "seed \(seed): the rate-limited group ran")
      XCTAssertGreaterThan(starts["a"]?.count ?? 0, 5, "seed \(seed): the limited group ran")
    }
  }

  func testADaemonKeepsAtMostMaxGroupsAndRefusesANewOneNamingGroup() {
    var sim = Sim(workers: 1)
    // `group set` makes named groups, up to the most a daemon keeps.
    for i in 1...Scheduler.maxGroups {
      XCTAssertEqual(control(&sim, .setParallel(group: "g\(i)", 1))["ok"]?.bool, true, "g\(i)")
    }
    XCTAssertEqual(sim.s.fleet.groups.count, Scheduler.maxGroups)
    // One more name is refused, whichever request names it, and changes nothing.
    for cmd in [FleetCommand.setParallel(group: "one-more", 1), .pause(group: "one-more"), .resume(group: "one-more")] {
      let r = control(&sim, cmd)
      XCTAssertEqual(r["ok"]?.bool, false, "\(cmd)")
      XCTAssertEqual(r["code"]?.int, 65)
      XCTAssertTrue(r["error"]?.string?.hasPrefix("group: 'one-more' would be a new group") == true, r.encoded())
    }
    let refused = sim.submit([#"{"command":["true"]}"#, #"{"command":["true"],"group":"one-more"}"#])
    XCTAssertEqual(refused["ok"]?.bool, false)
    XCTAssertTrue(refused.encoded().contains("group: 'one-more' would be a new group"), refused.encoded())
    XCTAssertTrue(sim.s.tasks.isEmpty, "the batch is refused whole")
    // Existing groups still take tasks, the default group too, and a queued task cannot be moved
    // to a new one.
    _ = control(&sim, .pause(group: nil))
    XCTAssertGreaterThan(sim.submitOne(#"{"command":["true"]}"#), 0)
    let t = sim.submitOne(#"{"command":["true"],"group":"g7"}"#)
    var move = try! TaskSpec.decode(try! JSON.parse(#"{"command":["true"],"group":"one-more"}"#))
    XCTAssertEqual(control(&sim, .edit(t, move, fields: ["group"]))["ok"]?.bool, false)
    move.group = "g8"
    XCTAssertEqual(control(&sim, .edit(t, move, fields: ["group"]))["ok"]?.bool, true)
    XCTAssertEqual(sim.s.fleet.groups.count, Scheduler.maxGroups + 1, "the named ones and the default")
    XCTAssertFalse(sim.s.fleet.groups.contains { $0.name == "one-more" })
    sim.checkInvariants()
  }
}
