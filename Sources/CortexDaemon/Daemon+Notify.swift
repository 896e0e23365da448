import CortexCore
import Posix

/// systemd's service notification protocol (sd_notify(3)), without libsystemd: newline-separated
/// `KEY=VALUE` datagrams to the Unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the
/// abstract namespace). The daemon sends `READY=1` once every worker of the pool is ready (the
/// moment `cortex start` would return), `STATUS=…` when its one-line summary changes (at most once
/// a second), `STOPPING=1` when a stop begins (then `EXTEND_TIMEOUT_USEC=` every few seconds until
/// it ends, so systemd's `TimeoutStopSec=` never cuts short the daemon's own, longer stop: drain,
/// `kill_grace_s`, reap), and `WATCHDOG=1` from its loop every half of
/// `$WATCHDOG_USEC` when the unit sets `WatchdogSec=`. A loop that hangs stops the pings, and
/// systemd restarts the service. Without `$NOTIFY_SOCKET` none of this runs.
struct SystemdNotifier {
  let socket: String
  /// Half the watchdog interval, when systemd asked for pings (and the pings are for us).
  let watchdogIntervalMs: Int64?
  var readySent = false
  var stoppingSent = false
  var lastWatchdogMs: Int64 = 0
  var lastExtendMs: Int64 = 0
  var lastStatus = ""
  var lastStatusMs: Int64 = 0
  /// The last send's error, said once in daemon.log.
  var failed = false
  /// The variables as systemd set them (`NAME=value`), for the program a restart in place execs:
  /// it keeps this pid, so systemd still expects its READY=1, STATUS= and pings.
  var inherited: [String] = []

  static let variables = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]

  /// While stopping, each `EXTEND_TIMEOUT_USEC=` gives the daemon this long from the moment it is
  /// sent, and one goes out every `extendEveryMs`: a stop moves on as long as the loop runs, and a
  /// hung loop is stopped by systemd `extendMs` after its last message (or at `TimeoutStopSec=`, if later).
  static let extendMs: Int64 = 30_000
  static let extendEveryMs: Int64 = 5_000

  /// From the environment, which it then clears, so workers and tasks do not inherit the socket
  /// (sd_notify's `unset_environment`). nil without `$NOTIFY_SOCKET`.
  static func fromEnvironment(pid: Int32) -> SystemdNotifier? {
    defer { for n in variables { Environment.unset(n) } }
    guard let socket = Environment.get("NOTIFY_SOCKET"), !socket.isEmpty else { return nil }
    var watchdog: Int64? = nil
    // WATCHDOG_PID, when set, says whose pings systemd expects (sd_watchdog_enabled(3)).
    let forUs = Environment.get("WATCHDOG_PID").map { Int32($0) == pid } ?? true
    if forUs, let raw = Environment.get("WATCHDOG_USEC"), let usec = Int64(raw), usec > 0 {
      watchdog = max(1, usec / 2000)
    }
    var n = SystemdNotifier(socket: socket, watchdogIntervalMs: watchdog)
    n.inherited = variables.compactMap { name in Environment.get(name).map { "\(name)=\($0)" } }
    return n
  }

  /// The next time the loop must wake for a ping.
  var nextWakeMs: Int64? {
    let ping = watchdogIntervalMs.map { lastWatchdogMs + $0 }
    guard stoppingSent else { return ping }
    return min(ping ?? .max, lastExtendMs + SystemdNotifier.extendEveryMs)
  }

  /// Sends one message without ever blocking the loop; a failure is reported once (systemd gone
  /// or behind is no reason to stop serving). A dropped READY=1 or STOPPING=1 is sent again with
  /// the next message.
  mutating func send(_ fields: [String]) -> String? {
    do throws(PosixError) {
      try Datagram.send(fields.joined(separator: "\n") + "\n", to: socket)
      return nil
    } catch {
      if fields.contains("READY=1") { readySent = false }
      if fields.contains("STOPPING=1") { stoppingSent = false }
      defer { failed = true }
      return failed ? nil : "cortex daemon: warning: cannot notify systemd at \(socket): \(error)\n"
    }
  }
}

extension Daemon {
  /// Notes in `service.json` the unit the daemon runs as, when systemd started it (it speaks
  /// sd_notify and its control group names a service), and removes a note left by an earlier one
  /// otherwise: a command that finds the daemon stopped says `systemctl start` only for a
  /// directory a service owns.
  func recordService() {
    let cgroup = notifier == nil ? nil : ((try? FileSystem.read("/proc/self/cgroup")) ?? nil)
    guard let service = cgroup.flatMap({ SystemdService.parse(cgroup: String(decoding: $0, as: UTF8.self)) }) else {
      try? FileSystem.remove(paths.service)
      return
    }
    try? FileSystem.writeAtomically(paths.service, Array((service.json().encoded() + "\n").utf8), durable: false, mode: 0o644)
  }

  /// Workers of the configured pool that are up (idle or busy).
  var readyWorkers: Int {
    scheduler.workers.filter { ($0.state == .idle || $0.state == .busy) && $0.slot <= scheduler.desiredWorkers }.count
  }

  /// One line for `systemctl status`.
  var statusLine: String {
    let phase: String =
      switch scheduler.phase {
      case .running: readyWorkers >= scheduler.desiredWorkers ? "running" : "starting"
      case .draining: "stopping (draining)"
      case .exiting, .stopped: "stopping"
      }
    let running = scheduler.counts[.assigned, default: 0] + scheduler.counts[.running, default: 0]
    var s = "\(phase): \(readyWorkers)/\(scheduler.desiredWorkers) workers ready, \(scheduler.queuedCount) queued, \(running) running"
    if logFailure != nil {
      s += "; the decision log cannot be written"
    } else if diskLowFreeBytes != nil {
      s += "; disk full, admitting nothing"
    }
    return s
  }

  /// Called once per loop iteration: READY=1, STOPPING=1, STATUS= and WATCHDOG=1 as they fall due.
  func notifySystemd(now t: Int64) {
    guard var n = notifier else { return }
    defer { notifier = n }
    var fields: [String] = []
    if !n.readySent && scheduler.phase == .running && readyWorkers >= scheduler.desiredWorkers {
      n.readySent = true
      fields.append("READY=1")
      fields.append("MAINPID=\(Processes.currentID)")
    }
    if !n.stoppingSent && scheduler.phase != .running {
      n.stoppingSent = true
      fields.append("STOPPING=1")
    }
    if n.stoppingSent && (fields.contains("STOPPING=1") || t - n.lastExtendMs >= SystemdNotifier.extendEveryMs) {
      n.lastExtendMs = t
      fields.append("EXTEND_TIMEOUT_USEC=\(SystemdNotifier.extendMs * 1000)")
    }
    let status = statusLine
    if status != n.lastStatus && (!fields.isEmpty || t - n.lastStatusMs >= 1000) {
      n.lastStatus = status
      n.lastStatusMs = t
      fields.append("STATUS=\(status)")
    }
    if let every = n.watchdogIntervalMs, t - n.lastWatchdogMs >= every {
      n.lastWatchdogMs = t
      fields.append("WATCHDOG=1")
    }
    if fields.isEmpty { return }
    if let warning = n.send(fields) { writeStderr(warning) }
  }
}
