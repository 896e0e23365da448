import CortexCore
import Posix

/// The control socket: one handler per request `op`, named as the CLI command that sends it.
/// Requests are decoded and range-checked by `Request.decode` (CortexCore) before anything here.
extension Daemon {
  func reply(_ id: ClientID, _ v: JSON, now t: Int64) {
    if let file = inboxPending.removeValue(forKey: id) {
      settleInboxFile(file, reply: v)
      return
    }
    guard let c = clients[id] else { return }
    c.send(v)
    if c.owed > 0 {
      c.owed -= 1
      if c.owed == 0 { c.lastActivityMs = t }
    }
    finishClientIO(c)
  }

  static func usageError(_ msg: String) -> JSON { Request.Failure.usage(msg).reply }

  func handleRequest(_ id: ClientID, _ json: JSON, now t: Int64) {
    if let c = clients[id], c.reserved, let op = json["op"]?.string, op != "ping", op != "stop" {
      reply(
        id,
        Scheduler.refused(
          "too_many_connections",
          "the daemon serves \(maxClients) connections at once (max_clients in config.json); past that it answers only ping and stop; try again shortly"
        ), now: t)
      c.lines.reset()
      c.inputEnded = true
      finishClientIO(c)
      return
    }
    let req: Request
    do throws(Request.Failure) {
      req = try Request.decode(json)
    } catch {
      if case .invalidTask(let e, let index, let total, let more) = error {
        // Positions count from 1 across the parts of a batch held so far.
        let held = clients[id]?.heldSpecs.count ?? 0
        clients[id]?.dropHeldBatch()
        reply(id, Scheduler.invalid(e, position: held + index + 1, of: total ?? (more ? nil : held + index + 1)), now: t)
      } else {
        if case .invalid(let e, _, _) = error, e.field == "tasks" { clients[id]?.dropHeldBatch() }
        reply(id, error.reply, now: t)
      }
      return
    }
    switch req {
    case .ping: handlePing(id, now: t)
    case .submit(let specs, let more, let count): handleSubmit(id, specs, more: more, count: count, now: t)
    case .wait(let ids):
      if let cluster { cluster.watch(id, ids, cancel: false) } else { feed(.wait(id, ids), now: t) }
    case .cancel(let ids):
      if let cluster { clusterCancel(cluster, id, ids, now: t) } else { feed(.cancel(id, ids), now: t) }
    case .list(let state, let type, let limit):
      if let cluster {
        cluster.list(id, state: state, type: type, limit: limit)
      } else {
        handleList(id, state: state, type: type, limit: limit, now: t)
      }
    case .show(let n):
      if let cluster, scheduler.tasks[n] == nil { cluster.describe(id, n) } else { handleShow(id, n, now: t) }
    case .workers:
      reply(id, .object([("ok", .bool(true)), ("workers", scheduler.workersSnapshot(seq: log.lastSeq, nowMs: t))]), now: t)
    case .budget:
      reply(id, .object([("ok", .bool(true)), ("budget", scheduler.budgetSnapshot(seq: log.lastSeq, nowMs: t))]), now: t)
    case .scale(let n): feed(.scale(id, n), now: t)
    case .stop(let timeoutMs): requestStop(timeoutMs: timeoutMs, client: id, now: t)
    case .fleet(let cmd): handleFleet(id, cmd, now: t)
    case .clean(let rule): handleClean(id, rule: rule, now: t)
    }
  }

  /// What only this host can check (a `cwd` that exists), then the scheduler's admission.
  /// `inbox`: the inbox file the batch comes from (its name and the CRC32C of its bytes), which
  /// each `task.submitted` this submit logs names (`InboxLedger`); in cluster mode the database
  /// records it with the batch (`ClusterStore+Inbox`).
  func submit(
    _ id: ClientID, _ specs: [TaskSpec], declared: Int? = nil, inbox: (name: String, crc32c: UInt32)? = nil, now t: Int64
  ) {
    for (i, spec) in specs.enumerated() {
      if let cwd = spec.cwd, !FileSystem.isDirectory(cwd) {
        let why = FileSystem.exists(cwd) ? "is not a directory" : "does not exist"
        reply(id, Scheduler.invalid(SpecError("cwd", "\(quoted(cwd)) \(why)"), index: i, of: specs.count), now: t)
        return
      }
    }
    checkFreeSpace(now: t)
    if let cluster {
      clusterSubmit(cluster, id, specs, inbox: inbox, now: t)
      return
    }
    var out: [Action] = []
    scheduler.handle(.submit(id, specs, declared: declared), now: t, into: &out)
    if let inbox {
      let stamp = InboxLedger.fields(file: inbox.name, crc32c: inbox.crc32c)
      out = out.map { a in
        guard case .log(var e) = a, e.type == "task.submitted" else { return a }
        e.fields += stamp
        return .log(e)
      }
    }
    route(out, now: t)
  }

  func handlePing(_ id: ClientID, now t: Int64) {
    let ready = readyWorkers
    // `cortex start` returns on this answer, and a `cortex status` right after reads the hot
    // state: it must not be up to one write interval older than what the answer said.
    if hotDirty { updateHotState(now: t) }
    let phase: String =
      switch scheduler.phase {
      case .running: "running"
      case .draining: "draining"
      case .exiting: "exiting"
      case .stopped: "stopped"
      }
    var answer: [(String, JSON)] = [
      ("ok", .bool(true)), ("pid", .int(Int64(Processes.currentID))), ("workers", .int(Int64(scheduler.desiredWorkers))),
      ("workers_ready", .int(Int64(ready))), ("ready", .bool(ready >= scheduler.desiredWorkers)),
      ("phase", .string(phase)), ("seq", .int(Int64(log.lastSeq))), ("admitting", .bool(scheduler.admitting)),
      ("started_ms", .int(startedMs)), ("config_reloads", .int(Int64(configReloads))),
    ]
    if let e = configReloadError { answer.append(("config_error", .string(e))) }
    if let e = restartFailure { answer += [("restart_failures", .int(Int64(restartFailures))), ("restart_failure", .string(e))] }
    if let cluster { answer.append(("cluster_node", .string(cluster.node))) }
    if clusterSettingsChanged { answer.append(("cluster_changed", .bool(true))) }
    reply(id, .object(answer), now: t)
  }

  /// A batch may come in parts (`"more": true` on all but the last, each answered
  /// `{"ok":true,"held":N}`; `"count"` is the whole batch's size, for messages), so no request
  /// line has to hold a whole batch; the parts are held on the connection and the scheduler sees
  /// the batch whole, accepted or refused as one.
  func handleSubmit(_ id: ClientID, _ specs: [TaskSpec], more: Bool, count: Int? = nil, now t: Int64) {
    let c = clients[id]
    let held = c?.heldSpecs ?? []
    guard more, let c else {
      c?.dropHeldBatch()
      submit(id, held + specs, now: t)
      return
    }
    let limit = config.clientInputLimit
    if c.heldBytes + c.currentLineBytes > limit {
      c.dropHeldBatch()
      reply(
        id,
        .object([
          ("ok", .bool(false)), ("code", .int(65)), ("reason", .string("batch_too_large")), ("field", .string("tasks")),
          (
            "error",
            .string(
              "tasks: the batch is larger than the \(limit) bytes the daemon holds for unfinished requests (max_client_input_bytes in config.json; SIGHUP reloads it); split it into smaller batches"
            )
          ),
        ]), now: t)
      return
    }
    c.heldSpecs = held + specs
    c.heldBytes += c.currentLineBytes
    countInput(c)
    if clientInputBytes > limit {
      c.dropHeldBatch()
      reply(id, Self.inputFull(config), now: t)
      return
    }
    if c.heldSpecs.count > config.maxQueue {
      // It can never be admitted: let the scheduler refuse it (and log why) now, naming the
      // whole batch's size (the parts held so far are only the start of it).
      let all = c.heldSpecs
      c.dropHeldBatch()
      submit(id, all, declared: count, now: t)
      return
    }
    reply(id, .object([("ok", .bool(true)), ("held", .int(Int64(c.heldSpecs.count)))]), now: t)
  }

  /// Full records of the tasks the daemon keeps in memory, then (without `--type`, which they do
  /// not record) the compact records of older finished tasks: id and terminal state.
  func handleList(_ id: ClientID, state: String?, type: String?, limit: Int, now t: Int64) {
    func matches(_ st: TaskState) -> Bool {
      guard let state else { return true }
      switch state {
      case "active": return !st.isTerminal
      case "done": return st.isTerminal
      default: return st.rawValue == state
      }
    }
    var rows: [(Int, JSON)] = scheduler.tasks.values.filter { rec in
      matches(rec.state) && (type == nil || rec.type == type)
    }.map { rec -> (Int, JSON) in
      var row = scheduler.taskJSON(rec, withSpec: false)
      // The labels, for `cortex list --label` (which picks them out) and `--json`.
      if !rec.spec.labels.isEmpty, case .object(var o) = row {
        o.append(("labels", .object(rec.spec.labels.map { ($0.0, .string($0.1)) })))
        row = .object(o)
      }
      return (rec.number, row)
    }
    if type == nil && state != "active" {
      for run in scheduler.finishedStates.runs where matches(run.state) {
        for n in run.first...run.last where scheduler.tasks[n] == nil {
          rows.append(
            (n, .object([("id", .string(TaskID.format(n))), ("state", .string(run.state.rawValue)), ("compact", .bool(true))])))
        }
      }
    }
    rows.sort { $0.0 < $1.0 }
    if limit > 0 && rows.count > limit { rows = Array(rows.suffix(limit)) }
    reply(id, .object([("ok", .bool(true)), ("tasks", .array(rows.map(\.1)))]), now: t)
  }

  func handleShow(_ id: ClientID, _ n: Int, now t: Int64) {
    if let rec = scheduler.tasks[n] {
      var v = (scheduler.taskJSON(rec).object ?? []) + scheduler.showDetails(rec)
      // SPEC §11: show names the node, here too (a task this node holds: it runs or ran here).
      if let cluster { v.append(("node", .string(cluster.node))) }
      if let pos = scheduler.queuePosition(n) {
        v.append(("queue_position", .int(Int64(pos.position))))
        // What holds it (the web view's task page shows it as `cortex show` does): a pause, its
        // group's limit or rate, the budget, the workers kept for critical tasks.
        if let held = scheduler.pauseHoldDetail(n) ?? scheduler.groupHoldDetail(n, now: t) ?? scheduler.budgetHoldDetail(n)
          ?? scheduler.reserveHoldDetail(n)
        {
          v.append(("held_by", .string(held)))
        } else if let e = pos.estimatedStartMs {
          v.append(("estimated_start_in_ms", .int(e)))
        }
      }
      // A finished command task's files may be gone already (cortex clean, retention.task_days).
      if rec.state.isTerminal && rec.spec.synthetic == nil && !FileSystem.isDirectory(paths.taskDir(n)) {
        v.append(("retention", .string(Self.filesRemoved(n))))
      } else {
        v.append(("dir", .string(paths.taskDir(n))))
      }
      reply(id, .object([("ok", .bool(true)), ("task", .object(v))]), now: t)
      return
    }
    // Older tasks: the compact record (which outlives retention) and what is still on disk.
    let dir = paths.taskDir(n)
    let spec = ((try? FileSystem.read(dir + "/spec.json")) ?? nil).flatMap { try? JSON.parse($0) }
    let result = ((try? FileSystem.read(dir + "/result.json")) ?? nil).flatMap { try? JSON.parse($0) }
    let (record, removed) = compactRecord(n)
    guard spec != nil || result != nil || scheduler.finishedStates[n] != nil || record != nil else {
      reply(id, Scheduler.invalid(SpecError("id", TaskID.unknown(n, next: scheduler.nextTaskNumber)), index: nil, of: 1), now: t)
      return
    }
    var v: [(String, JSON)] = [("id", .string(TaskID.format(n)))]
    if let st = scheduler.finishedStates[n] ?? record?.state { v.append(("state", .string(st.rawValue))) }
    // Named as for a task held in memory: after a restart `show` still has the description,
    // priority and group, and `attempt 3 of 3` (from a result.json written before max_attempts
    // was: the spec's, if it gave one). `cortex list` fills its rows the same way.
    v += FinishedTaskFiles.fields(result: result, spec: spec, config: scheduler.config)
    if let r = record, result == nil {
      if let c = r.exitCode { v.append(("exit_code", .int(Int64(c)))) }
      if let s = r.signal { v.append(("signal", .int(Int64(s)))) }
      v.append(("ended", .string(Timestamp.rfc3339(ms: r.endedMs))))
      v.append(("compact", .bool(true)))
    }
    if let spec { v.append(("spec", spec)) }
    if let removed { v.append(("retention", .string(removed))) }
    if FileSystem.isDirectory(dir) { v.append(("dir", .string(dir))) }
    reply(id, .object([("ok", .bool(true)), ("task", .object(v))]), now: t)
  }
}
