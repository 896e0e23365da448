import CortexCore
import Posix

/// `cortex help [COMMAND]`: the overview, or one command's flags, defaults and examples.
/// `--man` prints the whole manual page (roff) that `scripts/package` installs as cortex(1).
enum HelpCommand {
  static let help = CommandHelp(
    "help", abstract: "describe a command's flags, with defaults and examples", usage: "cortex help [COMMAND | --man]",
    flags: [
      .flag("--man", help: "print the manual page, cortex(1), as roff (what `man cortex` shows)"),
      .flag("--dump", help: "the help of every command as JSON (for tests and tools)"),
    ],
    operands: .cortexCommand,
    examples: [("cortex help submit", "every flag of submit"), ("cortex help --man | man -l -", "the manual without installing it")])

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let man = args.flag("--man")
    let dump = args.flag("--dump")
    var words = try args.positionals()
    if man {
      ctx.out(ManPage.render(CortexMain.commands.map(\.help)))
      return 0
    }
    if dump {
      ctx.printJSON(.array(CortexMain.commands.map { describe($0.help) }))
      return 0
    }
    if words.first == "task" && [nil, "create"].contains(words.dropFirst().first) { words = ["submit"] }
    guard let name = words.first else {
      ctx.out(CortexMain.usageText)
      return 0
    }
    if words.count > 1 { throw CLIError.usage("give one command", help.usage) }
    guard let c = CortexMain.commands.first(where: { $0.name == name }) else {
      throw CortexMain.unknownCommand(name, usage: "cortex help COMMAND (see cortex help)")
    }
    ctx.out(c.help.text)
    return 0
  }

  static func describe(_ h: CommandHelp) -> JSON {
    .object([
      ("name", .string(h.name)), ("hidden", .bool(h.hidden)), ("file", .string(h.file)),
      ("parsed_in", .array(h.parsedIn.map { .string($0) })),
      ("flags", .array(h.flags.map { f in .array(f.names.map { .string($0) }) })),
    ])
  }
}
