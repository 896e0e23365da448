/// The scheduler's side of a shared queue (cluster mode, SPEC §11). The scheduler never talks to
/// the database: the daemon's adapter validates a batch here before sending it to the shared
/// queue (`prepare`), and feeds the tasks this node claimed back in (`adopt`), numbered as the
/// cluster numbered them. Everything after that — dispatch, timeouts, retries, cancel, the log —
/// is the same as for a local task.
extension Scheduler {
  /// A task this node claimed from the shared queue.
  public struct Adopted: Sendable {
    public var number: Int
    public var spec: TaskSpec
    public var budget: Int
    public var timeoutMs: Int64?
    public var maxAttempts: Int
    /// The cluster's attempt: 1 for a first claim, more once a dead node's task is rescued.
    public var attempt: Int
    public init(number: Int, spec: TaskSpec, budget: Int, timeoutMs: Int64?, maxAttempts: Int, attempt: Int = 1) {
      self.number = number
      self.spec = spec
      self.budget = budget
      self.timeoutMs = timeoutMs
      self.maxAttempts = maxAttempts
      self.attempt = attempt
    }
  }

  /// A batch checked as `submit` would check it (fields, worker types, templates, sizes), with
  /// each task's budget, timeout and attempts, or the refusal to send back. Specs are kept as
  /// given: templates are filled by the node that claims the task, when its id is known.
  public func prepare(_ specs: [TaskSpec]) -> Result<[Adopted], RefusalReply> {
    if specs.isEmpty { return .failure(RefusalReply(Self.invalid(SpecError("tasks", "no task given"), index: nil, of: 0))) }
    if phase != .running {
      return .failure(RefusalReply(Self.refused("daemon_stopping", "the daemon is stopping and admits no new tasks")))
    }
    if !admitting {
      return .failure(
        RefusalReply(Self.refused("log_unavailable", admissionBlockedReason ?? "the decision log cannot be written")))
    }
    if specs.count > config.maxQueue {
      return .failure(
        RefusalReply(
          Self.refused(
            "batch_too_large",
            "the batch has \(specs.count) tasks and max_queue is \(config.maxQueue), so it can never be admitted whole; split it, or raise max_queue in config.json",
            code: 65)))
    }
    var out: [Adopted] = []
    var newGroups = Set<String>()
    var memo = RedactionMemo()
    for (i, spec) in specs.enumerated() {
      // Dependencies are the cluster's to check (they may be anywhere in it): here only that a
      // "#N" names an earlier task of this batch.
      if let pos = spec.dependsOnBatch.first(where: { $0 < 1 || $0 > i }) {
        return .failure(
          RefusalReply(
            Self.invalid(
              SpecError("depends_on", "#\(pos) is not an earlier task of this batch (this is task #\(i + 1))"), index: i,
              of: specs.count)))
      }
      do throws(SpecError) {
        let r = try resolve(spec, number: 0, memo: &memo)
        if let refusal = newGroupRefusal(groupName(r.spec), adding: &newGroups) { throw refusal }
        out.append(Adopted(number: 0, spec: spec, budget: r.budget, timeoutMs: r.timeoutMs, maxAttempts: r.attempts))
      } catch {
        return .failure(RefusalReply(Self.invalid(error, index: i, of: specs.count)))
      }
    }
    return .success(out)
  }

  /// Takes claimed tasks in: each is logged (`task.claimed`) and queued. A task still live here
  /// is the same claim again and is ignored; one that ended here under an earlier claim (fenced,
  /// then given back to this node) starts afresh.
  mutating func adopt(_ list: [Adopted], node: String, now: Int64, into out: inout [Action]) {
    for a in list {
      if let t = tasks[a.number] {
        if !t.state.isTerminal { continue }
        counts[t.state, default: 0] -= 1
        finishedOrder.removeAll { $0 == a.number }
        tasks[a.number] = nil
      }
      finishedStates[a.number] = nil
      var spec = a.spec
      var memo = RedactionMemo()
      if !spec.hasWork, let r = try? resolve(spec, number: a.number, memo: &memo) { spec = r.spec }
      let (redacted, _) = spec.redacted()
      // Logged and shown with its dependencies; but the cluster released it once they succeeded,
      // so they need not be known here.
      let specJSON = redacted.encodedBytes()
      spec.dependsOn = []
      spec.dependsOnBatch = []
      var rec = TaskRecord(
        number: a.number, spec: spec, specJSON: specJSON, maxAttempts: a.maxAttempts, budget: a.budget, timeoutMs: a.timeoutMs,
        submittedMs: now)
      rec.state = .queued
      // Counted from the cluster's attempt (`cortex list`, `show`, events): a rescued task is
      // not a first attempt. As a requeue on a single host, a rescue uses up an attempt only
      // while attempts are left.
      rec.attempt = max(1, a.attempt)
      rec.maxAttempts = max(a.maxAttempts, rec.attempt)
      tasks[a.number] = rec
      counts[.queued, default: 0] += 1
      nextTaskNumber = max(nextTaskNumber, a.number + 1)
      out.append(
        .log(
          Event(
            "task.claimed", task: a.number, attempt: rec.attempt, reason: "cluster_claim",
            fields: [
              ("node", .string(node)), ("priority", .string(spec.priority.name)), ("token_budget", .int(Int64(a.budget))),
              ("max_attempts", .int(Int64(a.maxAttempts))),
            ], specJSON: specJSON)))
      if spec.hasWork {
        enqueue(a.number)
      } else {
        finish(
          a.number, .rejected, reason: "no_template", detail: "this node cannot run it: its type has no template here", now: now, into: &out
        )
      }
    }
  }

  /// Replays a logged claim (`task.claimed`) as `adopt` took it: a claim made after the last
  /// snapshot was skipped by the replay, so a node killed then forgot it at its next start and
  /// its log kept a task that started and never ended (`returnToSharedQueue` ends it now).
  mutating func replayClaim(_ e: JSON, number n: Int, tsMs: Int64) {
    if let t = tasks[n] {
      guard t.state.isTerminal else { return }
      counts[t.state, default: 0] -= 1
      finishedOrder.removeAll { $0 == n }
      tasks[n] = nil
    }
    guard let specV = e["spec"], var spec = try? TaskSpec.decode(specV) else { return }
    finishedStates[n] = nil
    spec.dependsOn = []
    spec.dependsOnBatch = []
    let attempt = Int(e["attempt"]?.int ?? 1)
    var rec = TaskRecord(
      number: n, spec: spec, specJSON: specV.encodedBytes(), maxAttempts: max(Int(e["max_attempts"]?.int ?? 1), attempt),
      budget: Int(e["token_budget"]?.int ?? 0), timeoutMs: nil, submittedMs: tsMs)
    rec.state = .queued
    rec.attempt = attempt
    tasks[n] = rec
    counts[.queued, default: 0] += 1
    nextTaskNumber = max(nextTaskNumber, n + 1)
  }

  /// How many more tasks this node should claim now: its idle workers, plus some held ready here
  /// so a worker that finishes never waits for a database round trip, less what is already
  /// queued here. Held ready: twice the pool, or ten times when tasks here take under 50 ms on
  /// average (short tasks need deep batches to keep the pool busy; long ones must not be hoarded
  /// by one node while another is idle).
  public var spareCapacity: Int {
    guard phase == .running, admitting else { return 0 }
    let seen = estimates.values.filter { $0.count > 0 }
    let mean = seen.isEmpty ? Double.infinity : seen.map(\.ewmaDurationMs).reduce(0, +) / Double(seen.count)
    return max(0, idle.count + Self.claimAhead(workers: desiredWorkers, meanRunMs: mean) - queuedCount)
  }

  /// The queue a cluster node holds ready beyond its idle workers: about a second of its workers'
  /// work (a claim is one round trip, and a node claims at least once a second), at most twice
  /// the pool (ten times while tasks take under 50 ms). None while it has seen no task end (the
  /// mean is unknown, infinite here) and none for tasks of a second or more: a claimed task waits
  /// for a worker of this node even while another node idles (three 60 s tasks and one worker on
  /// each of two nodes all went to the first, when the queue ahead was twice the pool whatever
  /// the tasks took).
  public static func claimAhead(workers: Int, meanRunMs: Double) -> Int {
    let cap = workers * (meanRunMs < 50 ? 10 : 2)
    guard meanRunMs.isFinite, meanRunMs > 0 else { return meanRunMs.isFinite ? cap : 0 }
    return min(cap, Int(Double(workers) * 1000 / meanRunMs))
  }

  /// How many more tasks this node could start at once: its idle workers less the tasks queued
  /// here that could take them (not those of a paused group, nor those a full group holds back).
  /// A cluster node claims a limited group's tasks only for these (docs/fleet.md).
  public var startableNow: Int {
    guard phase == .running, admitting, !idle.isEmpty else { return 0 }
    var ready = 0
    for g in fleet.groups where !g.paused {
      let q = g.queuedTotal
      ready += g.parallel > 0 ? min(q, max(0, g.parallel - g.running)) : q
    }
    return max(0, idle.count - ready)
  }
}

/// A reply refusing a request, as the scheduler would have sent it.
public struct RefusalReply: Error, Sendable {
  public let json: JSON
  public init(_ json: JSON) { self.json = json }
}

extension Scheduler {
  /// At a cluster node's start: the unfinished tasks its log holds were claims of its previous
  /// membership, which the new epoch fences; the cluster requeues them. Each local copy ends here
  /// (`cancelled`, reason `returned_to_cluster`) and any process group left behind is killed.
  public mutating func returnToSharedQueue(now: Int64, into out: inout [Action]) -> Int {
    var n = 0
    for id in tasks.keys.sorted() {
      guard let t = tasks[id], !t.state.isTerminal else { continue }
      if let pg = t.pid { out.append(.killGroup(pgid: pg, hard: true)) }
      tasks[id]!.pid = nil
      finish(
        id, .cancelled, reason: "returned_to_cluster",
        detail: "claimed by this node before it restarted; the cluster runs it again under a new claim", now: now, into: &out)
      forgetReturned(id)
      n += 1
    }
    return n
  }

  /// A task handed back to the cluster is not an outcome of this node: once its terminal event is
  /// logged (the log keeps it), it leaves the node's records and counts. `cortex status`, `top`
  /// and the hot state counted it as cancelled, a cancel nobody asked for.
  mutating func forgetReturned(_ n: Int) {
    guard let t = tasks[n], t.state.isTerminal else { return }
    counts[t.state, default: 0] -= 1
    tasks[n] = nil
    finishedOrder.removeAll { $0 == n }
    finishedStates[n] = nil
  }
}
