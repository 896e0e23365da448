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
      if ctx.json {
        let listed = CortexMain.commands.filter { !$0.hidden }
        ctx.printJSON(.array(listed.map { .object([("name", .string($0.name)), ("abstract", .string($0.abstract))]) }))
      } else {
        ctx.out(CortexMain.usageText)
      }
      return 0
    }
    if words.count > 1 { throw CLIError.usage("give one command", help.usage) }
    guard let c = CortexMain.commands.first(where: { $0.name == name }) else {
      throw CortexMain.unknownCommand(name, usage: "cortex help COMMAND (see cortex help)")
    }
    if ctx.json { ctx.printJSON(full(c.help)) } else { ctx.out(c.help.text) }
    return 0
  }

  /// One command's help as `--json help COMMAND` prints it: what the text says, field by field.
  static func full(_ h: CommandHelp) -> JSON {
    let flags: [JSON] = h.flags.map { f in
      var o: [(String, JSON)] = [("names", .array(f.names.map { .string($0) })), ("help", .string(f.text))]
      if let v = f.value { o.append(("value", .string(v))) }
      if let d = f.defaultValue { o.append(("default", .string(d))) }
      if !f.choices.isEmpty { o.append(("choices", .array(f.choices.map { .string($0) }))) }
      return .object(o)
    }
    return .object([
      ("name", .string(h.name)), ("abstract", .string(h.abstract)), ("usage", .string(h.usage)), ("details", .string(h.details)),
      ("flags", .array(flags)),
      ("examples", .array(h.examples.map { .object([("command", .string($0.0)), ("says", .string($0.1))]) })),
    ])
  }

  static func describe(_ h: CommandHelp) -> JSON {
    .object([
      ("name", .string(h.name)), ("hidden", .bool(h.hidden)), ("file", .string(h.file)),
      ("parsed_in", .array(h.parsedIn.map { .string($0) })),
      ("flags", .array(h.flags.map { f in .array(f.names.map { .string($0) }) })),
    ])
  }
}
