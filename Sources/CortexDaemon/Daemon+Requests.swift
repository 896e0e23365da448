import CortexCore
import Posix

/// The control socket: one handler per request `op`, named as the CLI command that sends it.
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

  static func usageError(_ msg: String) -> JSON {
    .object([("ok", .bool(false)), ("code", .int(64)), ("error", .string(msg))])
  }

  func handleRequest(_ id: ClientID, _ req: JSON, now t: Int64) {
    guard let op = req["op"]?.string else {
      reply(id, Self.usageError("request has no \"op\""), now: t)
      return
    }
    if let c = clients[id], c.reserved, op != "ping", op != "stop" {
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
    switch op {
    case "ping": handlePing(id, now: t)
    case "submit": handleSubmit(id, req, now: t)
    case "wait": handleIDs(id, req, now: t) { .wait(id, $0) }
    case "cancel": handleIDs(id, req, now: t) { .cancel(id, $0) }
    case "list": handleList(id, req, now: t)
    case "show": handleShow(id, req, now: t)
    case "workers": reply(id, .object([("ok", .bool(true)), ("workers", scheduler.workersSnapshot(seq: log.lastSeq, nowMs: t))]), now: t)
    case "budget": reply(id, .object([("ok", .bool(true)), ("budget", scheduler.budgetSnapshot(seq: log.lastSeq, nowMs: t))]), now: t)
    case "scale":
      guard let n = req["workers"]?.int else {
        reply(id, Self.usageError("scale needs \"workers\""), now: t)
        return
      }
      feed(.scale(id, Int(n)), now: t)
    case "stop":
      let timeout = req["timeout_s"]?.double ?? 30
      requestStop(timeoutMs: Int64(timeout * 1000), client: id, now: t)
    default:
      reply(id, Self.usageError("unknown op '\(op)'"), now: t)
    }
  }

  func handlePing(_ id: ClientID, now t: Int64) {
    let ready = scheduler.workers.filter { ($0.state == .idle || $0.state == .busy) && $0.slot <= scheduler.desiredWorkers }.count
    let phase: String =
      switch scheduler.phase {
      case .running: "running"
      case .draining: "draining"
      case .exiting: "exiting"
      case .stopped: "stopped"
      }
    reply(
      id,
      .object([
        ("ok", .bool(true)), ("pid", .int(Int64(Processes.currentID))), ("workers", .int(Int64(scheduler.desiredWorkers))),
        ("workers_ready", .int(Int64(ready))), ("ready", .bool(ready >= scheduler.desiredWorkers)),
        ("phase", .string(phase)), ("seq", .int(Int64(log.lastSeq))), ("admitting", .bool(scheduler.admitting)),
      ]), now: t)
  }

  /// A batch may come in parts (`"more": true` on all but the last, each answered
  /// `{"ok":true,"held":N}`; `"count"` is the whole batch's size, for messages), so no request
  /// line has to hold a whole batch; the parts are held on the connection and the scheduler sees
  /// the batch whole, accepted or refused as one.
  func handleSubmit(_ id: ClientID, _ req: JSON, now t: Int64) {
    guard let list = req["tasks"]?.array else {
      clients[id]?.dropHeldBatch()
      reply(id, Scheduler.invalid(SpecError("tasks", "must be an array of task specs"), index: nil, of: 1), now: t)
      return
    }
    let c = clients[id]
    let more = req["more"]?.bool == true
    let held = c?.heldSpecs ?? []
    let count = held.count + list.count
    var specs: [TaskSpec] = []
    specs.reserveCapacity(list.count)
    for (i, v) in list.enumerated() {
      do throws(SpecError) {
        specs.append(try TaskSpec.decode(v))
      } catch {
        c?.dropHeldBatch()
        let total = req["count"]?.int.map { Int($0) } ?? (more ? nil : count)
        reply(id, Scheduler.invalid(error, position: held.count + i + 1, of: total), now: t)
        return
      }
    }
    guard more, let c else {
      c?.dropHeldBatch()
      feed(.submit(id, held + specs), now: t)
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
      // It can never be admitted: let the scheduler refuse it (and log why) now.
      let all = c.heldSpecs
      c.dropHeldBatch()
      feed(.submit(id, all), now: t)
      return
    }
    reply(id, .object([("ok", .bool(true)), ("held", .int(Int64(c.heldSpecs.count)))]), now: t)
  }

  func handleIDs(_ id: ClientID, _ req: JSON, now t: Int64, _ make: ([Int]) -> Scheduler.Input) {
    guard let list = req["ids"]?.array, !list.isEmpty else {
      reply(id, Self.usageError("needs \"ids\""), now: t)
      return
    }
    var ids: [Int] = []
    for v in list {
      guard let s = v.string, let n = TaskID.parse(s) else {
        reply(
          id, Scheduler.invalid(SpecError("id", "'\(v.string ?? v.encoded())' is not a task id like task-000012"), index: nil, of: 1),
          now: t)
        return
      }
      ids.append(n)
    }
    feed(make(ids), now: t)
  }

  func handleList(_ id: ClientID, _ req: JSON, now t: Int64) {
    let state = req["state"]?.string
    let type = req["type"]?.string
    let limit = Int(req["limit"]?.int ?? 0)
    if let state, TaskState(rawValue: state) == nil, state != "active", state != "done" {
      reply(id, Scheduler.invalid(SpecError("state", "unknown state '\(state)'"), index: nil, of: 1), now: t)
      return
    }
    var rows = scheduler.tasks.values.filter { rec in
      if let state {
        if state == "active" {
          if rec.state.isTerminal { return false }
        } else if state == "done" {
          if !rec.state.isTerminal { return false }
        } else if rec.state.rawValue != state {
          return false
        }
      }
      if let type, rec.type != type { return false }
      return true
    }.sorted { $0.number < $1.number }
    if limit > 0 && rows.count > limit { rows = Array(rows.suffix(limit)) }
    reply(
      id, .object([("ok", .bool(true)), ("tasks", .array(rows.map { scheduler.taskJSON($0, withSpec: false) }))]), now: t)
  }

  func handleShow(_ id: ClientID, _ req: JSON, now t: Int64) {
    guard let s = req["id"]?.string, let n = TaskID.parse(s) else {
      reply(id, Scheduler.invalid(SpecError("id", "needs a task id like task-000012"), index: nil, of: 1), now: t)
      return
    }
    if let rec = scheduler.tasks[n] {
      var v = scheduler.taskJSON(rec).object ?? []
      if let pos = scheduler.queuePosition(n) {
        v.append(("queue_position", .int(Int64(pos.position))))
        if let e = pos.estimatedStartMs { v.append(("estimated_start_in_ms", .int(e))) }
      }
      v.append(("dir", .string(paths.taskDir(n))))
      reply(id, .object([("ok", .bool(true)), ("task", .object(v))]), now: t)
      return
    }
    // Older tasks: what is on disk.
    let dir = paths.taskDir(n)
    let spec = ((try? FileSystem.read(dir + "/spec.json")) ?? nil).flatMap { try? JSON.parse($0) }
    let result = ((try? FileSystem.read(dir + "/result.json")) ?? nil).flatMap { try? JSON.parse($0) }
    guard spec != nil || result != nil || scheduler.finishedStates[n] != nil else {
      reply(id, Scheduler.invalid(SpecError("id", "unknown task \(TaskID.format(n))"), index: nil, of: 1), now: t)
      return
    }
    var v: [(String, JSON)] = [("id", .string(TaskID.format(n)))]
    if let st = scheduler.finishedStates[n] { v.append(("state", .string(st.rawValue))) }
    for (k, val) in result?.object ?? [] where k != "id" && k != "state" { v.append((k, val)) }
    if let spec { v.append(("spec", spec)) }
    v.append(("dir", .string(dir)))
    reply(id, .object([("ok", .bool(true)), ("task", .object(v))]), now: t)
  }
}
