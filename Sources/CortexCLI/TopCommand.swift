import CortexCore
import CortexDaemon
import Posix

/// `cortex top`: a live full-screen view from hot-state.mmap (no request to the daemon): the worker
/// grid, the queue by priority, the budget, and completion rates. `--once` prints one frame; on a
/// terminal, `q` (or Ctrl-C) quits and puts the terminal back.
enum TopCommand {
  static let usage = "cortex top [--once] [--interval MS]"

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let once = args.flag("--once")
    let interval = try args.intOption("--interval", min: 50, max: 60_000) ?? 500
    try args.noPositionals()
    // --json asks for machine output on stdout; a frame of text in its place is read as garbage.
    if ctx.json {
      throw CLIError.usage("top draws a screen of text, not JSON; cortex --json status gives the same state as JSON", usage)
    }
    var last: (ms: Int64, done: Int)? = nil
    let tty = FileDescriptor.standardOutput.isTerminal && !once
    var screen = Screen(ctx, enabled: tty)
    defer { screen.leave() }
    // In cluster mode this node's budget is a placeholder: the budget is the database's.
    let cluster = (try? Daemon.loadConfig(paths: ctx.paths))?.cluster
    while true {
      let view = try DaemonControl.hotState(ctx)
      let now = Clock.wallMs()
      let done = TaskState.allCases.filter(\.isTerminal).reduce(0) { $0 + (view.counts[$1] ?? 0) }
      var rate = 0.0
      if let l = last, now > l.ms { rate = Double(done - l.done) / (Double(now - l.ms) / 1000) }
      last = (now, done)
      var s = tty ? "\u{1B}[H\u{1B}[2J" : ""
      let pid = StatusCommand.daemonRunning(ctx.paths)
      s +=
        ctx.bold("cortex top") + "  \(ctx.paths.root)  "
        + (pid != nil ? "pid \(view.pid), up \(formatMs(now - view.startedMs))" : "daemon not running")
      s += "  phase \(view.phase)\(view.admitting ? "" : "  NOT ADMITTING")"
      if let stale = StatusCommand.notResponding(view, pid: pid, now: now) { s += "  " + ctx.bold("NOT RESPONDING: \(stale)") }
      s += "\n\n"
      s += "workers \(view.poolSize)   " + legend + "\n"
      s += grid(view.poolWorkers) + "\n"
      let c = view.counts
      s += "queue     " + Priority.allCases.reversed().map { "\($0.name) \(view.queuedByPriority[$0] ?? 0)" }.joined(separator: "  ")
      s += "   assigned \(c[.assigned] ?? 0)  running \(c[.running] ?? 0)\n"
      s += GroupsFile.line(GroupsFile.read(ctx.paths))
      s += "finished  succeeded \(c[.succeeded] ?? 0)  failed \(c[.failed] ?? 0)  cancelled \(c[.cancelled] ?? 0)"
      s += "  timed out \(c[.timedOut] ?? 0)  refused \(view.rejected)\n"
      s += "rate      \(last == nil ? "-" : String(Int(rate.rounded()))) tasks/s\n"
      if let cluster {
        s += "budget    the cluster's (node \(cluster.node ?? Host.name)): cortex cluster status\n"
        if let since = view.clusterUnreachableSinceMs {
          s += "cluster   " + ctx.bold("POSTGRESQL UNREACHABLE for \(formatMs(max(0, now - since)))") + ": new submits refused\n"
        }
      } else {
        let used = view.tokensTotal == 0 ? 0 : (view.tokensUsed + view.tokensReserved) * 40 / max(1, view.tokensTotal)
        s += "budget    [" + String(repeating: "#", count: min(40, used)) + String(repeating: ".", count: max(0, 40 - used)) + "] "
        s += "\(view.tokensUsed) used, \(view.tokensReserved) reserved, \(view.tokensAvailable) available of \(view.tokensTotal)\n"
      }
      s += "log       seq \(view.lastSeq)\n"
      if tty { s += "\n" + ctx.dim(screen.keys ? "q to quit" : "Ctrl-C to quit") + "\n" }
      // A line longer than the terminal wrapped and pushed the frame's top off the screen (the
      // legend and the budget line are longer than 80 columns): each frame fits the terminal.
      if tty, let size = TerminalMode.size(.standardOutput) { s = fitted(s, rows: size.rows, columns: size.columns) }
      // `cortex top | head -1`: once stdout's reader is gone nothing more can be shown (the
      // failed write was ignored and the pipeline hung, a frame every interval for ever).
      do throws(PosixError) { try FileDescriptor.standardOutput.writeAll(s) } catch { return 0 }
      if once { return 0 }
      if let code = screen.waitForKey(ms: interval) { return code }
    }
  }

  /// The terminal while `top` runs: the alternate screen without a cursor, and (when stdin is a
  /// terminal) input key by key without echo, so `q` quits at once and Ctrl-C arrives as a key.
  /// `leave()` puts everything back, also after SIGINT, SIGTERM or SIGHUP.
  struct Screen {
    let ctx: Context
    let enabled: Bool
    /// Keys are read from stdin.
    private(set) var keys = false
    private var saved: TerminalMode?
    private var signals: (read: FileDescriptor, write: FileDescriptor)?
    private var left = false

    init(_ ctx: Context, enabled: Bool) {
      self.ctx = ctx
      self.enabled = enabled
      guard enabled else { return }
      if let p = try? makePipe(nonBlocking: true) {
        signals = p
        for sig in [Signal.int, Signal.term, Signal.hup] { try? Signal.deliver(sig, to: p.write) }
      }
      if FileDescriptor.standardInput.isTerminal, let mode = try? TerminalMode.rawInput(.standardInput) {
        saved = mode
        keys = true
      }
      ctx.out("\u{1B}[?1049h\u{1B}[?25l")
    }

    /// Waits up to `ms` for the next frame. Returns an exit code when it is time to quit: 0 for
    /// `q`, 130 for Ctrl-C or a signal.
    mutating func waitForKey(ms: Int) -> Int32? {
      let deadline = Clock.monotonicMs() + Int64(ms)
      while true {
        let remaining = deadline - Clock.monotonicMs()
        if remaining <= 0 { return nil }
        var fds: [FileDescriptor] = []
        if let p = signals { fds.append(p.read) }
        if keys { fds.append(.standardInput) }
        if fds.isEmpty {
          sleepMs(Int(remaining))
          return nil
        }
        guard let i = Poll.firstReadable(fds, timeoutMs: Int32(remaining)) else { return nil }
        if let p = signals, fds[i] == p.read { return 130 }
        var input: [UInt8] = []
        let n = (try? FileDescriptor.standardInput.read(appendingTo: &input, max: 64)) ?? 0
        if n == 0 {
          keys = false  // the terminal went away
          continue
        }
        if input.contains(where: { $0 == UInt8(ascii: "q") || $0 == UInt8(ascii: "Q") }) { return 0 }
        if input.contains(3) { return 130 }  // Ctrl-C, as a key in this mode
      }
    }

    mutating func leave() {
      guard enabled && !left else { return }
      left = true
      saved?.restore(.standardInput)
      ctx.out("\u{1B}[?25h\u{1B}[?1049l")
      for sig in [Signal.int, Signal.term, Signal.hup] { Signal.setDefault(sig) }
    }
  }

  /// `frame` with each line cut to `columns` (color codes take none) and at most `rows` lines,
  /// its last line (how to quit) kept. No newline after the last line: on a terminal just as
  /// tall as the frame it would scroll the first line off.
  static func fitted(_ frame: String, rows: Int, columns: Int) -> String {
    var lines = frame.split(separator: "\n", omittingEmptySubsequences: false).map { clipped(String($0), to: columns) }
    if lines.last == "" { lines.removeLast() }
    if lines.count > rows, rows >= 2 { lines = Array(lines.prefix(rows - 1)) + [lines[lines.count - 1]] }
    return lines.joined(separator: "\n")
  }

  /// `line` cut after `columns` characters that a terminal shows; escape sequences (ESC [ … letter)
  /// are kept whole and take no column, and a cut line ends with a reset of its colors.
  static func clipped(_ line: String, to columns: Int) -> String {
    guard shownWidth(line) > columns else { return line }
    var out = ""
    var shown = 0
    var inEscape = false
    for ch in line {
      if inEscape {
        out.append(ch)
        if ch.isLetter { inEscape = false }
      } else if ch == "\u{1B}" {
        out.append(ch)
        inEscape = true
      } else if shown < columns {
        out.append(ch)
        shown += 1
      }
    }
    return out.contains("\u{1B}") ? out + "\u{1B}[0m" : out
  }

  static let legend = ". idle  # busy  s starting  r restarting  x stopping  P parked  - stopped"

  static func grid(_ workers: [HotState.WorkerView]) -> String {
    var s = ""
    for (i, w) in workers.enumerated() {
      let ch: Character =
        switch w.state {
        case "idle": "."
        case "busy": "#"
        case "starting": "s"
        case "restarting": "r"
        case "stopping": "x"
        case "parked": "P"
        default: "-"
        }
      s.append(ch)
      if i % 64 == 63 { s += "\n" } else if i % 8 == 7 { s += " " }
    }
    return s.hasSuffix("\n") ? s : s + "\n"
  }
}

extension TopCommand {
  static let help = CommandHelp(
    "top", abstract: "live full-screen view: worker grid, queue, budget, rates (reads hot-state.mmap)", usage: usage,
    details: "On a terminal, q or Ctrl-C quits and restores the screen.",
    flags: [
      .flag("--once", help: "print one frame and exit"),
      .option("--interval", value: "MS", help: "refresh interval (50-60000)", default: "500"),
    ],
    examples: [("cortex top", "watch the pool and the queue; q quits"), ("cortex top --once", "one frame, as text (a log, a script)")])
}
