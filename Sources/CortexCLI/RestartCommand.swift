import CortexCore
import CortexDaemon
import Posix

/// `cortex restart`: replaces the running daemon with the program now at its executable's path
/// (an upgrade), in place, without stopping the workers: running tasks carry on and are re-adopted
/// (SPEC §14). It sends the daemon SIGUSR2, as `kill -USR2` does (the packaged unit's `systemctl reload` sends
/// SIGHUP, which rereads config.json), and returns
/// once the new program answers with its pool ready. `cortex stop` still drains and stops all.
enum RestartCommand {
  static let usage = "cortex restart [--timeout S]"

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let timeout = try args.secondsOption("--timeout", min: 1, max: 3600) ?? 60
    try args.noPositionals()
    let before = try Client.check(try Client(ctx).request(.object([("op", .string("ping"))])))
    guard let pid = before["pid"]?.int.flatMap({ Int32(exactly: $0) }), pid > 1 else {
      throw CLIError(ExitCode.failure, "the daemon did not say its pid")
    }
    // A node of a cluster refuses SIGUSR2 (its workers leave with it; docs/readopt.md): say so
    // now rather than wait for a new program that never comes.
    if let node = before["cluster_node"]?.string {
      throw CLIError(
        ExitCode.failure,
        "restart in place is not built for cluster mode (this daemon is node \(node)): run cortex stop, then cortex start; what stop cannot finish in time is requeued for the other nodes"
      )
    }
    // A stopping daemon ignores SIGUSR2 (Daemon+Restart): the wait then ran out its whole
    // timeout and blamed the restart for the exit the stop made.
    if let phase = before["phase"]?.string, phase != "running" {
      throw CLIError(
        ExitCode.failure,
        "the daemon (pid \(pid)) is stopping (\(phase): a cortex stop or SIGTERM is under way); not restarting: start it again once it has stopped (cortex start)"
      )
    }
    // The new program reads config.json and would exit on one it cannot take (the daemon checks
    // too, for a kill -USR2, and carries on): say what is wrong now, and signal nothing.
    if let problem = Daemon.restartConfigProblem(ctx.paths) {
      throw CLIError(ExitCode.failure, "not restarting: \(problem); the daemon carries on with the config it has")
    }
    let startedBefore = before["started_ms"]?.int ?? 0
    let failuresBefore = before["restart_failures"]?.int ?? 0
    let t0 = Clock.monotonicMs()
    guard Processes.signal(pid, Signal.usr2) else {
      throw CLIError(ExitCode.failure, "cannot signal the daemon (pid \(pid)): it may have just exited")
    }
    let deadline = t0 + Int64(timeout) * 1000
    while Clock.monotonicMs() < deadline {
      sleepMs(10)
      guard let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("ping"))])), v["ok"]?.bool == true else {
        continue
      }
      let started = v["started_ms"]?.int ?? 0
      // The exec failed (the program at the daemon's path was removed or cannot run): the old
      // program carries on and says why. This waited out the whole timeout, then said the
      // daemon "did not come back" while it ran on unchanged.
      if started == startedBefore, (v["restart_failures"]?.int ?? 0) > failuresBefore {
        let why = v["restart_failure"]?.string ?? "see \(ctx.paths.daemonLog)"
        throw CLIError(ExitCode.failure, "the daemon (pid \(pid)) could not restart: \(why); it carries on as it was")
      }
      guard started != startedBefore, v["ready"]?.bool == true else { continue }
      let ms = Clock.monotonicMs() - t0
      // The new program's web view has a new token (and, with `port` 0, a new port): the pages
      // open before are signed out, so the address to open now is printed, as `cortex start` does.
      let web = WebAddress.read(ctx.paths)
      if ctx.json {
        var o: [(String, JSON)] = [
          ("ok", .bool(true)), ("pid", .int(Int64(pid))), ("workers_ready", v["workers_ready"] ?? .int(0)), ("ms", .int(ms)),
        ]
        if let web { o.append(("web_url", .string(web))) }
        ctx.printJSON(.object(o))
      } else {
        let ready = v["workers_ready"]?.int ?? 0
        ctx.err("cortex: daemon restarted in place (pid \(pid), \(ready) worker\(ready == 1 ? "" : "s") ready) in \(ms) ms\n")
        if let web { ctx.err("cortex: dashboard at \(web)\n") }
      }
      return 0
    }
    if !Processes.isAlive(pid) {
      throw CLIError(ExitCode.failure, "the daemon (pid \(pid)) exited during the restart; see \(ctx.paths.daemonLog)")
    }
    throw CLIError(ExitCode.failure, "the daemon (pid \(pid)) did not come back within \(timeout) s; see \(ctx.paths.daemonLog)")
  }
}

extension RestartCommand {
  static let help = CommandHelp(
    "restart", abstract: "replace the daemon in place (e.g. a new binary); running tasks carry on", usage: usage,
    details:
      "Sends the daemon SIGUSR2 (as kill -USR2 does; `systemctl reload cortex` sends SIGHUP instead, which only rereads config.json): it execs the program now at its path with the same pid, and re-adopts its workers and their running tasks. `cortex stop` still drains and stops everything. The new daemon's dashboard has a new token (and, with web.port 0, a new port): restart prints its address, as start does. Not in cluster mode: a node's workers leave with it, so it is refused at once (cortex stop, then cortex start).",
    flags: [
      .option("--timeout", value: "S", help: "give up waiting for the new daemon after S seconds (or a duration: 90s, 2m)", default: "60")
    ],
    examples: [("cortex restart", "upgrade without interrupting a task")])
}
