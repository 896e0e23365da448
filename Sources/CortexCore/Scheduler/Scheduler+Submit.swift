/// Admission: a batch is accepted whole or refused whole, with the reason in the log.
extension Scheduler {
  /// Reply shapes: {"ok":true,"ids":[...]} · {"ok":false,"code":65,"field":..,"error":..} ·
  /// {"ok":false,"code":75,"reason":..,"error":..}. In a batch of several specs, positions count
  /// from 1 everywhere: `"position": 3`, `"field": "[3].priority"` and "task 3 of 5: …" in the
  /// message (the CLI adds the line of a `--from` file).
  public static func invalid(_ e: SpecError, index: Int?, of count: Int) -> JSON {
    invalid(e, position: index.map { $0 + 1 }, of: count > 1 ? count : (index == nil ? nil : count))
  }

  /// `position` counts from 1; `total` nil when the batch's size is not known yet (a part).
  public static func invalid(_ e: SpecError, position: Int?, of total: Int?) -> JSON {
    guard let position, total.map({ $0 > 1 }) ?? true else {
      return .object([
        ("ok", .bool(false)), ("code", .int(65)), ("field", .string(e.field)), ("error", .string(e.description)),
      ])
    }
    return .object([
      ("ok", .bool(false)), ("code", .int(65)), ("field", .string("[\(position)].\(e.field)")),
      ("position", .int(Int64(position))), ("error", .string("\(Self.task(position, of: total)): \(e)")),
    ])
  }

  /// "task 3 of 5" (or "task 3" when the total is not known).
  static func task(_ position: Int, of total: Int?) -> String {
    total.map { "task \(position) of \($0)" } ?? "task \(position)"
  }

  public static func refused(_ reason: String, _ detail: String, code: Int = 75, position: Int? = nil) -> JSON {
    var o: [(String, JSON)] = [("ok", .bool(false)), ("code", .int(Int64(code))), ("reason", .string(reason))]
    if let position { o.append(("position", .int(Int64(position)))) }
    o.append(("error", .string(detail)))
    return .object(o)
  }

  mutating func submit(_ client: ClientID, _ specs: [TaskSpec], declared: Int? = nil, now: Int64, into out: inout [Action]) {
    if specs.isEmpty {
      out.append(.reply(client, Self.invalid(SpecError("tasks", "no task given"), index: nil, of: 0), durable: false))
      return
    }
    func refuse(_ reason: String, _ detail: String, code: Int = 75, position: Int? = nil) {
      rejectedSubmits += specs.count
      out.append(
        .log(Event("task.rejected", reason: reason, detail: detail, fields: [("count", .int(Int64(specs.count)))])))
      out.append(.reply(client, Self.refused(reason, detail, code: code, position: position), durable: true))
    }
    /// "task 3 of 5" in a batch, "the task" alone.
    func which(_ i: Int) -> String { specs.count > 1 ? Self.task(i + 1, of: specs.count) : "the task" }
    if phase != .running {
      refuse("daemon_stopping", "the daemon is stopping and admits no new tasks")
      return
    }
    if !admitting {
      // Nothing can be logged; answer without an event.
      out.append(
        .reply(
          client,
          Self.refused("log_unavailable", admissionBlockedReason ?? "the decision log cannot be written"),
          durable: false))
      return
    }

    // Resolve and validate every spec before anything changes.
    var resolved: [(r: Resolved, existing: Int?)] = []
    resolved.reserveCapacity(specs.count)
    var batchKeys: [String: Int] = [:]
    var fresh = 0
    /// The task number each member of the batch will have (a duplicate: the one it repeats).
    var planned: [Int] = []
    /// The same numbers as a set, for dependency checks (kept as `planned` grows: building it
    /// per member made a large batch quadratic).
    var inBatch = Set<Int>()
    var newGroups = Set<String>()
    // Taken out while the batch resolves (resolve reads self), put back after.
    var memo = redactionMemo
    redactionMemo = RedactionMemo()
    defer { redactionMemo = memo }
    for (i, spec) in specs.enumerated() {
      if let key = spec.idempotencyKey, let existing = idempotency[key] ?? batchKeys[key] {
        resolved.append((Resolved(spec: spec), existing))
        planned.append(existing < 0 ? planned[-1 - existing] : existing)
        inBatch.insert(planned[planned.count - 1])
        continue
      }
      do throws(SpecError) {
        // "#N" names an earlier member: its number is known now, before the spec is resolved.
        var withIDs = spec
        // A set, not a search of the list per member: a batch with many `#N` was quadratic.
        var deps = withIDs.dependsOnBatch.isEmpty ? [] : Set(withIDs.dependsOn)
        for pos in withIDs.dependsOnBatch {
          guard pos <= i else {
            throw SpecError("depends_on", "#\(pos) is not an earlier task of this batch (this is task #\(i + 1))")
          }
          if deps.insert(planned[pos - 1]).inserted { withIDs.dependsOn.append(planned[pos - 1]) }
        }
        withIDs.dependsOnBatch = []
        let r = try resolve(withIDs, number: nextTaskNumber + fresh, memo: &memo)
        if let refusal = newGroupRefusal(groupName(r.spec), adding: &newGroups) { throw refusal }
        for d in r.spec.dependsOn where !inBatch.contains(d) {
          guard let st = state(of: d) else {
            throw SpecError("depends_on", TaskID.unknown(d, next: nextTaskNumber))
          }
          if st.isTerminal && st != .succeeded {
            throw SpecError("depends_on", "\(TaskID.format(d)) already ended \(st.rawValue); it can never succeed")
          }
        }
        // `retry_of` links a task to one submitted before it (`cortex retry`, or a client that
        // does the same): a number that names no task would make `show` point at nothing.
        if let old = r.spec.retryOf, state(of: old) == nil {
          throw SpecError(
            "retry_of", "unknown task \(TaskID.format(old)) (retry_of names an earlier task that this one submits again)")
        }
        if r.budget > config.tokenBudgetTotal - tokensUsed {
          // Spent tokens never come back: retrying cannot help, so 65, not 75 (as batch_too_large).
          refuse(
            "token_budget_exhausted",
            "\(which(i)) needs \(r.budget) tokens but only \(config.tokenBudgetTotal - tokensUsed) of the \(config.tokenBudgetTotal) are not spent (spent tokens do not come back: give it a smaller token_budget, or raise token_budget_total in config.json and kill -HUP the daemon)",
            code: 65, position: specs.count > 1 ? i + 1 : nil)
          return
        }
        if let key = spec.idempotencyKey { batchKeys[key] = -1 - i }
        resolved.append((r, nil))
        planned.append(nextTaskNumber + fresh)
        inBatch.insert(nextTaskNumber + fresh)
        fresh += 1
      } catch {
        out.append(.reply(client, Self.invalid(error, index: i, of: specs.count), durable: false))
        return
      }
    }
    let queuedNow = queuedCount
    if fresh > config.maxQueue {
      // Retrying cannot help: 65, not 75, and say what would.
      refuse(
        "batch_too_large",
        "the batch has \(declared.map { "\($0) tasks" } ?? "\(fresh) new tasks") and max_queue is \(config.maxQueue), so it can never be admitted whole; split it into batches of at most \(config.maxQueue), or raise max_queue in config.json (kill -HUP the daemon to reload it)",
        code: 65)
      return
    }
    if queuedNow + fresh > config.maxQueue {
      refuse(
        "queue_full",
        "\(queuedNow) task\(queuedNow == 1 ? " is" : "s are") queued and the limit is \(config.maxQueue) (max_queue); \(fresh) more \(fresh == 1 ? "does" : "do") not fit now; try again as the queue drains"
      )
      return
    }
    if fresh > 0, let wait = estimatedWaitMs(extra: fresh), Double(wait) > config.maxQueueWaitS * 1000 {
      refuse(
        "wait_exceeds_limit",
        "the estimated wait is \(wait / 1000) s and the limit is \(Int(config.maxQueueWaitS)) s")
      return
    }

    if let (i, reason) = slaUnmeetable(resolved.map(\.r.spec), now: now) {
      refuse("sla_unmeetable", "\(which(i)): \(reason)", position: specs.count > 1 ? i + 1 : nil)
      return
    }

    // Accept.
    var ids: [JSON] = []
    var duplicates = 0
    var numbersInBatch: [Int] = []
    for (r, existing) in resolved {
      if var existing {
        if existing < 0 { existing = numbersInBatch[-1 - existing] }
        ids.append(.string(TaskID.format(existing)))
        numbersInBatch.append(existing)
        duplicates += 1
        continue
      }
      let n = nextTaskNumber
      nextTaskNumber += 1
      numbersInBatch.append(n)
      accept(n, r, now: now, into: &out)
      ids.append(.string(TaskID.format(n)))
    }
    var reply: [(String, JSON)] = [("ok", .bool(true)), ("ids", .array(ids))]
    if duplicates > 0 { reply.append(("duplicates", .int(Int64(duplicates)))) }
    out.append(.reply(client, .object(reply), durable: true))
  }

  /// Records a new task, logs `task.submitted`, and queues or blocks it.
  mutating func accept(_ n: Int, _ r: Resolved, now: Int64, into out: inout [Action]) {
    let (spec, budget, timeoutMs, attempts, specJSON, secrets) = (r.spec, r.budget, r.timeoutMs, r.attempts, r.specJSON, r.secrets)
    if !secrets.isEmpty { out.append(.storeSecrets(task: n, secrets)) }
    var rec = TaskRecord(
      number: n, spec: spec, specJSON: specJSON, maxAttempts: attempts, budget: budget, timeoutMs: timeoutMs,
      submittedMs: now)
    rec.state = .queued
    tasks[n] = rec
    counts[.queued, default: 0] += 1
    if let key = spec.idempotencyKey { idempotency.remember(key, task: n) }
    if let old = spec.retryOf { retried.insert(old) }
    out.append(
      .log(
        Event(
          "task.submitted", task: n,
          fields: [
            ("priority", .string(spec.priority.name)), ("token_budget", .int(Int64(budget))),
            ("max_attempts", .int(Int64(attempts))),
          ] + (timeoutMs.map { [("timeout_ms", JSON.int($0))] } ?? [])
            + (secrets.isEmpty ? [] : [("secrets", JSON.array(secrets.paths.map { .string($0) }))]), specJSON: specJSON)))
    if let r = spec.routed, spec.retryOf == nil {
      // The client chose the type from the description: its reason goes into the log with the task.
      out.append(
        .log(
          Event(
            "task.routed", task: n, reason: r.word, detail: r.reason,
            fields: [("routed_to", .string(spec.type ?? "")), ("confidence", .double(r.confidence))])))
    }
    out.append(.writeSpec(task: n))
    let unmet = spec.dependsOn.filter { state(of: $0) != .succeeded }
    if unmet.isEmpty {
      enqueue(n)
    } else {
      blocked.insert(n)
      for d in unmet { dependents[d, default: []].append(n) }
      noteWaiting(n, "dependencies", "waiting for \(unmet.map(TaskID.format).joined(separator: ", "))", into: &out)
    }
  }

  /// A spec ready to accept: defaults and template applied, and its secrets split off once
  /// (`specJSON` is the redacted spec as the log, snapshots and answers carry it).
  struct Resolved {
    var spec: TaskSpec
    var budget = 0
    var timeoutMs: Int64? = nil
    var attempts = 0
    var specJSON: [UInt8] = []
    var secrets = SpecSecrets()
  }

  /// Applies the worker type's defaults and template; validates what only the config can tell.
  func resolve(_ spec: TaskSpec, number: Int, memo: inout RedactionMemo) throws(SpecError) -> Resolved {
    var s = spec
    var type: Config.WorkerType?
    if let t = spec.type, t != "synthetic", t != "exec" {
      guard let wt = config.workerType(t) else {
        let known = config.workerTypes.map(\.0)
        let near = Suggest.nearest(t, among: known).map { "did you mean \(quoted($0))? " } ?? ""
        throw SpecError("type", "unknown worker type \(quoted(t)) (\(near)known: \(known.joined(separator: ", ")))")
      }
      type = wt
    }
    if !s.hasWork {
      if let c = type?.command {
        s.command = try c.map { (a) throws(SpecError) -> String in try Self.fill(a, spec: s, number: number) }
        s.agent = s.agent ?? type?.agent
      } else if let sh = type?.shell {
        s.shell = try Self.fill(sh, spec: s, number: number, quote: Self.shellQuote)
      } else if type != nil, let agent = s.agent ?? type?.agent ?? config.agent {
        try Self.applyAgent(agent, to: &s)
      } else if type != nil, type?.agent == nil, config.agent == nil, s.description != nil {
        throw SpecError("agent", "type \(quoted(spec.type ?? "")): " + AgentKind.installAdvice)
      } else if let t = spec.type, type != nil {
        throw SpecError(
          "command",
          "worker type \(quoted(t)) has no command template; give a command (-- CMD ARGS), --shell or --synthetic, or add one to config.json: \"worker_types\": {\(JSON.string(t).encoded()): {\"command\": [\"my-agent\", \"{description}\"]}}"
        )
      } else if s.description != nil {
        // A batch line or an inbox file is not routed (only `task create --description` is).
        throw SpecError(
          "type",
          "a description alone needs a worker type to run it: give \"type\" (\(config.workerTypes.map(\.0).joined(separator: ", "))); cortex task create --description without --type picks one by routing"
        )
      } else {
        throw SpecError("command", "nothing to run: give a command, --shell, --synthetic, or a --type with a template")
      }
    }
    try TaskSpec.checkTimeout("timeout_s", s.timeoutS)
    let budget = s.tokenBudget ?? type?.tokenBudget ?? s.synthetic?.tokens ?? 0
    let timeout = s.timeoutS ?? type?.timeoutS
    let (redacted, secrets) = s.redacted(memo: &memo)
    let specJSON = redacted.encodedBytes()
    if specJSON.count > config.maxSpecBytes {
      throw SpecError("spec", "is \(specJSON.count) bytes; the limit is \(config.maxSpecBytes)")
    }
    return Resolved(
      spec: s, budget: budget, timeoutMs: timeout.map { Numbers.ms(fromSeconds: $0) },
      attempts: s.maxAttempts ?? config.defaultMaxAttempts, specJSON: specJSON, secrets: secrets)
  }

  /// A typed task run by an agent CLI: the agent's own argv with the description as one element.
  static func applyAgent(_ agent: AgentKind, to s: inout TaskSpec) throws(SpecError) {
    guard let d = s.description, !d.isEmpty else {
      throw SpecError("description", "an agent task needs --description (what the agent is asked to do)")
    }
    guard let argv = agent.argv(description: d) else {
      throw SpecError("agent", "the jsonl agent has no program of its own: give the worker type a \"command\" template")
    }
    s.command = argv
    s.agent = agent
  }

  /// Replaces `{description}` and `{task_id}` (Template); every other brace stays as written. In
  /// an argv template each value stays inside its one argument; in a shell template every value
  /// is `quote`d, so no description can become shell syntax (`'…'`, with `'` as `'\''`).
  /// A placeholder must not sit inside quotes of the template itself: `{description}`, not `'{description}'`.
  static func fill(
    _ template: String, spec: TaskSpec, number: Int, quote: (String) -> String = { $0 }
  ) throws(SpecError) -> String {
    var out = ""
    for piece in Template.pieces(template) {
      switch piece {
      case .text(let t): out += t
      case .description:
        guard let d = spec.description, !d.isEmpty else {
          throw SpecError("description", "the type's template needs {description}; give --description")
        }
        out += quote(d)
      case .taskID: out += quote(TaskID.format(number))
      }
    }
    return out
  }

  /// One shell word holding exactly `s`: single quotes, each `'` written as `'\''`.
  public static func shellQuote(_ s: String) -> String {
    var out = "'"
    for ch in s {
      if ch == "'" { out += "'\\''" } else { out.append(ch) }
    }
    return out + "'"
  }

  /// Estimated milliseconds before a newly queued task would start, from the running estimates.
  public func estimatedWaitMs(extra: Int = 0, priority: Priority = .low) -> Int64? {
    let ahead =
      Priority.allCases.filter { $0 >= priority }.reduce(0) { $0 + queuedByPriority[$1.rawValue] }
      + delayed.count + extra - 1
    let pool = max(1, desiredWorkers - config.reserveCritical)
    let total = estimates.values.reduce(0) { $0 + $1.count }
    guard total > 0 else { return ahead < pool ? 0 : nil }
    let mean = estimates.values.reduce(0.0) { $0 + $1.ewmaDurationMs * Double($1.count) } / Double(total)
    if ahead < idle.count { return 0 }
    return Numbers.ms(Double(max(0, ahead - idle.count) / pool + 1) * mean)
  }

  /// The first spec whose SLA deadline the running estimates say cannot be met, and why.
  func slaUnmeetable(_ specs: [TaskSpec], now: Int64) -> (Int, String)? {
    for (i, s) in specs.enumerated() {
      guard let deadline = s.slaDeadlineMs else { continue }
      if deadline <= now { return (i, "its SLA deadline \(Timestamp.rfc3339(ms: deadline)) has passed") }
      let type = s.type ?? (s.synthetic != nil ? "synthetic" : "exec")
      let run = Int64(estimates[type].map { $0.quantile(0.5) ?? $0.ewmaDurationMs } ?? Double(s.synthetic?.durationMs ?? 0))
      guard let wait = estimatedWaitMs(extra: 1, priority: s.priority) else { continue }
      if now + wait + run > deadline {
        return (
          i,
          "estimated to finish at \(Timestamp.rfc3339(ms: now + wait + run)) (wait \(wait) ms + run \(run) ms), after its SLA deadline \(Timestamp.rfc3339(ms: deadline))"
        )
      }
    }
    return nil
  }

  /// When a queued task whose reservation does not fit the tokens available now starts, in
  /// words (`cortex show`, `submit -v`); nil when it fits. Tokens reserved by running tasks come
  /// back as they end; a place in the queue alone promised a start "in about 0ms".
  public func budgetHoldDetail(_ n: Int) -> String? {
    guard let t = tasks[n], t.state == .queued, t.budget > budgetAvailable else { return nil }
    return
      "when tokens come back (it needs \(t.budget), \(max(0, budgetAvailable)) are available and \(tokensReserved) reserved by running tasks)"
  }

  /// The same for a task below `critical` while only the idle workers `reserve_critical` keeps
  /// for critical tasks are free (dispatch's rule, `admit`).
  public func reserveHoldDetail(_ n: Int) -> String? {
    guard config.reserveCritical > 0, let t = tasks[n], t.state == .queued, t.spec.priority != .critical,
      idle.count <= config.reserveCritical
    else { return nil }
    return "when a worker is free beyond the \(config.reserveCritical) kept idle for critical tasks (reserve_critical)"
  }

  /// Position in the queue (1 = next) and estimated start for a queued task.
  public func queuePosition(_ n: Int) -> (position: Int, estimatedStartMs: Int64?)? {
    guard let t = tasks[n], t.state == .queued, !blocked.contains(n), !delayed.contains(n) else { return nil }
    var ahead = 0
    for p in Priority.allCases where p > t.spec.priority { ahead += queuedByPriority[p.rawValue] }
    // Same priority, queued earlier, in any group (Scheduler+Groups).
    let p = t.spec.priority.rawValue
    for g in fleet.groups {
      for e in g.queues[p][g.heads[p]...] {
        if e.seq >= t.enqueueSeq { break }
        if let m = tasks[e.n], m.inQueue, m.enqueueSeq == e.seq { ahead += 1 }
      }
    }
    let est = estimates[t.type] ?? estimates.values.first
    let pool = max(1, desiredWorkers - config.reserveCritical)
    let start = est.map { Numbers.ms(Double(ahead / pool) * $0.ewmaDurationMs) }
    return (ahead + 1, start)
  }

  mutating func cancel(_ client: ClientID, _ ids: [Int], now: Int64, into out: inout [Action]) {
    var results: [(String, JSON)] = []
    var pending: Set<Int> = []
    for n in ids {
      let id = TaskID.format(n)
      guard var t = tasks[n] else {
        if let st = finishedStates[n] {
          results.append((id, .string("already \(st.rawValue)")))
        } else {
          results.append((id, .string("unknown task")))
        }
        continue
      }
      switch t.state {
      case .queued:
        finish(n, .cancelled, reason: "cancelled", detail: "cancelled before it started", now: now, into: &out)
        results.append((id, .string("cancelled")))
      case .assigned, .running:
        if t.stopping == nil {
          askToStop(&t, .cancel, detail: "cancel requested", now: now, into: &out)
          tasks[n] = t
        }
        pending.insert(n)
        cancelWaiters[n, default: []].append(client)
        results.append((id, .string("cancelling")))
      default:
        results.append((id, .string("already \(t.state.rawValue)")))
      }
    }
    if pending.isEmpty {
      out.append(.reply(client, .object([("ok", .bool(true)), ("results", .object(results))]), durable: true))
    } else {
      cancelRequests[client] = (pending, results)
    }
  }

  mutating func wait(_ client: ClientID, _ ids: [Int], into out: inout [Action]) {
    var pending: Set<Int> = []
    for n in ids {
      guard let st = state(of: n) else {
        out.append(
          .reply(
            client, Self.invalid(SpecError("id", TaskID.unknown(n, next: nextTaskNumber)), index: nil, of: 1),
            durable: false))
        return
      }
      if !st.isTerminal { pending.insert(n) }
    }
    if pending.isEmpty {
      out.append(.reply(client, waitReply(ids), durable: false))
      return
    }
    waitRequests[client] = (pending, ids)
    for n in pending { taskWaiters[n, default: []].append(client) }
  }

  func waitReply(_ ids: [Int]) -> JSON {
    .object([
      ("ok", .bool(true)),
      (
        "tasks",
        .array(
          ids.map { n in
            let t = tasks[n]
            var o: [(String, JSON)] = [
              ("id", .string(TaskID.format(n))), ("state", .string(state(of: n)?.rawValue ?? "unknown")),
              ("exit_code", t?.exitCode.map { .int(Int64($0)) } ?? .null),
              ("signal", t?.signal.map { .int(Int64($0)) } ?? .null),
              ("reason", t?.reason.map { .string($0) } ?? .null),
            ]
            if let d = t?.detail { o.append(("detail", .string(d))) }
            // Only its final state is held here; the daemon adds the compact record's details.
            if t == nil { o.append(("compact", .bool(true))) }
            return .object(o)
          })
      ),
    ])
  }

  /// Forgets a client that hung up (its waits are dropped; its tasks are not affected).
  public mutating func clientGone(_ c: ClientID) {
    if let w = waitRequests.removeValue(forKey: c) {
      for n in w.pending { taskWaiters[n]?.removeAll { $0 == c } }
    }
    if let p = cancelRequests.removeValue(forKey: c) {
      for n in p.pending { cancelWaiters[n]?.removeAll { $0 == c } }
    }
  }

  mutating func noteWaiting(_ n: Int, _ reason: String, _ detail: String, into out: inout [Action]) {
    guard tasks[n]?.waitingReason != reason else { return }
    tasks[n]?.waitingReason = reason
    out.append(.log(Event("task.waiting", task: n, reason: reason, detail: detail)))
  }
}
