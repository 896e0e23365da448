import CortexCore
import Posix

/// What a command's words complete to in a shell.
enum Completion: String, Sendable {
  /// `command` is a program to run (after `--`), `cortexCommand` one of cortex's own.
  case none, file, directory, taskID = "task-id", workerType = "worker-type", command, cortexCommand = "cortex-command"
  /// A group name (from config.json and the daemon's groups.json).
  case group
}

/// One option of a command: `cortex CMD --help`, `cortex help CMD`, the man page and the shell
/// completions are all made from these, so a flag the parser takes and the help omits is a bug
/// the test suite names (`HelpTests`).
struct FlagHelp: Sendable {
  /// Spellings, short first: `["-f", "--follow"]`.
  let names: [String]
  /// The value's placeholder (`N`, `DUR`), nil for a switch.
  let value: String?
  let text: String
  let defaultValue: String?
  /// Values to offer when completing, or what kind of word the value is.
  let choices: [String]
  let completes: Completion

  /// A switch: present or not.
  static func flag(_ names: String..., help: String) -> FlagHelp {
    FlagHelp(names: names, value: nil, text: help, defaultValue: nil, choices: [], completes: .none)
  }

  /// An option with a value.
  static func option(
    _ names: String..., value: String, help: String, default defaultValue: String? = nil, choices: [String] = [],
    completes: Completion = .none
  ) -> FlagHelp {
    FlagHelp(names: names, value: value, text: help, defaultValue: defaultValue, choices: choices, completes: completes)
  }

  /// `-f, --follow` or `--priority P`.
  var label: String { names.joined(separator: ", ") + (value.map { " " + $0 } ?? "") }
}

/// One command's help. Each command file declares its own next to the code that parses it
/// (`static let help`), and `CortexMain.commands` lists them once.
struct CommandHelp: Sendable {
  let name: String
  /// One line, lower case, no period: shown in `cortex help`.
  let abstract: String
  /// The synopsis after `usage: `; more lines for alternative forms.
  let usage: String
  /// What it does, in a paragraph or two (plain text, wrapped by the reader's terminal).
  let details: String
  let flags: [FlagHelp]
  /// What the positional words complete to.
  let operands: Completion
  /// Fixed words the first positional may be (`bench` profiles, `cluster` subcommands).
  let operandWords: [String]
  /// What the second positional completes to after a given first one (`group set NAME`: a
  /// group). `operandWords` belong only to the first; nothing else is offered after it.
  let secondOperand: [String: Completion]
  /// (command line, what it does)
  let examples: [(String, String)]
  let hidden: Bool
  /// The source file that declares it (and parses its flags), for the check that they agree.
  let file: String
  /// Other files that parse its flags (`CortexCLI/Load/LoadProfiles.swift`).
  let parsedIn: [String]

  init(
    _ name: String, abstract: String, usage: String, details: String = "", flags: [FlagHelp] = [], operands: Completion = .none,
    operandWords: [String] = [], secondOperand: [String: Completion] = [:], examples: [(String, String)] = [], hidden: Bool = false,
    parsedIn: [String] = [], file: String = #fileID
  ) {
    self.name = name
    self.abstract = abstract
    self.usage = usage
    self.details = details
    self.flags = flags
    self.operands = operands
    self.operandWords = operandWords
    self.secondOperand = secondOperand
    self.examples = examples
    self.hidden = hidden
    self.file = file
    self.parsedIn = parsedIn
  }

  /// Options every command takes, before or after its name.
  static let globalFlags: [FlagHelp] = [
    .option(
      "--dir", value: "DIR",
      help:
        "the coordination directory; else $CORTEX_DIR, else the nearest coordination/ with a config.json in the working directory or a parent, else ./coordination",
      completes: .directory),
    .flag("--json", help: "machine output on stdout (errors too, as {\"ok\":false,...}); messages stay on stderr"),
    .option(
      "--color", value: "WHEN", help: "color on a terminal unless NO_COLOR is set", default: "auto", choices: ["auto", "never", "always"]),
    .flag("-h", "--help", help: "this help"),
  ]

  /// `cortex CMD --help` and `cortex help CMD`.
  var text: String {
    var s = "usage: \(usage)\n\n\(abstract)\n"
    if !details.isEmpty { s += "\n" + Self.wrap(details, indent: 0) }
    if !flags.isEmpty { s += "\noptions:\n" + Self.flagTable(flags) }
    s += "\nglobal options:\n" + Self.flagTable(Self.globalFlags)
    if !examples.isEmpty {
      s += "\nexamples:\n"
      for (line, what) in examples { s += "  \(line)\n      \(what)\n" }
    }
    return s
  }

  static func flagTable(_ flags: [FlagHelp]) -> String {
    let width = min(30, flags.map(\.label.count).max() ?? 0)
    var s = ""
    for f in flags {
      var text = f.text
      if !f.choices.isEmpty && !text.contains(f.choices[0]) { text += " (\(f.choices.joined(separator: ", ")))" }
      if let d = f.defaultValue { text += " [default: \(d)]" }
      let pad =
        f.label.count > width ? "\n" + String(repeating: " ", count: width + 4) : String(repeating: " ", count: width - f.label.count + 2)
      s += "  " + f.label + pad + wrap(text, indent: width + 4)
    }
    return s
  }

  /// Wraps `text` at 100 columns for a first line that starts at column `indent`; the lines after
  /// it are indented to the same column. Newlines in `text` are kept.
  static func wrap(_ text: String, indent: Int) -> String {
    var lines: [String] = []
    for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
      var line = ""
      for word in paragraph.split(separator: " ") {
        if !line.isEmpty && indent + line.count + 1 + word.count > 100 {
          lines.append(line)
          line = ""
        }
        line += (line.isEmpty ? "" : " ") + word
      }
      lines.append(line)
    }
    return lines.joined(separator: "\n" + String(repeating: " ", count: indent)) + "\n"
  }
}
