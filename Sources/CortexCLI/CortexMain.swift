import CortexCore
import Posix

/// The `cortex` command: global options, then one command, each in its own file.
public enum CortexMain {
  struct Command: Sendable {
    let name: String
    let abstract: String
    let usage: String
    let hidden: Bool
    let run: @Sendable (inout Args, Context) throws(CLIError) -> Int32
  }

  static let commands: [Command] = [
    Command(
      name: "init", abstract: "write config.json and the directory layout (idempotent)",
      usage: "cortex init [--workers N] [--force] [--cluster DSN [--node NAME]]",
      hidden: false, run: InitCommand.run),
    Command(
      name: "start", abstract: "start the daemon and its worker pool (detached unless --foreground)",
      usage: "cortex start [--foreground] [--workers N] [--timeout S]", hidden: false, run: StartCommand.run),
    Command(
      name: "daemon", abstract: "run the daemon in the foreground", usage: "cortex daemon [--workers N]", hidden: false,
      run: StartCommand.runForeground),
    Command(
      name: "stop", abstract: "stop gracefully: admit nothing, drain or requeue, reap, final snapshot", usage: "cortex stop [--timeout S]",
      hidden: false, run: StopCommand.run),
    Command(name: "submit", abstract: "submit tasks; prints their ids", usage: SubmitCommand.usage, hidden: false, run: SubmitCommand.run),
    Command(
      name: "list", abstract: "list tasks", usage: "cortex list [--state S] [--type T] [--limit N]", hidden: false, run: ListCommand.run),
    Command(
      name: "show", abstract: "a task's spec, state, attempts, worker, timings, tokens and estimate", usage: "cortex show ID",
      hidden: false, run: ShowCommand.run),
    Command(
      name: "cancel", abstract: "cancel tasks; returns once their process groups are gone", usage: "cortex cancel ID...", hidden: false,
      run: CancelCommand.run),
    Command(
      name: "wait", abstract: "wait for tasks; exit 0 only if all succeeded", usage: "cortex wait ID...", hidden: false,
      run: WaitCommand.run),
    Command(name: "log", abstract: "a task's output", usage: "cortex log ID [--follow]", hidden: false, run: LogCommand.run),
    Command(
      name: "clean", abstract: "remove finished tasks' files (show and wait still answer for them)", usage: CleanCommand.usage,
      hidden: false, run: CleanCommand.run),
    Command(
      name: "tail", abstract: "the decision log, pretty or --json",
      usage: "cortex tail [-f] [--type GLOB] [--task ID] [--since DUR] [-n N]", hidden: false, run: TailCommand.run),
    Command(
      name: "status", abstract: "daemon, pool, queue and budget at a glance (reads hot-state.mmap)", usage: "cortex status", hidden: false,
      run: StatusCommand.run),
    Command(
      name: "top", abstract: "live full-screen view: worker grid, queue, budget, rates (reads hot-state.mmap)",
      usage: TopCommand.usage, hidden: false, run: TopCommand.run),
    Command(name: "workers", abstract: "the worker pool", usage: "cortex workers", hidden: false, run: PoolCommands.workers),
    Command(
      name: "budget", abstract: "the token budget and its allocations", usage: "cortex budget", hidden: false, run: PoolCommands.budget),
    Command(
      name: "scale", abstract: "resize the worker pool without a restart", usage: "cortex scale N", hidden: false, run: PoolCommands.scale),
    Command(
      name: "cluster", abstract: "cluster mode on PostgreSQL: migrate the schema, show nodes and leases",
      usage: ClusterCommand.usage, hidden: false, run: ClusterCommand.run),
    Command(
      name: "doctor", abstract: "check the directory: lock, socket, FIFOs, log, snapshots, budget, processes",
      usage: "cortex doctor [--repair]", hidden: false, run: DoctorCommand.run),
    Command(
      name: "certify", abstract: "check a benchmark summary against gates (0 certified, 1 not, 2 invalid evidence)",
      usage: CertifyCommand.usage, hidden: false, run: CertifyCommand.run),
    Command(
      name: "demo", abstract: "run the daemon with its pool on a demo workload and summarize",
      usage: "cortex demo [--tasks N] [--workers N] [--keep]", hidden: false, run: DemoCommand.run),
    Command(
      name: "bench", abstract: "measure Cortex against a real daemon", usage: BenchCommand.usage, hidden: false, run: BenchCommand.run),
    Command(
      name: "worker", abstract: "a pool worker (started by the daemon)", usage: "cortex worker --dir DIR --slot N [--heartbeat-ms MS]",
      hidden: true, run: WorkerCommand.run),
  ]

  static var usageText: String {
    var s = "usage: cortex [--dir DIR] [--json] [--color auto|never|always] COMMAND [ARGS]\n\ncommands:\n"
    for c in commands where !c.hidden {
      s += "  " + c.name + String(repeating: " ", count: max(1, 10 - c.name.count)) + c.abstract + "\n"
    }
    s += "\n`cortex task create` is `cortex submit`. The directory is --dir, else $CORTEX_DIR, else ./coordination.\n"
    s += "Exit codes: 0 ok, 1 failure, 64 usage, 65 invalid task spec, 69 daemon not running, 75 refused (backpressure).\n"
    s += "wait and submit --wait: one task gives its own code (124 timed out, 130 cancelled, 128+N killed by signal N);\n"
    s += "several give 0 if all succeeded, else 1. With --json, an error is also a JSON object on stdout.\n"
    return s
  }

  public static func main(_ argv: [String]) -> Int32 {
    Signal.ignore(Signal.pipe)
    var words = Array(argv.dropFirst())
    var dir = Environment.get("CORTEX_DIR") ?? "coordination"
    var json = false
    var colorMode = "auto"
    // Global options come before the command.
    while let w = words.first, w.hasPrefix("-") {
      if w == "--json" {
        json = true
        words.removeFirst()
      } else if w == "--dir" || w == "--color" {
        guard words.count >= 2 else {
          return fail(CLIError.usage("\(w) needs a value", "cortex [--dir DIR] [--json] [--color auto|never|always] COMMAND"))
        }
        if w == "--dir" { dir = words[1] } else { colorMode = words[1] }
        words.removeFirst(2)
      } else if w.hasPrefix("--dir=") {
        dir = String(w.dropFirst(6))
        words.removeFirst()
      } else if w.hasPrefix("--color=") {
        colorMode = String(w.dropFirst(8))
        words.removeFirst()
      } else if w == "-h" || w == "--help" {
        try? FileDescriptor.standardOutput.writeAll(usageText)
        return 0
      } else if w == "--version" {
        try? FileDescriptor.standardOutput.writeAll("cortex 0.1.0\n")
        return 0
      } else {
        return fail(CLIError.usage("unknown option \(w)", "cortex [--dir DIR] [--json] [--color auto|never|always] COMMAND"), json: json)
      }
    }
    guard var name = words.first else {
      try? FileDescriptor.standardError.writeAll(usageText)
      return ExitCode.usage
    }
    words.removeFirst()
    if name == "task", words.first == "create" {
      name = "submit"
      words.removeFirst()
    }
    if name == "help" {
      try? FileDescriptor.standardOutput.writeAll(usageText)
      return 0
    }
    guard let cmd = commands.first(where: { $0.name == name }) else {
      return fail(CLIError.usage("unknown command '\(name)'", "cortex COMMAND (see cortex --help)"), json: json || words.contains("--json"))
    }
    // Global options may also follow the command.
    var args = Args(words, usage: cmd.usage)
    do throws(CLIError) {
      if let d = try args.option("--dir") { dir = d }
      if args.flag("--json") { json = true }
      if let c = try args.option("--color") { colorMode = c }
      if args.flag("-h", "--help") {
        try? FileDescriptor.standardOutput.writeAll("usage: \(cmd.usage)\n\n\(cmd.abstract)\n")
        return 0
      }
      guard ["auto", "never", "always"].contains(colorMode) else {
        throw CLIError.usage("--color must be auto, never or always, not '\(colorMode)'", cmd.usage)
      }
      let color =
        colorMode == "always" || (colorMode == "auto" && FileDescriptor.standardOutput.isTerminal && Environment.get("NO_COLOR") == nil)
      let ctx = Context(
        paths: Paths(root: FileSystem.absolute(dir)), json: json, color: color, executable: Processes.executablePath())
      return try cmd.run(&args, ctx)
    } catch {
      return fail(error, json: json)
    }
  }

  /// Reports an error: the message on stderr; under `--json` also, on stdout,
  /// `{"ok":false,"code":N,"error":"…"}` with the daemon's `reason`, `field` and `position` when
  /// it gave them. Returns the exit code.
  static func fail(_ e: CLIError, json: Bool = false) -> Int32 {
    try? FileDescriptor.standardError.writeAll("cortex: \(e.description)\n")
    if json {
      var o: [(String, JSON)] = [("ok", .bool(false)), ("code", .int(Int64(e.code))), ("error", .string(e.description))]
      for k in ["reason", "field", "position"] { if let v = e.answer?[k] { o.append((k, v)) } }
      try? FileDescriptor.standardOutput.writeAll(JSON.object(o).encoded() + "\n")
    }
    return e.code
  }
}

extension CortexMain {
  /// Runs the command line and exits with its code.
  public static func exit(with argv: [String]) -> Never { Processes.exit(main(argv)) }
}
