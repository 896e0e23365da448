import CortexCluster
import CortexCore
import Posix

/// Fleet control requests and `on_finish` hooks (SPEC §15). The decisions are the scheduler's
/// (Scheduler+Control); hooks are run here, by `HookRunner`, after the terminal event is written.
extension Daemon {
  func handleFleet(_ id: ClientID, _ cmd: FleetCommand, now t: Int64) {
    if let cluster {
      switch cmd {
      case .groups: break
      case .retry(let ids, let allFailed, _):
        cluster.retry(id, ids, allFailed: allFailed)
        return
      case .edit(let n, let change, let fields):
        cluster.edit(id, n, change, fields: fields)
        return
      case .pause(nil), .resume(nil):
        cluster.setQueuePaused(id, cmd == .pause(group: nil))
        return
      case .pause(let g?), .resume(let g?), .setParallel(let g, _):
        // Checked here as the scheduler would, before the database is asked.
        var none = Set<String>()
        if let refusal = scheduler.newGroupRefusal(g, adding: &none) {
          return reply(id, Scheduler.failure(refusal.description, code: 65), now: t)
        }
        let change: GroupChange =
          switch cmd {
          case .setParallel(_, let n): .parallel(n)
          default: .paused(cmd == .pause(group: g))
          }
        cluster.setGroup(id, g, change, command: cmd)
        return
      }
    }
    if case .retry(let ids, let all, _) = cmd {
      retryWithStoredSpecs(id, ids, allFailed: all, stored: [:], now: t)
    } else {
      feed(.control(id, cmd), now: t)
    }
    groupsFileDue = true
  }

  /// `groups.json`: the groups with their limits, counts and rates, and whether the queue is
  /// paused; written atomically (not synced: the log is the record) when it changes — at once
  /// after a control request, otherwise at most once a second (its counts change with every
  /// task, and a rename per loop iteration cost a tenth of a busy daemon's CPU). In cluster mode
  /// `cluster_groups` has what the groups the cluster pauses or limits have running and queued
  /// in the whole cluster, as this node last read it (`cortex status` shows those counts).
  func writeGroupsFile(now t: Int64) {
    lastGroupsFileMs = t
    groupsFileDue = false
    let groups = scheduler.groupsJSON(now: t)
    var fields: [(String, JSON)] = [("queue_paused", .bool(scheduler.fleet.paused)), ("groups", groups)]
    if let cluster { fields.append(("cluster_groups", .array((cluster.groupLoad ?? []).map { $0.json() }))) }
    let v = JSON.object(fields)
    let text = v.pretty() + "\n"
    guard text != groupsFileText else { return }
    groupsFileText = text
    let path = paths.groups
    let bytes = Array(text.utf8)
    files.async { try? FileSystem.writeAtomically(path, bytes, durable: false, mode: 0o644) }
  }

  /// Per-group gauges and counters for `metrics.prom` (labels are group names, never task ids):
  /// the same as the web view's `/metrics` has (`Exposition.groups`, from the rows `groups.json`
  /// holds), and the hooks this daemon ran.
  func fleetMetrics(now t: Int64) -> String {
    var text = Exposition.groups(scheduler.groupsJSON(now: t).array ?? [], queuePaused: scheduler.fleet.paused)
    text += "# HELP cortex_hooks_total on_finish hooks finished.\n# TYPE cortex_hooks_total counter\n"
    text += "cortex_hooks_total \(hooks.finished)\n"
    return text
  }

  /// A task's terminal event is in the log: queue its hooks (none when none are configured).
  func taskFinished(_ n: Int, now t: Int64) {
    guard
      config.onFinish != nil || config.groups.contains(where: { $0.1.onFinish != nil })
        || config.workerTypes.contains(where: { $0.1.onFinish != nil }),
      let rec = scheduler.tasks[n]
    else { return }
    let group = scheduler.groupName(rec.spec)
    let commands = HookRunner.commands(config: config, group: group, type: rec.spec.type)
    guard !commands.isEmpty else { return }
    let env = HookRunner.environment(rec, group: group, dir: paths.root)
    for c in commands { hooks.enqueue(HookRunner.Job(task: n, command: c, environment: env), log: workerLog) }
    hooks.start(now: t, timeoutMs: Numbers.ms(fromSeconds: config.hookTimeoutS), executable: executable, log: workerLog)
  }

  /// Once the pool has stopped (`cortex stop`, SIGTERM), the hooks of the last tasks — those
  /// that ended during the drain — run on for up to `hook_timeout_s`, reaped and logged
  /// (`hook.finished`) as before, so a graceful stop does not kill a task's hook the moment it
  /// started; what still runs after that is killed at the exit (`HookRunner.killAll`).
  func hooksOutlastTheStop(now t: Int64) -> Bool {
    guard finished, hooks.hasWork else { return false }
    let until = hooksGraceUntilMs ?? t + Numbers.ms(fromSeconds: config.hookTimeoutS)
    hooksGraceUntilMs = until
    if t < until { return true }
    // A hook killed at its own deadline, which falls about when the grace ends, is reaped and
    // logged a moment later: wait for that (briefly) rather than exit over it, which dropped its
    // `hook.finished` (NewUserFleetProbeTests.testAGracefulStopLetsTheLastTasksHooksFinish failed
    // 3 times in 4).
    return hooks.hasKilledUnreaped && t < until + 1000
  }

  /// A reaped child that was a hook: logged (`hook.finished`), and the next waiting hook starts.
  func hookReaped(_ pid: Int32, _ status: ExitStatus, now t: Int64) -> Bool {
    guard let (job, how, ms) = hooks.reaped(pid, status, now: t, log: workerLog) else { return false }
    var code: JSON = .null
    if case .exited(let c) = status { code = .int(Int64(c)) }
    log.append(
      Event(
        "hook.finished", task: job.task, reason: how.hasPrefix("killed after") ? "timeout" : "exited", detail: how,
        fields: [("exit_code", code), ("duration_ms", .int(ms))]), nowMs: t)
    hooks.start(now: t, timeoutMs: Numbers.ms(fromSeconds: config.hookTimeoutS), executable: executable, log: workerLog)
    return true
  }
}
