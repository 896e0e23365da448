/// Fleet control from the command line (SPEC §15): pause and resume the queue or one group, set a
/// group's `parallel` limit, submit finished tasks again (`retry`), edit a queued task. Each is a
/// logged decision that recovery replays, so a paused queue stays paused after `kill -9`.
public enum FleetCommand: Equatable, Sendable {
  case pause(group: String?)
  case resume(group: String?)
  case setParallel(group: String, Int)
  case groups
  /// `stored`: the specs of named tasks the scheduler no longer holds, as the daemon read them
  /// from their `spec.json` (see `retrySpecsNeeded`); empty as decoded from a request.
  case retry([Int], allFailed: Bool, stored: [Int: Scheduler.StoredSpec] = [:])
  /// New values for the fields named in `fields` (priority, group, labels, timeout_s, command,
  /// shell, env); labels and env are merged by key.
  case edit(Int, TaskSpec, fields: [String])
}

extension Scheduler {
  public static let editableFields: Set<String> = ["priority", "group", "labels", "timeout_s", "command", "shell", "env"]

  mutating func control(_ c: ClientID, _ cmd: FleetCommand, now: Int64, into out: inout [Action]) {
    let named: String? =
      switch cmd {
      case .pause(let g), .resume(let g): g
      case .setParallel(let g, _): g
      default: nil
      }
    var none = Set<String>()
    if let named, let refusal = newGroupRefusal(named, adding: &none) {
      out.append(.reply(c, Self.failure(refusal.description, code: 65), durable: false))
      return
    }
    switch cmd {
    case .pause(let group): pause(c, group, true, into: &out)
    case .resume(let group): pause(c, group, false, into: &out)
    case .setParallel(let name, let n):
      let g = groupIndex(name)
      let was = fleet.groups[g].parallel
      fleet.groups[g].parallel = n
      fleet.groups[g].parallelLive = n
      wakeGroup(g)
      out.append(
        .log(
          Event(
            "group.updated", reason: "cortex_group_set", detail: "group \(name): parallel \(was) → \(n)",
            fields: [("group", .string(name)), ("parallel_from", .int(Int64(was))), ("parallel", .int(Int64(n)))])))
      out.append(.reply(c, .object([("ok", .bool(true)), ("group", groupJSON(g, now: now))]), durable: true))
    case .groups:
      out.append(
        .reply(c, .object([("ok", .bool(true)), ("paused", .bool(fleet.paused)), ("groups", groupsJSON(now: now))]), durable: false))
    case .retry(let ids, let all, let stored): retryTasks(c, ids, allFailed: all, stored: stored, now: now, into: &out)
    case .edit(let n, let spec, let fields): edit(c, n, spec, fields, now: now, into: &out)
    }
  }

  public static func failure(_ message: String, code: Int = 1) -> JSON {
    .object([("ok", .bool(false)), ("code", .int(Int64(code))), ("error", .string(message))])
  }

  mutating func pause(_ c: ClientID, _ group: String?, _ on: Bool, into out: inout [Action]) {
    var changed: [String] = []
    // Resuming a group nothing has named is a no-op (a typo, `cortex resume aip`): it made the
    // group, which is never forgotten, a row of `cortex group`, groups.json and the metrics.
    if let group, on || fleet.index[group] != nil {
      let g = groupIndex(group)
      if fleet.groups[g].paused != on {
        fleet.groups[g].paused = on
        fleet.groups[g].notedReason = Array(repeating: nil, count: Priority.allCases.count)
        wakeGroup(g)
        changed.append(group)
        out.append(
          .log(
            Event(
              on ? "group.paused" : "group.resumed", reason: on ? "cortex_pause" : "cortex_resume",
              detail: on ? "no new task of group \(group) starts; running ones go on" : "tasks of group \(group) start again",
              fields: [("group", .string(group))])))
      }
    } else if group == nil {
      // `cortex resume` with no group resumes everything that is paused.
      if fleet.paused != on {
        fleet.paused = on
        fleet.notedQueuePaused = 0
        changed.append("*")
        out.append(
          .log(
            Event(
              on ? "queue.paused" : "queue.resumed", reason: on ? "cortex_pause" : "cortex_resume",
              detail: on ? "no new task starts; running ones go on" : "tasks start again")))
      }
      if !on {
        for g in fleet.groups.indices where fleet.groups[g].paused {
          fleet.groups[g].paused = false
          fleet.groups[g].notedReason = Array(repeating: nil, count: Priority.allCases.count)
          wakeGroup(g)
          changed.append(fleet.groups[g].name)
          out.append(
            .log(
              Event(
                "group.resumed", reason: "cortex_resume", detail: "tasks of group \(fleet.groups[g].name) start again",
                fields: [("group", .string(fleet.groups[g].name))])))
        }
      }
    }
    out.append(
      .reply(
        c,
        .object([
          ("ok", .bool(true)), ("changed", .array(changed.map { .string($0) })), ("queue_paused", .bool(fleet.paused)),
          ("paused_groups", .array(fleet.groups.filter(\.paused).map { .string($0.name) })),
        ]), durable: true))
  }

  /// `base` with `change` applied in one pass: a changed key's old entries go, its last value is
  /// appended (in the order of the changes' last mentions); with `dropEmpty` an empty value
  /// removes the key. Removing each key with a search of the list was quadratic: 20,000 env
  /// keys in one edit held the daemon's loop 26 s (debug build).
  static func merged(_ base: [(String, String)], _ change: [(String, String)], dropEmpty: Bool) -> [(String, String)] {
    var last: [String: Int] = [:]
    for (i, (k, _)) in change.enumerated() { last[k] = i }
    var out = base.filter { last[$0.0] == nil }
    for (i, (k, v)) in change.enumerated() where last[k] == i && !(dropEmpty && v.isEmpty) { out.append((k, v)) }
    return out
  }

  /// Changes a queued task (also one waiting for a retry time or its dependencies). Logged as
  /// `task.edited` with the changed fields before and after (redacted) and the new spec.
  mutating func edit(_ c: ClientID, _ n: Int, _ change: TaskSpec, _ fields: [String], now: Int64, into out: inout [Action]) {
    guard let t = tasks[n] else {
      // An id no task has had is bad input (65, as show, wait and retry answer); a finished one is not editable (1).
      let reply =
        finishedStates[n].map { Self.failure("\(TaskID.format(n)): already \($0.rawValue)") }
        ?? .object([
          ("ok", .bool(false)), ("code", .int(65)), ("field", .string("id")),
          ("error", .string("id: " + TaskID.unknown(n, next: nextTaskNumber))),
        ])
      out.append(.reply(c, reply, durable: false))
      return
    }
    guard t.state == .queued else {
      let now = t.state.isTerminal ? "already \(t.state.rawValue)" : "is \(t.state.rawValue)"
      out.append(.reply(c, Self.failure("\(t.id) \(now); only a queued task can be edited"), durable: false))
      return
    }
    let s: TaskSpec
    do throws(SpecError) {
      s = try t.spec.edited(with: change, fields: fields)
      var none = Set<String>()
      if let refusal = newGroupRefusal(groupName(s), adding: &none) { throw refusal }
    } catch {
      out.append(.reply(c, Self.invalid(error, index: nil, of: 1), durable: false))
      return
    }
    let (redacted, secrets) = s.redacted()
    let specJSON = redacted.encodedBytes()
    if specJSON.count > config.maxSpecBytes {
      out.append(
        .reply(
          c, Self.invalid(SpecError("spec", "is \(specJSON.count) bytes; the limit is \(config.maxSpecBytes)"), index: nil, of: 1),
          durable: false))
      return
    }
    // The fields whose values differ, compared unredacted (a new secret value is a change its
    // redacted form hides): an edit that changes nothing is answered so and decides nothing.
    let (oldPlain, newPlain) = (t.spec.json(), s.json())
    let changed = fields.filter { (oldPlain[$0] ?? .null).encoded() != (newPlain[$0] ?? .null).encoded() }
    if changed.isEmpty {
      out.append(.reply(c, .object([("ok", .bool(true)), ("changed", .array([])), ("task", taskJSON(t))]), durable: false))
      return
    }
    let oldRedacted = (try? JSON.parse(t.specJSON)) ?? .null
    let newRedacted = redacted.json()
    var before: [(String, JSON)] = []
    var after: [(String, JSON)] = []
    for f in changed {
      before.append((f, oldRedacted[f] ?? .null))
      after.append((f, newRedacted[f] ?? .null))
    }
    if !secrets.isEmpty || t.specJSON.firstRange(of: Array(Redaction.marker.utf8)) != nil {
      out.append(.storeSecrets(task: n, secrets))
    }
    let requeue = t.inQueue
    if requeue { unqueue(n) }
    var r = tasks[n]!
    r.spec = s
    r.specJSON = specJSON
    r.group = -1
    if fields.contains("timeout_s") { r.timeoutMs = s.timeoutS.map { Numbers.ms(fromSeconds: $0) } }
    r.waitingReason = nil
    tasks[n] = r
    if requeue { enqueue(n) }
    var f: [(String, JSON)] = [("before", .object(before)), ("after", .object(after))]
    if let ms = r.timeoutMs { f.append(("timeout_ms", .int(ms))) }
    out.append(
      .log(
        Event(
          "task.edited", task: n, reason: "cortex_edit", detail: "changed \(changed.joined(separator: ", "))", fields: f,
          specJSON: specJSON)))
    out.append(.writeSpec(task: n))
    out.append(
      .reply(
        c, .object([("ok", .bool(true)), ("changed", .array(changed.map { .string($0) })), ("task", taskJSON(tasks[n]!))]),
        durable: true))
  }

  // MARK: views, snapshot, replay

  public func groupJSON(_ g: Int, now: Int64) -> JSON {
    let gs = fleet.groups[g]
    var o: [(String, JSON)] = [
      ("name", .string(gs.name)), ("parallel", .int(Int64(gs.parallel))), ("running", .int(Int64(gs.running))),
      ("queued", .int(Int64(gs.queuedTotal))), ("paused", .bool(gs.paused)), ("started", .int(Int64(gs.started))),
    ]
    if gs.parallelLive != nil { o.append(("parallel_set_live", .bool(true))) }
    if let l = gs.limiter { o.append(("rate", l.json(now: now))) }
    return .object(o)
  }

  /// Every group the config names or a task used, by name.
  public func groupsJSON(now: Int64) -> JSON {
    var rows = fleet.groups.indices.map { (fleet.groups[$0].name, groupJSON($0, now: now)) }
    rows.sort { $0.0 < $1.0 }
    return .array(rows.map(\.1))
  }

  /// The part of `task-queue.json` recovery needs (pauses and limits set live), and for people
  /// every group's counts and rate (`view`, not read back).
  func fleetSnapshot(now: Int64) -> JSON {
    .object([
      ("paused", .bool(fleet.paused)), ("view", groupsJSON(now: now)),
      ("pool_size", fleet.poolSizeLive.map { .int(Int64($0)) } ?? .null),
      ("rates", learnedRatesJSON(now: now)),
      (
        "groups",
        .array(
          fleet.groups.filter { $0.paused || $0.parallelLive != nil }.map { g in
            var o: [(String, JSON)] = [("name", .string(g.name)), ("paused", .bool(g.paused))]
            if let p = g.parallelLive { o.append(("parallel", .int(Int64(p)))) }
            return .object(o)
          })
      ),
    ])
  }

  mutating func restoreFleet(_ v: JSON?, writtenMs: Int64) {
    if let v {
      restoreLearnedRates(v["rates"], now: writtenMs)
      fleet.paused = v["paused"]?.bool ?? false
      fleet.poolSizeLive = v["pool_size"]?.int.flatMap { (1...1024).contains($0) ? Int($0) : nil }
      for g in v["groups"]?.array ?? [] {
        guard let name = g["name"]?.string else { continue }
        let i = groupIndex(name)
        fleet.groups[i].paused = g["paused"]?.bool ?? false
        if let p = g["parallel"]?.int, p >= 0 {
          fleet.groups[i].parallel = Int(p)
          fleet.groups[i].parallelLive = Int(p)
        }
      }
    }
    recountGroups()
  }

  /// Fleet events in the log after the snapshot.
  mutating func replayFleet(_ type: String, _ e: JSON, task n: Int?) {
    let group = e["group"]?.string
    switch type {
    case "queue.paused": fleet.paused = true
    case "pool.scaled":
      if let w = e["workers"]?.int, (1...1024).contains(w) { fleet.poolSizeLive = Int(w) }
    case "daemon.started", "daemon.recovered":
      // A start with --workers sets the pool size as `cortex scale` does.
      if e["workers_given"]?.bool == true, let w = e["workers"]?.int, (1...1024).contains(w) { fleet.poolSizeLive = Int(w) }
    case "queue.resumed": fleet.paused = false
    case "rate.decreased", "rate.increased": replayRate(type, e, atMs: e["ts"]?.string.flatMap(Timestamp.parse) ?? 0)
    case "group.paused", "group.resumed":
      guard let group else { return }
      let g = groupIndex(group)
      fleet.groups[g].paused = type == "group.paused"
      wakeGroup(g)
    case "group.updated":
      guard let group, let p = e["parallel"]?.int, p >= 0 else { return }
      let g = groupIndex(group)
      if e["reason"]?.string == "config_reloaded" {
        // A SIGHUP dropped the limit set live: the config's holds (the file read at this start).
        fleet.groups[g].parallel = config.group(group)?.parallel ?? 0
        fleet.groups[g].parallelLive = nil
      } else {
        fleet.groups[g].parallel = Int(p)
        fleet.groups[g].parallelLive = Int(p)
      }
      wakeGroup(g)
    case "task.edited":
      guard let n, let t = tasks[n], !t.state.isTerminal, let specV = e["spec"], let spec = try? TaskSpec.decode(specV) else { return }
      tasks[n]!.spec = spec
      tasks[n]!.specJSON = specV.encodedBytes()
      tasks[n]!.timeoutMs = e["timeout_ms"]?.int
      if t.group >= 0 && !Self.holdsSlot(t.state) { tasks[n]!.group = -1 }
    default: break
    }
  }
}
