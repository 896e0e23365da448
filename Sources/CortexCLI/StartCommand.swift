import CortexCore
import CortexDaemon
import Posix

/// `cortex start` (detached; returns once the daemon and all its workers are ready) and
/// `cortex daemon` (foreground).
enum StartCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    if args.flag("--foreground") { return try runForeground(&args, ctx) }
    let workers = try args.intOption("--workers", min: 1, max: 1024)
    let timeout = try args.intOption("--timeout", min: 1, max: 86_400) ?? 60
    try args.noPositionals()
    let v = try DaemonControl.start(ctx, workers: workers, timeoutS: timeout)
    let web = WebAddress.read(ctx.paths)
    if ctx.json {
      var o = v.object ?? []
      if let web { o.append(("web_url", .string(web))) }
      ctx.printJSON(.object(o))
    } else {
      ctx.err("cortex: daemon started (pid \(v["pid"]?.int ?? 0), \(v["workers_ready"]?.int ?? 0) workers ready) in \(ctx.paths.root)\n")
      if let web { ctx.err("cortex: dashboard at \(web)\n") }
    }
    return 0
  }

  static func runForeground(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    var options = DaemonOptions()
    options.workers = try args.intOption("--workers", min: 1, max: 1024)
    options.detach = args.flag("--detach")
    try args.noPositionals()
    do throws(StartupError) {
      let d = try Daemon(paths: ctx.paths, options: options)
      return d.run()
    } catch {
      throw CLIError(error.exitCode, error.description)
    }
  }
}

/// `cortex stop`: graceful; returns once the daemon process is gone.
enum StopCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let timeout = try args.intOption("--timeout", min: 0, max: 86_400) ?? 30
    try args.noPositionals()
    let (pid, answer) = try DaemonControl.stop(ctx, timeoutS: timeout, progress: ctx.json ? nil : { ctx.err("cortex: \($0)\n") })
    if ctx.json {
      ctx.printJSON(answer ?? .object([("ok", .bool(true))]))
    } else if answer?["clean"]?.bool == false {
      // The log could not be written: the daemon left as after a crash (docs/design.md, I/O errors).
      let why = answer?["error"]?.string ?? "the decision log cannot be written"
      ctx.err("cortex: daemon stopped (pid \(pid)) without its final events (\(why)); the next start recovers from the log\n")
    } else {
      ctx.err("cortex: daemon stopped (pid \(pid))\n")
    }
    return 0
  }
}
