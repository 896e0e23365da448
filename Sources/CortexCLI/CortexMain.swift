import CortexCore
import Posix

/// The `cortex` command: global options, then one command, each in its own file.
public enum CortexMain {
  /// A command: its name, its help (flags, examples; CommandHelp.swift) and what runs it. The
  /// help is built only when asked for: a `cortex submit` from a shell loop looks its command up
  /// by name and never pays for the other commands' help tables (about 0.15 ms of every start).
  struct Command: Sendable {
    let name: String
    private let makeHelp: @Sendable () -> CommandHelp
    let run: @Sendable (inout Args, Context) throws(CLIError) -> Int32
    var help: CommandHelp { makeHelp() }
    var usage: String { help.usage }
    var abstract: String { help.abstract }
    var hidden: Bool { help.hidden }

    /// `name` is the help's name (`HelpTests` runs `cortex NAME --help` for every help table).
    init(
      _ name: String, _ help: @escaping @autoclosure @Sendable () -> CommandHelp,
      _ run: @escaping @Sendable (inout Args, Context) throws(CLIError) -> Int32
    ) {
      self.name = name
      self.makeHelp = help
      self.run = run
    }
  }

  /// Every command, in the order `cortex help` lists them. Each one's help sits in its own file.
  static let commands: [Command] = [
    Command("init", InitCommand.help, InitCommand.run),
    Command("start", StartCommand.help, StartCommand.run),
    Command("daemon", StartCommand.daemonHelp, StartCommand.runForeground),
    Command("stop", StopCommand.help, StopCommand.run),
    Command("restart", RestartCommand.help, RestartCommand.run),
    Command("submit", SubmitCommand.help, SubmitCommand.run),
    Command("list", ListCommand.help, ListCommand.run),
    Command("show", ShowCommand.help, ShowCommand.run),
    Command("cancel", CancelCommand.help, CancelCommand.run),
    Command("wait", WaitCommand.help, WaitCommand.run),
    Command("kill", CancelCommand.killHelp, CancelCommand.run),
    Command("retry", RetryCommand.help, RetryCommand.run),
    Command("edit", EditCommand.help, EditCommand.run),
    Command("pause", PauseCommand.pauseHelp, PauseCommand.pause),
    Command("resume", PauseCommand.resumeHelp, PauseCommand.resume),
    Command("group", GroupCommand.help, GroupCommand.run),
    Command("log", LogCommand.help, LogCommand.run),
    Command("clean", CleanCommand.help, CleanCommand.run),
    Command("tail", TailCommand.help, TailCommand.run),
    Command("status", StatusCommand.help, StatusCommand.run),
    Command("top", TopCommand.help, TopCommand.run),
    Command("workers", PoolCommands.workersHelp, PoolCommands.workers),
    Command("budget", PoolCommands.budgetHelp, PoolCommands.budget),
    Command("scale", PoolCommands.scaleHelp, PoolCommands.scale),
    Command("cluster", ClusterCommand.help, ClusterCommand.run),
    Command("doctor", DoctorCommand.help, DoctorCommand.run),
    Command("certify", CertifyCommand.help, CertifyCommand.run),
    Command("demo", DemoCommand.help, DemoCommand.run),
    Command("bench", BenchCommand.help, BenchCommand.run),
    Command("help", HelpCommand.help, HelpCommand.run),
    Command("completions", CompletionsCommand.help, CompletionsCommand.run),
    Command("__complete", CompletionsCommand.completeHelp, CompletionsCommand.complete),
    Command("worker", WorkerCommand.help, WorkerCommand.run),
    Command("hook-guard", HookGuardCommand.help, HookGuardCommand.run),
    Command("agent-run", AgentRunCommand.help, AgentRunCommand.run),
  ]

  static var usageText: String {
    var s = "usage: cortex [--dir DIR] [--json] [--color auto|never|always] COMMAND [ARGS]\n\ncommands:\n"
    for c in commands where !c.hidden {
      s += "  " + c.name + String(repeating: " ", count: max(1, 12 - c.name.count)) + c.abstract + "\n"
    }
    s += "\n`cortex help COMMAND` or `cortex COMMAND --help` describes a command's flags, with examples; `man cortex` all of them.\n"
    s += "`cortex task create` is `cortex submit`. The directory is --dir, else $CORTEX_DIR, else the nearest coordination/\n"
    s += "(with a config.json) in the working directory or a parent, else ./coordination.\n"
    s +=
      "Exit codes: 0 ok, 1 failure, 64 usage, 65 invalid task spec or unknown task id, 69 daemon not running, 75 refused (backpressure).\n"
    s += "wait and submit --wait: one task gives its own code (124 timed out, 130 cancelled, 128+N killed by signal N);\n"
    s += "several give 0 if all succeeded, else 1. With --json, an error is also a JSON object on stdout.\n"
    return s
  }

  public static func main(_ argv: [String]) -> Int32 {
    Processes.finishStartup()
    Signal.ignore(Signal.pipe)
    var words = Array(argv.dropFirst())
    var dir: String? = nil
    var json = false
    var colorMode = "auto"
    // Global options come before the command.
    while let w = words.first, w.hasPrefix("-") {
      if w == "--json" {
        json = true
        words.removeFirst()
      } else if w == "--dir" || w == "--color" {
        guard words.count >= 2 else {
          return fail(
            CLIError.usage("\(w) needs a value", "cortex [--dir DIR] [--json] [--color auto|never|always] COMMAND"),
            json: json || words.contains("--json"))
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
        try? FileDescriptor.standardOutput.writeAll("cortex \(CortexVersion.string)\n")
        return 0
      } else {
        let command = words.dropFirst().first { w in commands.contains { $0.name == w && !$0.hidden } }
        return fail(unknownGlobalOption(w, command: command), json: json)
      }
    }
    guard var name = words.first else {
      try? FileDescriptor.standardError.writeAll(usageText)
      return ExitCode.usage
    }
    words.removeFirst()
    if name == "task" {
      // `cortex task create` is `cortex submit`; `cortex task --help` is its help.
      guard let sub = words.first, sub == "create" || sub == "-h" || sub == "--help" else {
        return fail(taskWithoutCreate(words.first), json: json || words.contains("--json"))
      }
      name = "submit"
      if sub == "create" { words.removeFirst() }
    }
    guard let cmd = commands.first(where: { $0.name == name }) else {
      return fail(unknownCommand(name, usage: "cortex COMMAND (see cortex --help)"), json: json || words.contains("--json"))
    }
    if let e = StaticClient.handOverIfNeeded(cmd.name) { return fail(e, json: json || words.contains("--json")) }
    // Global options may also follow the command.
    var args = Args(words, usage: cmd.usage)
    do throws(CLIError) {
      // Global options keep their last value (an alias's --dir can be overridden), unlike a command's.
      if let d = try args.options(["--dir"]).last { dir = d }
      if args.flag("--json") { json = true }
      if let c = try args.options(["--color"]).last { colorMode = c }
      if args.flag("-h", "--help") {
        try? FileDescriptor.standardOutput.writeAll(cmd.help.text)
        return 0
      }
      // `--dir "$UNSET"`: an empty name would quietly mean the working directory.
      if dir == "" { throw CLIError.usage("--dir needs a directory, not an empty string", cmd.usage) }
      guard ["auto", "never", "always"].contains(colorMode) else {
        throw CLIError.usage("--color must be auto, never or always, not \(quoted(colorMode))", cmd.usage)
      }
      let color =
        colorMode == "always" || (colorMode == "auto" && FileDescriptor.standardOutput.isTerminal && Environment.get("NO_COLOR") == nil)
      let lookup = DirectoryLookup.locate(option: dir, environment: Environment.get("CORTEX_DIR"), walkUp: cmd.name != "init")
      // The commands that never read the directory run wherever they are.
      if let why = lookup.unnamable,
        !["help", "completions", "__complete", "certify", "demo", "agent-run", "hook-guard"].contains(cmd.name)
      {
        throw CLIError.usage(why, cmd.usage)
      }
      let ctx = Context(paths: Paths(root: lookup.root), json: json, color: color, lookup: lookup)
      return try cmd.run(&args, ctx)
    } catch {
      return fail(error, json: json)
    }
  }

  /// Reports an error: the message on stderr; under `--json` also, on stdout,
  /// `{"ok":false,"code":N,"error":"…"}` with the daemon's `reason`, `field` and `position` when
  /// it gave them. Returns the exit code.
  static func fail(_ e: CLIError, json: Bool = false) -> Int32 {
    // Values are quoted into messages with `quoted`, which writes out their control characters;
    // anything else that reached a message (an older daemon's words) cannot send an escape
    // sequence to the terminal either: every line is made `visible`.
    let message = shortened(e.description).split(separator: "\n", omittingEmptySubsequences: false).map(visible).joined(separator: "\n")
    try? FileDescriptor.standardError.writeAll("cortex: \(message)\n")
    if json {
      var o: [(String, JSON)] = [("ok", .bool(false)), ("code", .int(Int64(e.code))), ("error", .string(message))]
      for k in ["reason", "field", "position", "outcome"] { if let v = e.answer?[k] { o.append((k, v)) } }
      try? FileDescriptor.standardOutput.writeAll(JSON.object(o).encoded() + "\n")
    }
    return e.code
  }
}

extension CortexMain {
  /// An error message whose lines stay readable: a line of more than 1,000 characters (one that
  /// quotes a 100 KB --group or --cwd back) keeps its start and end around a count of what was cut.
  static func shortened(_ message: String) -> String {
    guard message.count > 1000 else { return message }
    return message.split(separator: "\n", omittingEmptySubsequences: false).map { line in
      guard line.count > 1000 else { return String(line) }
      return "\(line.prefix(400))… (\(line.count - 600) characters cut) …\(line.suffix(200))"
    }.joined(separator: "\n")
  }

  /// An option before the command that is not a global one: the global option it is most likely a
  /// typo of (`--dri`), else a command's option given before its name (`cortex --workers 4 start`).
  static func unknownGlobalOption(_ word: String, command: String?) -> CLIError {
    let name = String(word.prefix { $0 != "=" })
    let usage = "cortex [--dir DIR] [--json] [--color auto|never|always] COMMAND"
    if let near = Suggest.nearest(name, among: ["--dir", "--json", "--color", "--help", "--version"]) {
      return CLIError.usage("unknown option \(word); did you mean \(near)?", usage)
    }
    return CLIError.usage("unknown option \(word) (a command's options go after its name: cortex \(command ?? "COMMAND") \(word))", usage)
  }

  /// `cortex task` with no subcommand, or another than `create`.
  static func taskWithoutCreate(_ sub: String?) -> CLIError {
    let what = sub.map { "unknown task command \(quoted($0))" } ?? "cortex task needs a command"
    // `cortex task list` (or show, wait, cancel): a command of its own.
    let own = sub.flatMap { s in commands.first { $0.name == s && !$0.hidden } }.map {
      "; \($0.name) is a command of its own: cortex \($0.name)"
    }
    return CLIError.usage(
      "\(what): the one is `cortex task create` (the same as cortex submit)\(own ?? "")", "cortex task create [FLAGS] [-- CMD [ARGS...]]")
  }

  /// An unknown command, with the listed one it is most likely a typo of (Suggest.nearest).
  static func unknownCommand(_ name: String, usage: String) -> CLIError {
    let near = Suggest.nearest(name, among: commands.filter { !$0.hidden }.map(\.name))
    return CLIError.usage("unknown command \(quoted(name))" + (near.map { "; did you mean \(quoted($0))?" } ?? ""), usage)
  }

  /// Runs the command line and exits with its code.
  public static func exit(with argv: [String]) -> Never { Processes.exit(main(argv)) }

  /// Runs this process's command line (read without /proc, see `Processes.arguments`) and exits.
  /// A word that is not UTF-8 (`$'caf\xe9.png'`) is refused: read as text it would become
  /// U+FFFD, and a task would run on, or be labelled with, something other than what was typed.
  public static func exit() -> Never {
    let argv = Processes.arguments()
    if let i = Processes.argumentNotUTF8() {
      let e = CLIError.usage(
        "argument \(i) (\(quoted(argv[i]))) is not valid UTF-8; Cortex keeps commands, paths and names as UTF-8 text",
        "cortex [--dir DIR] [--json] [--color auto|never|always] COMMAND [ARGS]")
      Processes.exit(fail(e, json: argv.contains("--json")))
    }
    exit(with: argv)
  }
}
