/// Groups (SPEC §15): each task belongs to one (`--group`, else its worker type's `group`, else
/// `default`). Each group keeps its own FIFO queue per priority; dispatch takes, among the groups
/// that may start a task now, the head with the highest priority and, within a priority, the one
/// queued first. A group that is full, paused or rate limited is skipped, so it never holds back
/// another group's tasks (no head-of-line blocking across groups), while priorities still order
/// tasks within and across groups. The token budget, `reserve_critical` and the machine's
/// resources stay global and strict, as before.
public struct GroupState: Sendable {
  public let name: String
  /// Most tasks assigned or running at once; 0 = no limit.
  public internal(set) var parallel: Int
  /// Set with `cortex group set` (survives restarts through the log; a config reload replaces it).
  public internal(set) var parallelLive: Int?
  public internal(set) var paused = false
  /// Tasks of the group assigned or running now.
  public internal(set) var running = 0
  /// Live entries per priority (lazy deletion: an entry whose task left the queue is skipped).
  public internal(set) var queued: [Int] = Array(repeating: 0, count: Priority.allCases.count)
  public internal(set) var limiter: RateLimiter?
  public internal(set) var started = 0
  var queues: [[QueueEntry]] = Array(repeating: [], count: Priority.allCases.count)
  var heads: [Int] = Array(repeating: 0, count: Priority.allCases.count)
  /// Per priority, the head task and reason last looked at for `task.waiting` (so a held group
  /// costs no string or lookup per decision).
  var notedTask: [Int] = Array(repeating: 0, count: Priority.allCases.count)
  var notedReason: [Hold?] = Array(repeating: nil, count: Priority.allCases.count)
  /// Skipped for the rest of the current dispatch pass.
  var skipPass: UInt64 = 0

  public var queuedTotal: Int { queued.reduce(0, +) }
}

/// Why a group may not start a task now.
enum Hold: UInt8, Sendable {
  case paused, full, rateLimited
  var reason: String {
    switch self {
    case .paused: "paused"
    case .full: "group_full"
    case .rateLimited: "rate_limited"
    }
  }
}

struct QueueEntry: Sendable {
  let seq: UInt64
  let n: Int
}

/// Every group, the queue-wide pause and the worker types' rate limiters.
public struct Fleet: Sendable {
  public internal(set) var groups: [GroupState] = []
  var index: [String: Int] = [:]
  /// `cortex pause` without a group: nothing new starts anywhere.
  public internal(set) var paused = false
  /// The pool size `cortex scale` or a start's `--workers` set, kept across restarts and crashes
  /// as a limit set with `cortex group set` is (snapshot and log). Nil: config.json's `workers`.
  public internal(set) var poolSizeLive: Int?
  public internal(set) var typeLimiters: [String: RateLimiter] = [:]
  var pass: UInt64 = 0
  /// When dispatch last ran (see `fleetWakeMs`).
  var lastPassMs: Int64 = 0
  /// The earliest time a task that the last dispatch pass found held by its worker type's rate
  /// limit may start (its tokens counted, not only the type's starts), for `fleetWakeMs`.
  var typeReadyMs: Int64?
  var notedQueuePaused = 0
  /// Per priority, the groups a decision looks at (those that may start a task now).
  public internal(set) var startable = StartableGroups()
  public init() {}
}

extension Scheduler {
  static func holdsSlot(_ s: TaskState) -> Bool { s == .assigned || s == .running }

  /// The most named groups a daemon keeps (the default group comes on top). A group is never
  /// forgotten (its counters and limits are part of the state) and is a row of `groups.json`,
  /// `cortex groups` and the metrics, rewritten at every change: a request naming new groups
  /// without end made each change slower than the last. Groups come from config.json (always
  /// kept), tasks, `group set`, `pause` and `resume`.
  public static let maxGroups = 1_000

  /// Why a request may not name group `name` (nil: it may): it would be a new group past
  /// `maxGroups`. `adding` holds the new names the same request already named.
  public func newGroupRefusal(_ name: String, adding: inout Set<String>) -> SpecError? {
    guard name != FleetNames.defaultGroup, fleet.index[name] == nil, !adding.contains(name) else { return nil }
    let have = fleet.groups.count - (fleet.index[FleetNames.defaultGroup] == nil ? 0 : 1) + adding.count
    guard have < Self.maxGroups else {
      return SpecError(
        "group",
        "\(quoted(name)) would be a new group, and this daemon already has \(have), the most it keeps (\(Self.maxGroups)); name one of the groups `cortex groups` lists"
      )
    }
    adding.insert(name)
    return nil
  }

  /// The group a spec runs in: its own, its worker type's, or `default`.
  public func groupName(_ spec: TaskSpec) -> String { config.groupName(group: spec.group, type: spec.type) }

  /// The index of a group, created (with its settings from the config) on first use.
  mutating func groupIndex(_ name: String) -> Int {
    if let g = fleet.index[name] { return g }
    let c = config.group(name)
    var g = GroupState(name: name, parallel: c?.parallel ?? 0)
    if let r = c?.rate { g.limiter = RateLimiter(r, now: 0) }
    fleet.groups.append(g)
    fleet.index[name] = fleet.groups.count - 1
    return fleet.groups.count - 1
  }

  /// A task's group index, resolved once and cached on the record.
  mutating func groupOf(_ n: Int) -> Int {
    guard let i = tasks.index(forKey: n) else { return groupIndex(FleetNames.defaultGroup) }
    return groupOf(at: i)
  }

  mutating func groupOf(at i: [Int: TaskRecord].Index) -> Int {
    let cached = tasks.values[i].group
    if cached >= 0 { return cached }
    let g = groupIndex(groupName(tasks.values[i].spec))
    tasks.values[i].group = g
    return g
  }

  /// Called on every state change: keeps each group's count of tasks holding a slot.
  mutating func groupStateChanged(_ n: Int, at i: [Int: TaskRecord].Index, from old: TaskState, to new: TaskState) {
    let was = Self.holdsSlot(old)
    let now = Self.holdsSlot(new)
    if was == now { return }
    let g = groupOf(at: i)
    fleet.groups[g].running += now ? 1 : -1
    if was { wakeGroup(g) }
  }

  /// Something that may lift group `g`'s hold changed (a task ended, a pause, its `parallel`, its
  /// rate limiter): every priority it has queued tasks at is looked at again.
  mutating func wakeGroup(_ g: Int) {
    for p in 0..<Priority.allCases.count where fleet.groups[g].queued[p] > 0 { fleet.startable.insert(g, p) }
  }

  mutating func wakeAllGroups() {
    for g in fleet.groups.indices { wakeGroup(g) }
  }

  /// After a snapshot was loaded (records restored without transitions): counts from the records.
  mutating func recountGroups() {
    for g in fleet.groups.indices { fleet.groups[g].running = 0 }
    for n in tasks.keys where Self.holdsSlot(tasks[n]!.state) {
      let g = groupOf(n)
      fleet.groups[g].running += 1
    }
    wakeAllGroups()
  }

  // MARK: queues

  mutating func enqueue(_ n: Int) {
    guard tasks[n] != nil else { return }
    let g = groupOf(n)
    let p = tasks[n]!.spec.priority.rawValue
    enqueueCounter += 1
    tasks[n]!.enqueueSeq = enqueueCounter
    tasks[n]!.inQueue = true
    fleet.groups[g].queues[p].append(QueueEntry(seq: enqueueCounter, n: n))
    // A new head: looked at by the next decision (a later entry leaves the head as it was).
    if fleet.groups[g].queued[p] == 0 { fleet.startable.insert(g, p) }
    fleet.groups[g].queued[p] += 1
    queuedByPriority[p] += 1
  }

  /// Takes a task out of its queue without dispatching it (cancel, edit): its entry stays and is
  /// skipped when reached.
  mutating func unqueue(_ n: Int) {
    guard let t = tasks[n], t.inQueue else { return }
    let p = t.spec.priority.rawValue
    let g = groupOf(n)
    tasks[n]!.inQueue = false
    queuedByPriority[p] -= 1
    fleet.groups[g].queued[p] -= 1
    // It may have been the head of a held group: the next head is looked at (and said waiting).
    fleet.startable.insert(g, p)
  }

  /// The head entry of group `g` at priority `p`, skipping stale entries; nil when none.
  mutating func head(_ g: Int, _ p: Int) -> QueueEntry? {
    while fleet.groups[g].heads[p] < fleet.groups[g].queues[p].count {
      let e = fleet.groups[g].queues[p][fleet.groups[g].heads[p]]
      if let t = tasks[e.n], t.inQueue, t.enqueueSeq == e.seq { return e }
      fleet.groups[g].heads[p] += 1
    }
    if fleet.groups[g].heads[p] > 0 {
      fleet.groups[g].queues[p].removeAll(keepingCapacity: true)
      fleet.groups[g].heads[p] = 0
    }
    return nil
  }

  /// Removes the head of group `g` at priority `p` (just returned by `nextCandidate`).
  mutating func popHead(_ g: Int, _ p: Int) {
    let h = fleet.groups[g].heads[p]
    tasks[fleet.groups[g].queues[p][h].n]?.inQueue = false
    fleet.groups[g].heads[p] = h + 1
    fleet.groups[g].queued[p] -= 1
    queuedByPriority[p] -= 1
    if h + 1 > 4096 && (h + 1) * 2 > fleet.groups[g].queues[p].count {
      fleet.groups[g].queues[p].removeFirst(h + 1)
      fleet.groups[g].heads[p] = 0
    }
  }

  /// Why group `g` may not start a task needing `tokens` now, or nil. Cheap: no strings, no
  /// lookups (dispatch asks it of every group with queued tasks).
  func groupHold(_ g: Int, tokens: Int, now: Int64) -> Hold? {
    // Through a pointer: reading fields of `fleet.groups[g]` here copied the whole group (its
    // queues, its limiter) for each field, many times per decision.
    fleet.groups.withUnsafeBufferPointer { groups in
      let gs = groups.baseAddress! + g
      if gs.pointee.paused { return .paused }
      let par = gs.pointee.parallel
      if par > 0 && gs.pointee.running >= par { return .full }
      if gs.pointee.limiter?.readyAtMs(now: now, tokens: tokens) != nil { return .rateLimited }
      return nil
    }
  }

  /// When a queued task's group can start it, in words, while the group is full or rate
  /// limited (a pause the CLI says itself); nil when it may start. For `cortex show` and
  /// `submit -v`: a place in the queue alone promised a start "in about 0ms" to every task behind
  /// a full group's head, while `task.waiting` names the head only.
  public func groupHoldDetail(_ n: Int, now: Int64) -> String? {
    guard let t = tasks[n], t.state == .queued, let g = fleet.index[groupName(t.spec)] else { return nil }
    let gs = fleet.groups[g]
    let tokens = limitsTokens(g) ? t.budget : 0
    switch groupHold(g, tokens: tokens, now: now) {
    case .full?: return "when its group can start it (group \(gs.name) runs \(gs.running) of its \(gs.parallel) at once)"
    case .rateLimited?:
      let at = gs.limiter?.readyAtMs(now: now, tokens: tokens) ?? now
      return "when its group can start it (group \(gs.name) is rate limited until \(Timestamp.rfc3339(ms: at)))"
    case .paused?, nil: return nil
    }
  }

  /// What a pause holding queued task `n` waits for, worded as `cortex show` words it
  /// ("after cortex resume (held by a pause)"); nil when no pause holds it. The queue's pause
  /// first: `cortex resume` of the group alone would not start it then.
  public func pauseHoldDetail(_ n: Int) -> String? {
    guard let t = tasks[n], t.state == .queued else { return nil }
    if fleet.paused { return "after cortex resume (held by a pause)" }
    let name = groupName(t.spec)
    guard let g = fleet.index[name], fleet.groups[g].paused else { return nil }
    return "after cortex resume \(name) (held by a pause)"
  }

  /// Whether group `g` has a tokens-per-minute limit (read through a pointer, as in `groupHold`).
  func limitsTokens(_ g: Int) -> Bool {
    fleet.groups.withUnsafeBufferPointer { $0[g].limiter?.config.tokensPerMin != nil }
  }

  /// The head entry of group `g` at priority `p` as it stands (it may be stale); the group must
  /// have queued tasks at `p`.
  func rawHead(_ g: Int, _ p: Int) -> QueueEntry? {
    let h = fleet.groups[g].heads[p]
    return h < fleet.groups[g].queues[p].count ? fleet.groups[g].queues[p][h] : nil
  }

  /// The next task dispatch should consider: the highest priority, then the oldest, among the
  /// heads of groups that may start one now. Logs `task.waiting` once for the head of each group
  /// that is held back, and for the whole queue while it is paused. Looks only at the groups in
  /// `fleet.startable`, in group order, as a scan of every group would (a group out of the set is
  /// held, and its head already said why); a held group found there leaves it.
  mutating func nextCandidate(now: Int64, into out: inout [Action]) -> (n: Int, g: Int, p: Int)? {
    if fleet.paused {
      noteQueuePaused(into: &out)
      return nil
    }
    fleet.startable.wake(now: now)
    for p in stride(from: Priority.critical.rawValue, through: 0, by: -1) where queuedByPriority[p] > 0 {
      var best: QueueEntry? = nil
      var bestGroup = 0
      var w = 0
      while w < fleet.startable.bits[p].count {
        var word = fleet.startable.bits[p][w]
        while word != 0 {
          let g = w << 6 | word.trailingZeroBitCount
          word &= word - 1
          guard fleet.groups[g].queued[p] > 0 else {
            fleet.startable.remove(g, p)
            continue
          }
          guard fleet.groups[g].skipPass != fleet.pass, let raw = rawHead(g, p) else { continue }
          // Entries are in queue order: a group whose head came after the best so far cannot win.
          if let b = best, raw.seq > b.seq { continue }
          var tokens = 0
          if limitsTokens(g) {
            // The real head's tokens: an entry left by a task cancelled or edited away while
            // queued must not hold the group for its own tokens.
            guard let e = head(g, p) else { continue }
            tokens = tasks[e.n]?.budget ?? 0
          }
          if let hold = groupHold(g, tokens: tokens, now: now) {
            if raw.n != fleet.groups[g].notedTask[p] || hold != fleet.groups[g].notedReason[p], let e = head(g, p) {
              noteGroupWaiting(g, p, e.n, hold, tokens: tokens, now: now, into: &out)
            }
            setAside(g, p, hold, tokens: tokens, now: now)
            continue
          }
          guard let e = head(g, p) else { continue }
          if best == nil || e.seq < best!.seq {
            best = e
            bestGroup = g
          }
        }
        w += 1
      }
      if let best { return (best.n, bestGroup, p) }
    }
    return nil
  }

  /// Takes held group `g` out of the groups a decision looks at for priority `p`: until an input
  /// lifts a pause or a full group, until its bucket refills for a rate limit.
  mutating func setAside(_ g: Int, _ p: Int, _ hold: Hold, tokens: Int, now: Int64) {
    guard hold == .rateLimited, let l = fleet.groups[g].limiter, var at = l.readyAtMs(now: now, tokens: tokens) else {
      fleet.startable.remove(g, p)
      return
    }
    // Readiness only grows with time; should rounding make the group ready a millisecond before
    // `at`, wake it at the next decision instead (early is safe, late would not be).
    if at - 1 > now && l.readyAtMs(now: at - 1, tokens: tokens) == nil { at = now + 1 }
    fleet.startable.park(g, p, until: at)
  }

  /// The groups that may start a task at some priority now but are missing from
  /// `fleet.startable` (as "group/priority"): always empty; the scheduler tests check it with their invariants.
  public mutating func startableMissing(now: Int64) -> [String] {
    var missing: [String] = []
    for g in fleet.groups.indices {
      for p in 0..<Priority.allCases.count where fleet.groups[g].queued[p] > 0 && !fleet.startable.covers(g, p, now: now) {
        guard let e = head(g, p) else { continue }
        let tokens = limitsTokens(g) ? (tasks[e.n]?.budget ?? 0) : 0
        if groupHold(g, tokens: tokens, now: now) == nil { missing.append("\(fleet.groups[g].name)/\(p)") }
      }
    }
    return missing
  }

  /// Logs `task.waiting` for the head `n` of group `g` at priority `p`, once per task and reason.
  mutating func noteGroupWaiting(_ g: Int, _ p: Int, _ n: Int, _ hold: Hold, tokens: Int, now: Int64, into out: inout [Action]) {
    fleet.groups[g].notedTask[p] = n
    fleet.groups[g].notedReason[p] = hold
    guard let said = tasks[n].map({ $0.waitingReason }), said != hold.reason else { return }
    let gs = fleet.groups[g]
    var at: Int64? = nil
    let detail: String
    switch hold {
    case .paused: detail = "group \(gs.name) is paused (cortex resume \(gs.name))"
    case .full: detail = "group \(gs.name) runs \(gs.running) of its \(gs.parallel) at once"
    case .rateLimited:
      at = gs.limiter?.readyAtMs(now: now, tokens: tokens)
      detail = "group \(gs.name) is rate limited until \(Timestamp.rfc3339(ms: at ?? now))"
    }
    noteWaitingAt(n, hold.reason, detail, at: at, group: gs.name, into: &out)
  }

  mutating func noteWaitingAt(_ n: Int, _ reason: String, _ detail: String, at: Int64?, group: String, into out: inout [Action]) {
    guard
      update(
        n,
        { t in
          if t.waitingReason == reason { return false }
          t.waitingReason = reason
          return true
        }) == true
    else { return }
    var f: [(String, JSON)] = [("group", .string(group))]
    if let at { f.append(("not_before", .string(Timestamp.rfc3339(ms: at)))) }
    out.append(.log(Event("task.waiting", task: n, reason: reason, detail: detail, fields: f)))
  }

  /// While the whole queue is paused: the next task in line says so, once.
  mutating func noteQueuePaused(into out: inout [Action]) {
    for p in stride(from: Priority.critical.rawValue, through: 0, by: -1) where queuedByPriority[p] > 0 {
      var best: QueueEntry? = nil
      for g in fleet.groups.indices where fleet.groups[g].queued[p] > 0 {
        if let e = head(g, p), best == nil || e.seq < best!.seq { best = e }
      }
      guard let b = best else { continue }
      if fleet.notedQueuePaused == b.n { return }
      fleet.notedQueuePaused = b.n
      noteWaitingAt(b.n, "paused", "the queue is paused (cortex resume)", at: nil, group: groupName(tasks[b.n]!.spec), into: &out)
      return
    }
  }

  /// A worker type's own rate limit, checked for the chosen task.
  func typeBlocked(_ t: TaskRecord, now: Int64) -> (reason: String, detail: String, at: Int64?)? {
    guard let name = t.spec.type, let l = fleet.typeLimiters[name] else { return nil }
    guard let at = l.readyAtMs(now: now, tokens: t.budget) else { return nil }
    return ("rate_limited", "worker type \(name) is rate limited until \(Timestamp.rfc3339(ms: at))", at)
  }

  /// A task is dispatched: its group's and type's buckets give what it takes.
  mutating func takeRate(_ n: Int, group g: Int, now: Int64) {
    let t = tasks[n]!
    fleet.groups[g].started += 1
    fleet.groups[g].limiter?.take(now: now, tokens: t.budget)
    if let name = t.spec.type, fleet.typeLimiters[name] != nil { fleet.typeLimiters[name]!.take(now: now, tokens: t.budget) }
  }

  /// The earliest time a rate-limited group or type may start its next task (for the loop's timer).
  /// Only groups with queued tasks count, and only times after the last dispatch pass: a group
  /// that could have started then and did not is held by something else (a full pool, the
  /// budget), whose change is an input of its own (no busy loop on a time in the past).
  func fleetWakeMs() -> Int64? {
    guard !fleet.paused, queuedByPriority.contains(where: { $0 > 0 }) else { return nil }
    var t: Int64? = nil
    for g in fleet.groups where g.limiter != nil && g.queuedTotal > 0 && !g.paused {
      var tokens = 0
      if g.limiter?.config.tokensPerMin != nil, let p = g.queued.lastIndex(where: { $0 > 0 }) {
        // The first entry still queued (as `head`, without moving past the stale ones).
        for e in g.queues[p][g.heads[p]...] {
          guard let t = tasks[e.n], t.inQueue, t.enqueueSeq == e.seq else { continue }
          tokens = t.budget
          break
        }
      }
      let at = g.limiter!.nextReadyMs(tokens: tokens)
      if at > fleet.lastPassMs { t = min(t ?? at, at) }
    }
    for l in fleet.typeLimiters.values {
      let at = l.nextReadyMs(tokens: 0)
      if at > fleet.lastPassMs { t = min(t ?? at, at) }
    }
    // A type's tokens-per-minute bucket: the time the held task's own tokens are there. Without
    // it the timer saw only the type's starts, and such a task waited for some other input.
    if let at = fleet.typeReadyMs, at > fleet.lastPassMs { t = min(t ?? at, at) }
    return t
  }

  /// SIGHUP: applies the config (`applyFleetConfig`) and returns, for the log, a `group.updated`
  /// event (reason `config_reloaded`) for each group whose limit set live it replaced. Recovery
  /// replays it; without it a kill -9 after a reload replayed the `group set` before it, and the
  /// limit the reload had dropped came back.
  public mutating func reloadFleetConfig(now: Int64) -> [Event] {
    let live = fleet.groups.indices.compactMap { g in fleet.groups[g].parallelLive.map { (g, $0) } }
    applyFleetConfig(now: now)
    return live.map { g, was in
      let name = fleet.groups[g].name
      let n = fleet.groups[g].parallel
      return Event(
        "group.updated", reason: "config_reloaded",
        detail: "group \(name): parallel \(was) → \(n), config.json's in place of the limit set with cortex group set",
        fields: [("group", .string(name)), ("parallel_from", .int(Int64(was))), ("parallel", .int(Int64(n)))])
    }
  }

  /// Applies the config's group and worker-type settings (at start and after SIGHUP). Limits set
  /// live are replaced by the config's; learned rates are kept under new ceilings.
  public mutating func applyFleetConfig(now: Int64) {
    for (name, _) in config.groups { _ = groupIndex(name) }
    for g in fleet.groups.indices {
      let c = config.group(fleet.groups[g].name)
      fleet.groups[g].parallel = c?.parallel ?? 0
      fleet.groups[g].parallelLive = nil
      if let r = c?.rate {
        if fleet.groups[g].limiter == nil {
          fleet.groups[g].limiter = RateLimiter(r, now: now)
        } else if fleet.groups[g].limiter!.config != r {
          fleet.groups[g].limiter!.reconfigure(r, now: now)
        }
      } else {
        fleet.groups[g].limiter = nil
      }
    }
    var types: [String: RateLimiter] = [:]
    for (name, wt) in config.workerTypes {
      guard let r = wt.rate else { continue }
      if var old = fleet.typeLimiters[name] {
        if old.config != r { old.reconfigure(r, now: now) }
        types[name] = old
      } else {
        types[name] = RateLimiter(r, now: now)
      }
    }
    fleet.typeLimiters = types
    wakeAllGroups()
    // Cached group indexes of queued tasks stay valid: groups are never removed.
  }
}
