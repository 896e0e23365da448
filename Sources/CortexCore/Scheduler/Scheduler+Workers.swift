/// Worker supervision: spawn, ready, heartbeats, crashes and restarts, scaling, and the stop sequence.
extension Scheduler {
  mutating func workerSpawned(_ w: Int, pid: Int32, now: Int64, into out: inout [Action]) {
    ensureSlot(w)
    let restarted = !workers[w - 1].restarts.isEmpty
    workers[w - 1].pid = pid
    workers[w - 1].state = .starting
    workers[w - 1].spawnedMs = now
    workers[w - 1].lastSeenMs = now
    out.append(
      .log(
        Event(
          restarted ? "worker.restarted" : "worker.spawned", worker: w,
          fields: [("pid", .int(Int64(pid)))] + (restarted ? [("restarts", .int(Int64(workers[w - 1].restarts.count)))] : []))))
  }

  mutating func workerSpawnFailed(_ w: Int, _ why: String, now: Int64, into out: inout [Action]) {
    ensureSlot(w)
    out.append(.log(Event("worker.exited", worker: w, reason: "spawn_failed", detail: why)))
    scheduleRestart(w, now: now, into: &out)
  }

  mutating func workerMessage(_ w: Int, _ msg: WorkerToDaemon, now: Int64, into out: inout [Action]) {
    guard w >= 1 && w <= workers.count else { return }
    workers[w - 1].lastSeenMs = now
    switch msg {
    case .ready(let pid):
      guard workers[w - 1].state == .starting else { return }
      workers[w - 1].pid = pid
      workers[w - 1].readyMs = now
      out.append(.log(Event("worker.ready", worker: w, fields: [("pid", .int(Int64(pid)))])))
      if phase == .running && w <= desiredWorkers {
        workers[w - 1].state = .idle
        idle.append(w)
      } else {
        retire(w, now: now, into: &out)
      }
    case .heartbeat: break
    // Only meaningful during the adoption handshake at start (Daemon+Readopt); later, nothing to do.
    case .hello: break
    case .started(let n, let pid, _): taskStarted(w, task: n, pid: pid, now: now, into: &out)
    case .progress(let n, let tokens, let progress, let message):
      taskProgress(w, task: n, tokens: tokens, progress: progress, message: message, now: now, into: &out)
    case .done(let o): taskDone(w, o, now: now, into: &out)
    }
  }

  mutating func workerGarbage(_ w: Int, _ why: String, now: Int64, into out: inout [Action]) {
    guard w >= 1 && w <= workers.count else { return }
    markUnhealthy(w, reason: "bad_message", detail: why, now: now, into: &out)
  }

  /// Logs `worker.unhealthy` and kills the worker; its exit is handled when it is reaped.
  mutating func markUnhealthy(_ w: Int, reason: String, detail: String, now: Int64, into out: inout [Action]) {
    let rec = workers[w - 1]
    guard rec.state == .idle || rec.state == .busy || rec.state == .starting else { return }
    out.append(.log(Event("worker.unhealthy", worker: w, reason: reason, detail: detail, fields: [("pid", .int(Int64(rec.pid)))])))
    if rec.state == .idle { idle.removeAll { $0 == w } }
    workers[w - 1].state = .stopping
    workers[w - 1].killDeadlineMs = now + 2000
    out.append(.killWorker(w, pid: rec.pid))
  }

  /// A worker process was reaped.
  mutating func workerExited(_ w: Int, pid: Int32, status: String, crashed: Bool, now: Int64, into out: inout [Action]) {
    guard w >= 1 && w <= workers.count, workers[w - 1].pid == pid else { return }
    let rec = workers[w - 1]
    if rec.state == .idle { idle.removeAll { $0 == w } }
    out.append(.closeWorker(w))
    let expected = rec.state == .stopping && !crashed
    out.append(
      .log(
        Event(
          "worker.exited", worker: w, reason: expected ? "stopped" : "crashed", detail: status,
          fields: [("pid", .int(Int64(pid)))])))
    workers[w - 1].pid = 0
    if let n = rec.task, let t = tasks[n], !t.state.isTerminal {
      workers[w - 1].task = nil
      if let pg = t.pid { out.append(.killGroup(pgid: pg, hard: true)) }
      tasks[n]!.workerKills += 1
      let kills = tasks[n]!.workerKills
      tasks[n]!.tokensUsed = t.tokensUsed
      switch t.stopping {
      case .cancel: finish(n, .cancelled, reason: "cancelled", detail: "its worker died while stopping it", now: now, into: &out)
      case .timeout: finish(n, .timedOut, reason: "timeout", detail: "its worker died while stopping it", now: now, into: &out)
      case .budget: finish(n, .failed, reason: "token_budget_exceeded", detail: nil, now: now, into: &out)
      case .shutdown:
        releaseBudget(n, into: &out)
        requeue(n, reason: "daemon_stopping", detail: "stopped by cortex stop", now: now, into: &out)
      case nil:
        releaseBudget(n, into: &out)
        if kills > 2 {
          finish(n, .failed, reason: "poison", detail: "its worker died \(kills) times while running it", now: now, into: &out)
        } else {
          requeue(n, reason: "worker_exited", detail: "\(WorkerID.format(w)) exited (\(status))", now: now, into: &out)
        }
      }
    }
    workers[w - 1].task = nil
    if phase != .running || w > desiredWorkers || (expected && rec.retiring) {
      workers[w - 1].state = .stopped
      workers[w - 1].retiring = false
      return
    }
    scheduleRestart(w, now: now, into: &out)
  }

  /// Restart at once the first time, then back off (100 ms · 2^k, capped below 1 s, with jitter);
  /// park after `maxRestartsInWindow` restarts within `restartWindowS`.
  mutating func scheduleRestart(_ w: Int, now: Int64, into out: inout [Action]) {
    let window = Numbers.ms(fromSeconds: config.restartWindowS)
    var r = workers[w - 1].restarts.filter { now - $0 < window }
    if r.count >= config.maxRestartsInWindow {
      workers[w - 1].state = .parked
      workers[w - 1].restarts = r
      // Parked for one restart window, then tried again: a pool never stays empty for good.
      workers[w - 1].restartAtMs = now + window
      out.append(
        .log(
          Event(
            "worker.parked", worker: w, reason: "crash_loop",
            detail: "\(r.count) restarts within \(Int(config.restartWindowS)) s; trying again in \(Int(config.restartWindowS)) s")))
      return
    }
    let k = r.count
    let delay: Int64 = k == 0 ? 0 : min(800, 100 << Int64(min(k - 1, 3))) + rng.below(100)
    r.append(now)
    workers[w - 1].restarts = r
    workers[w - 1].state = .restarting
    workers[w - 1].restartAtMs = now + delay
    if delay == 0 { spawnDue(now: now, into: &out) }
  }

  mutating func spawnDue(now: Int64, into out: inout [Action]) {
    for i in workers.indices
    where workers[i].state == .parked && workers[i].restartAtMs <= now && phase == .running && workers[i].slot <= desiredWorkers {
      workers[i].restarts = []
      workers[i].state = .restarting
      out.append(.log(Event("worker.unparked", worker: workers[i].slot, reason: "window_passed", detail: "trying it again")))
    }
    for i in workers.indices where workers[i].state == .restarting && workers[i].restartAtMs <= now {
      workers[i].state = .starting
      workers[i].spawnedMs = now
      workers[i].lastSeenMs = now
      out.append(.spawnWorker(workers[i].slot))
    }
  }

  /// Asks an idle (or just-finished) worker to leave.
  mutating func retire(_ w: Int, now: Int64, into out: inout [Action]) {
    idle.removeAll { $0 == w }
    workers[w - 1].state = .stopping
    workers[w - 1].retiring = true
    workers[w - 1].killDeadlineMs = now + 3000
    out.append(.send(worker: w, .exit))
  }

  mutating func tick(now: Int64, into out: inout [Action]) {
    tickTasks(now: now, into: &out)
    let hb = heartbeatWindowMs
    for w in workers {
      switch w.state {
      case .idle, .busy, .starting:
        if now - w.lastSeenMs > hb {
          markUnhealthy(
            w.slot, reason: "heartbeat_missed",
            detail: "no message for \(now - w.lastSeenMs) ms (limit \(hb) ms)", now: now, into: &out)
        }
      case .stopping:
        if let d = w.killDeadlineMs, now >= d, w.pid > 0 {
          workers[w.slot - 1].killDeadlineMs = now + 2000
          out.append(.killWorker(w.slot, pid: w.pid))
        }
      default: break
      }
    }
    spawnDue(now: now, into: &out)
  }

  /// At a start, after recovery: the pool size set before it with `cortex scale` or a start's
  /// `--workers` (kept as a limit set with `cortex group set` is), unless this start was given
  /// `--workers`, which sets it anew. Returns the size the pool starts with.
  public mutating func adoptLivePoolSize(workersGiven: Bool) -> Int {
    if workersGiven {
      fleet.poolSizeLive = desiredWorkers
    } else if let n = fleet.poolSizeLive {
      desiredWorkers = n
      config.workers = n
    }
    return desiredWorkers
  }

  /// `cortex scale N`: grow by spawning; shrink by retiring idle workers first, busy ones after their task.
  mutating func scale(_ client: ClientID, _ n: Int, now: Int64, into out: inout [Action]) {
    guard n >= 1 && n <= 1024 else {
      out.append(.reply(client, Self.invalid(SpecError("workers", "must be from 1 to 1024, not \(n)"), index: nil, of: 1), durable: false))
      return
    }
    guard phase == .running else {
      out.append(.reply(client, Self.refused("daemon_stopping", "the daemon is stopping"), durable: false))
      return
    }
    let old = desiredWorkers
    desiredWorkers = n
    config.workers = n
    fleet.poolSizeLive = n
    ensureSlot(n)
    for i in workers.indices {
      let slot = workers[i].slot
      if slot <= n {
        workers[i].retiring = false
        if workers[i].state == .stopped || workers[i].state == .parked {
          workers[i].restarts = []
          workers[i].state = .starting
          workers[i].spawnedMs = now
          workers[i].lastSeenMs = now
          out.append(.spawnWorker(slot))
        }
      } else {
        switch workers[i].state {
        case .idle: retire(slot, now: now, into: &out)
        case .busy, .starting: workers[i].retiring = true
        case .restarting, .parked: workers[i].state = .stopped
        default: break
        }
      }
    }
    out.append(.log(Event("pool.scaled", reason: "requested", detail: "pool size \(old) → \(n)", fields: [("workers", .int(Int64(n)))])))
    out.append(.reply(client, .object([("ok", .bool(true)), ("workers", .int(Int64(n))), ("was", .int(Int64(old)))]), durable: true))
  }

  mutating func beginStop(timeoutMs: Int64, now: Int64, into out: inout [Action]) {
    guard phase == .running else { return }
    phase = .draining(deadlineMs: now + timeoutMs)
    let running = workers.filter { $0.state == .busy }.count
    out.append(
      .log(
        Event(
          "daemon.stopping", reason: "requested",
          detail: "admitting nothing; \(running) running tasks have \(timeoutMs) ms to finish",
          fields: [("running", .int(Int64(running))), ("queued", .int(Int64(queuedCount)))])))
    for w in workers where w.state == .restarting || w.state == .parked { workers[w.slot - 1].state = .stopped }
  }

  /// Moves the stop along: drain → requeue the stragglers → tell workers to exit → stopped.
  mutating func progressStop(now: Int64, into out: inout [Action]) {
    switch phase {
    case .running, .stopped: return
    case .draining(let deadline):
      let busy = workers.filter { $0.state == .busy }
      if busy.isEmpty || now >= deadline {
        for w in busy {
          guard let n = w.task, var t = tasks[n] else { continue }
          if t.stopping == nil || t.stopping == .timeout {
            t.stopping = .shutdown
            t.stopDeadlineMs = now + Int64(graceMs) + 2000
            tasks[n] = t
            out.append(.send(worker: w.slot, .cancel(task: n, graceMs: graceMs)))
          }
        }
        if busy.isEmpty {
          phase = .exiting(deadlineMs: now + 5000)
          for w in workers where w.state == .idle || w.state == .starting {
            retire(w.slot, now: now, into: &out)
          }
          for w in workers where w.state == .restarting || w.state == .parked { workers[w.slot - 1].state = .stopped }
        }
      }
    case .exiting(let deadline):
      let alive = workers.filter { $0.state != .stopped && $0.state != .parked && $0.pid > 0 }
      if alive.isEmpty {
        phase = .stopped
        out.append(.stopped)
      } else if now >= deadline {
        for w in alive { out.append(.killWorker(w.slot, pid: w.pid)) }
        phase = .exiting(deadlineMs: now + 2000)
      }
    }
  }
}
