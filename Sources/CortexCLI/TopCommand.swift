import CortexCore
import Posix

/// `cortex top`: a live full-screen view from hot-state.mmap (no request to the daemon): the worker
/// grid, the queue by priority, the budget, and completion rates. `--once` prints one frame.
enum TopCommand {
  static let usage = "cortex top [--once] [--interval MS]"

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let once = args.flag("--once")
    let interval = try args.intOption("--interval", min: 50, max: 60_000) ?? 500
    try args.noPositionals()
    var last: (ms: Int64, done: Int)? = nil
    let tty = FileDescriptor.standardOutput.isTerminal && !once
    while true {
      let view: HotState.View
      switch DaemonControl.hotState(ctx.paths) {
      case .success(let v): view = v
      case .failure(let e): throw e
      }
      let now = Clock.wallMs()
      let done = TaskState.allCases.filter(\.isTerminal).reduce(0) { $0 + (view.counts[$1] ?? 0) }
      var rate = 0.0
      if let l = last, now > l.ms { rate = Double(done - l.done) / (Double(now - l.ms) / 1000) }
      last = (now, done)
      var s = tty ? "\u{1B}[H\u{1B}[2J" : ""
      let running = StatusCommand.daemonRunning(ctx.paths) != nil
      s +=
        ctx.bold("cortex top") + "  \(ctx.paths.root)  "
        + (running ? "pid \(view.pid), up \(formatMs(now - view.startedMs))" : "daemon not running")
      s += "  phase \(view.phase)\(view.admitting ? "" : "  NOT ADMITTING") \n\n"
      s += "workers \(view.poolSize)   " + legend + "\n"
      s += grid(view.workers.filter { $0.slot <= max(view.poolSize, 1) || $0.state != "stopped" }) + "\n"
      let c = view.counts
      s += "queue     " + Priority.allCases.reversed().map { "\($0.name) \(view.queuedByPriority[$0] ?? 0)" }.joined(separator: "  ")
      s += "   assigned \(c[.assigned] ?? 0)  running \(c[.running] ?? 0)\n"
      s += "finished  succeeded \(c[.succeeded] ?? 0)  failed \(c[.failed] ?? 0)  cancelled \(c[.cancelled] ?? 0)"
      s += "  timed out \(c[.timedOut] ?? 0)  refused \(view.rejected)\n"
      s += "rate      \(last == nil ? "-" : String(Int(rate.rounded()))) tasks/s\n"
      let used = view.tokensTotal == 0 ? 0 : (view.tokensUsed + view.tokensReserved) * 40 / max(1, view.tokensTotal)
      s += "budget    [" + String(repeating: "#", count: min(40, used)) + String(repeating: ".", count: max(0, 40 - used)) + "] "
      s += "\(view.tokensUsed) used, \(view.tokensReserved) reserved, \(view.tokensAvailable) available of \(view.tokensTotal)\n"
      s += "log       seq \(view.lastSeq)\n"
      ctx.out(s)
      if once { return 0 }
      sleepMs(interval)
    }
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
