import CortexCore
import Posix

/// `on_finish` hooks (SPEC §15): shell commands from `config.json` the daemon runs after a task's
/// terminal event is in the log, through `/bin/sh -c`, with the outcome in the environment
/// (`CORTEX_TASK_ID`, `CORTEX_TASK_STATE`, `CORTEX_EXIT_CODE`, `CORTEX_DURATION_MS`,
/// `CORTEX_TOKENS_USED`, plus `CORTEX_TASK_GROUP`, `CORTEX_TASK_TYPE`, `CORTEX_TASK_REASON`).
///
/// A hook can neither block the loop nor change what was recorded: it is spawned (never waited
/// for), through `cortex hook-guard`, which ends it if the daemon dies, in its own process group with stdin from /dev/null and its output appended to
/// `daemon.log`; it is reaped like any child; past `hook_timeout_s` its group is killed. At most
/// `maxRunning` run at once; up to `maxWaiting` more wait, and past that a hook is dropped with a
/// line in `daemon.log` (a task finishing faster than hooks can run must not grow memory).
final class HookRunner {
  struct Job {
    let task: Int
    let command: String
    let environment: [String]
  }

  struct Running {
    let job: Job
    let startedMs: Int64
    let deadlineMs: Int64
    var killed = false
  }

  static let maxRunning = 16
  static let maxWaiting = 10_000

  private(set) var running: [Int32: Running] = [:]
  private var waiting: [Job] = []
  private var waitingHead = 0
  private(set) var dropped = 0
  private(set) var finished = 0
  private(set) var timedOut = 0

  var hasWork: Bool { !running.isEmpty || waitingHead < waiting.count }
  /// A hook was killed at its deadline and has not been reaped yet.
  var hasKilledUnreaped: Bool { running.values.contains { $0.killed } }
  var nextDeadlineMs: Int64? { running.values.filter { !$0.killed }.map(\.deadlineMs).min() }
  func isHook(_ pid: Int32) -> Bool { running[pid] != nil }

  /// The hooks that apply to a finished task, in order: top level, its group's, its type's.
  static func commands(config: Config, group: String, type: String?) -> [String] {
    var out: [String] = []
    if let h = config.onFinish { out.append(h) }
    if let h = config.group(group)?.onFinish { out.append(h) }
    if let t = type, let h = config.workerType(t)?.onFinish { out.append(h) }
    return out
  }

  /// The environment of a hook: the daemon's own (without Cortex's variables) and the outcome.
  static func environment(_ t: TaskRecord, group: String, dir: String) -> [String] {
    var env = Environment.all().filter { !$0.hasPrefix("CORTEX_") }
    let duration = t.startedMs.map { max(0, (t.endedMs ?? $0) - $0) } ?? 0
    env += [
      "CORTEX_DIR=\(dir)", "CORTEX_TASK_ID=\(t.id)", "CORTEX_TASK_STATE=\(t.state.rawValue)",
      "CORTEX_EXIT_CODE=\(t.exitCode.map { String($0) } ?? "")", "CORTEX_DURATION_MS=\(duration)",
      "CORTEX_TOKENS_USED=\(t.tokensUsed)", "CORTEX_TASK_GROUP=\(group)", "CORTEX_TASK_TYPE=\(t.type)",
      "CORTEX_TASK_REASON=\(t.reason ?? "")", "CORTEX_ATTEMPT=\(t.attempt)",
    ]
    return env
  }

  func enqueue(_ job: Job, log: FileDescriptor?) {
    if waiting.count - waitingHead >= Self.maxWaiting {
      dropped += 1
      say(log, "cortex: on_finish hook for \(TaskID.format(job.task)) dropped: \(Self.maxWaiting) hooks already wait\n")
      return
    }
    waiting.append(job)
  }

  /// Starts waiting hooks while fewer than `maxRunning` run, each through `cortex hook-guard`
  /// (`executable`), which kills the hook's group if this daemon dies (a kill -9 left hooks
  /// running on unbounded: nobody enforced `hook_timeout_s` any more).
  func start(now t: Int64, timeoutMs: Int64, executable: String, log: FileDescriptor?) {
    while running.count < Self.maxRunning && waitingHead < waiting.count {
      let job = waiting[waitingHead]
      waitingHead += 1
      do throws(PosixError) {
        let devnull = try FileDescriptor.open("/dev/null", .readOnly)
        defer { devnull.close() }
        let out = log ?? devnull
        let pid = try Processes.spawn(
          [executable, "hook-guard", "--parent", String(Processes.currentID), "--", "/bin/sh", "-c", job.command],
          environment: job.environment, stdin: devnull, stdout: out, stderr: out, newProcessGroup: true)
        running[pid] = Running(job: job, startedMs: t, deadlineMs: t + timeoutMs)
      } catch {
        say(log, "cortex: on_finish hook for \(TaskID.format(job.task)) could not start: \(error)\n")
      }
    }
    if waitingHead > 1024 && waitingHead * 2 > waiting.count {
      waiting.removeFirst(waitingHead)
      waitingHead = 0
    }
  }

  /// A reaped child: true when it was a hook (its group is killed, in case it left children).
  func reaped(_ pid: Int32, _ status: ExitStatus, now t: Int64, log: FileDescriptor?) -> (Job, String, Int64)? {
    guard let r = running.removeValue(forKey: pid) else { return nil }
    _ = Processes.signalGroup(pid, Signal.kill)
    finished += 1
    let how: String
    switch status {
    case .exited(let c): how = r.killed ? "killed after \(t - r.startedMs) ms (hook_timeout_s)" : "exit code \(c)"
    case .signaled(let s): how = r.killed ? "killed after \(t - r.startedMs) ms (hook_timeout_s)" : "killed by \(Signal.name(s))"
    }
    if r.killed { timedOut += 1 }
    say(log, "cortex: on_finish hook for \(TaskID.format(r.job.task)) (pid \(pid)): \(how)\n")
    return (r.job, how, t - r.startedMs)
  }

  /// Kills the groups of hooks past their deadline (reaped later, as they exit).
  func enforceTimeouts(now t: Int64) {
    for (pid, r) in running where !r.killed && t >= r.deadlineMs {
      running[pid]!.killed = true
      _ = Processes.signalGroup(pid, Signal.kill)
    }
  }

  /// What `cortex restart` hands to the program it execs: the running hooks, which stay this
  /// pid's children through the exec, as `pid:task:elapsed_ms:left_ms:killed` separated by commas
  /// (times relative to `t`, so the new program's clock needs no agreement with this one's). Empty
  /// when none runs.
  func handover(now t: Int64) -> String {
    running.map { pid, r in "\(pid):\(r.job.task):\(max(0, t - r.startedMs)):\(r.deadlineMs - t):\(r.killed ? 1 : 0)" }
      .joined(separator: ",")
  }

  /// The new program takes the hooks `handover` named that are still its children: they keep
  /// their deadline, are killed at its exit and logged (`hook.finished`) when reaped. Returns
  /// how many it took.
  @discardableResult
  func adopt(_ text: String, now t: Int64) -> Int {
    var n = 0
    for item in text.split(separator: ",") {
      let f = item.split(separator: ":").map { Int64($0) }
      guard f.count == 5, let pid = f[0].flatMap({ Int32(exactly: $0) }), let task = f[1], let elapsed = f[2], let left = f[3],
        let killed = f[4], pid > 1, task >= 0, elapsed >= 0, running[pid] == nil,
        Processes.info(pid)?.parent == Processes.currentID
      else { continue }
      running[pid] = Running(
        job: Job(task: Int(task), command: "", environment: []), startedMs: t - elapsed, deadlineMs: t + left, killed: killed != 0)
      n += 1
    }
    return n
  }

  /// Hooks queued and not started when the daemon restarts in place; they are not run.
  var waitingCount: Int { waiting.count - waitingHead }

  /// At the daemon's exit: no hook outlives it.
  func killAll(log: FileDescriptor?) {
    for pid in running.keys {
      _ = Processes.signalGroup(pid, Signal.kill)
      _ = Processes.wait(pid)
    }
    if !running.isEmpty { say(log, "cortex: \(running.count) on_finish hooks killed at the daemon's exit\n") }
    running.removeAll()
    let left = waiting.count - waitingHead
    if left > 0 { say(log, "cortex: \(left) on_finish hooks not run: the daemon stopped\n") }
    waiting.removeAll()
    waitingHead = 0
  }

  private func say(_ log: FileDescriptor?, _ s: String) { try? log?.writeAll(s) }
}
