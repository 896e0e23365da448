import CortexCore
import Posix

/// What `cortex submit` checks of its words before it builds a spec: a command typed without `--`,
/// and task flags beside `--from`; and what it adds to each line of a batch: the submitter's
/// working directory, as a one-task submit does.
extension SubmitCommand {
  /// `cortex submit make test` (no `--`): the words left once every flag is taken start with one
  /// that is not an option, so they were meant as the command (with any words after a later
  /// `--`). Says how to write it (64).
  static func commandNeedsDashDash(_ left: [String], _ afterDashDash: [String]) throws(CLIError) {
    guard let first = left.first, !first.hasPrefix("-") else { return }
    // One quoted word with spaces ('make test') is a command line: split it, or run it with --shell.
    let line = left.count == 1 && afterDashDash.isEmpty && first.contains(" ")
    let given = line ? first.split(separator: " ").map(String.init) : left + afterDashDash
    let words = given.map { w in
      w.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,@%+".contains($0) } ? w : Scheduler.shellQuote(w)
    }
    var hint = "cortex submit [FLAGS] -- \(words.joined(separator: " "))"
    if line { hint += ", or as a shell line: cortex submit [FLAGS] --shell \(Scheduler.shellQuote(first))" }
    throw CLIError.usage("\(quoted(first)) is not a flag: a command goes after the flags and --, as in: \(hint)", usage)
  }

  /// The flag that sets each spec field (for an error that names what the user typed).
  static let flagOfField: [String: String] = [
    "shell": "--shell", "synthetic": "--synthetic", "type": "--type", "description": "--description",
    "priority": "--priority", "group": "--group", "token_budget": "--tokens", "timeout_s": "--timeout",
    "max_attempts": "--retries", "depends_on": "--after", "labels": "--label", "env": "--env",
    "idempotency_key": "--idempotency-key", "sla_deadline": "--sla or --sla-deadline",
  ]

  /// A batch takes every field from its lines: a task flag beside `--from` would be dropped
  /// without a word, so it is refused (64), naming the flag and where the field goes instead.
  static func batchTakesNoSpecFlags(_ spec: [(String, JSON)]) throws(CLIError) {
    guard let field = spec.first?.0 else { return }
    throw CLIError.usage(
      "\(flagOfField[field] ?? field) does not apply to --from: give \"\(field)\" in each line of the batch", usage)
  }

  /// `--cwd` made absolute (it must be a directory: 65 naming `cwd`), else the current directory.
  /// A working directory whose name is not UTF-8 cannot be given to a task (65): read as text it
  /// names another directory, one with U+FFFD in it, where the task would fail to start.
  static func workingDirectory(_ cwd: String?) throws(CLIError) -> String? {
    if !(cwd?.hasPrefix("/") ?? false) { try workingDirectoryIsUTF8(cwd) }
    guard let c = cwd else { return FileSystem.currentDirectory() }
    guard let real = FileSystem.realPath(c), FileSystem.isDirectory(real) else {
      throw CLIError(ExitCode.invalidSpec, "cwd: \(quoted(c)) \(FileSystem.exists(c) ? "is not a directory" : "does not exist")")
    }
    return real
  }

  /// Refuses (65) a task directory taken from a working directory whose name is not UTF-8:
  /// `relative` is the relative cwd given, nil for the working directory itself.
  static func workingDirectoryIsUTF8(_ relative: String?) throws(CLIError) {
    guard FileSystem.currentDirectory().contains("\u{FFFD}"), let raw = FileSystem.currentDirectoryNotUTF8() else { return }
    throw CLIError(
      ExitCode.invalidSpec,
      "cwd: the working directory \(raw) is not valid UTF-8, so \(relative.map { "the relative cwd \(quoted($0))" } ?? "the task") "
        + "cannot be given it (Cortex keeps paths as UTF-8 text): give --cwd an absolute UTF-8 path, or cd to a directory whose path is UTF-8"
    )
  }

  /// A line that runs something (a command, a shell string or a worker type's template) and
  /// names no `cwd` runs in the submitter's directory (`dir`, asked for only then), as a one-task
  /// submit does; without it the task would run wherever the daemon was started. A relative
  /// `cwd` ("build") is taken from the submitter's directory, as `--cwd build` is.
  static func withDirectory(_ spec: JSON, _ dir: () throws(CLIError) -> String?) throws(CLIError) -> JSON {
    guard var o = spec.object else { return spec }
    if let i = o.firstIndex(where: { $0.0 == "cwd" }) {
      guard let c = o[i].1.string, !c.isEmpty, !c.hasPrefix("/") else { return spec }
      try workingDirectoryIsUTF8(c)
      o[i].1 = .string(FileSystem.realPath(c) ?? FileSystem.absolute(c))
      return .object(o)
    }
    guard o.contains(where: { ["command", "shell", "type"].contains($0.0) && !$0.1.isNull }), let dir = try dir() else { return spec }
    o.append(("cwd", .string(dir)))
    return .object(o)
  }

  /// A JSONL batch: one spec per line; blank lines skipped. Returns the specs and the line (from 1)
  /// each came from. A JSON array, or one object written over several lines, is the usual
  /// mistake: the error says so and how to turn it into lines (`jq -c`).
  static func readBatch(_ from: String) throws(CLIError) -> (specs: [JSON], lines: [Int]) {
    var bytes: [UInt8] = []
    let name = from == "-" ? "stdin" : from
    if from == "-" {
      while (try? FileDescriptor.standardInput.read(appendingTo: &bytes, max: 1 << 16)) ?? 0 > 0 {}
    } else {
      // A file name that names no file (a typo, a directory) is a usage error; a read that fails is a failure.
      if FileSystem.isDirectory(from) {
        throw CLIError.usage(
          "--from \(from) is a directory; give a JSONL file (one task spec per line), or - for stdin", SubmitCommand.usage)
      }
      let read: [UInt8]?
      do throws(PosixError) { read = try FileSystem.read(from) } catch { throw CLIError(ExitCode.failure, "cannot read \(from): \(error)") }
      guard let read else { throw CLIError.usage("cannot read --from \(from): it does not exist", SubmitCommand.usage) }
      bytes = read
    }
    let source = from == "-" ? "" : " \(Scheduler.shellQuote(from))"
    var specs: [JSON] = []
    var lines: [Int] = []
    var lineNo = 0
    for line in bytes.split(separator: 10, omittingEmptySubsequences: false) {
      lineNo += 1
      if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
      let spec: JSON
      do { spec = try JSON.parse(line) } catch {
        var why = "\(name) line \(lineNo): task \(specs.count + 1): not JSON: \(error)"
        if let whole = try? JSON.parse(bytes), whole.object != nil || whole.array != nil {
          let filter = whole.array != nil ? "'.[]'" : "."
          why += " (the input is one JSON \(whole.array != nil ? "array" : "object") over several lines; --from takes one task "
          why += "object per line: jq -c \(filter)\(source) | cortex submit --from -)"
        }
        throw CLIError(ExitCode.invalidSpec, why)
      }
      if spec.array != nil {
        throw CLIError(
          ExitCode.invalidSpec,
          "\(name) line \(lineNo): a JSON array; --from takes one task object per line: jq -c '.[]'\(source) | cortex submit --from -")
      }
      specs.append(spec)
      lines.append(lineNo)
    }
    if specs.isEmpty { throw CLIError(ExitCode.invalidSpec, "\(name): no task specs") }
    return (specs, lines)
  }
}
