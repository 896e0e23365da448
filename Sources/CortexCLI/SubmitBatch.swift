import CortexCore
import Posix

/// What `cortex submit --from` adds to each line of a batch: the submitter's working directory,
/// as a one-task submit does, and nothing from the task flags, which it refuses.
extension SubmitCommand {
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
  static func workingDirectory(_ cwd: String?) throws(CLIError) -> String? {
    guard let c = cwd else { return FileSystem.currentDirectory() }
    guard let real = FileSystem.realPath(c), FileSystem.isDirectory(real) else {
      throw CLIError(ExitCode.invalidSpec, "cwd: '\(c)' \(FileSystem.exists(c) ? "is not a directory" : "does not exist")")
    }
    return real
  }

  /// A line that runs something (a command, a shell string or a worker type's template) and
  /// names no `cwd` runs in `dir`, the submitter's directory, as a one-task submit does; without
  /// it the task would run wherever the daemon was started.
  static func withDirectory(_ spec: JSON, _ dir: String?) -> JSON {
    guard let dir, var o = spec.object, !o.contains(where: { $0.0 == "cwd" }),
      o.contains(where: { ["command", "shell", "type"].contains($0.0) && !$0.1.isNull })
    else { return spec }
    o.append(("cwd", .string(dir)))
    return .object(o)
  }
}
