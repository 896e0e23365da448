import Posix

/// Where a command task's program is found: on the task's own PATH.
///
/// posix_spawnp(3) searches the PATH of the process that spawns, the worker's (inherited from
/// whoever started the daemon), not the environment the task is given. A task runs with its
/// submitter's environment, so `cortex submit -- mytool` from a shell whose PATH has `mytool`
/// (a virtualenv, `~/.local/bin`, `--env PATH=…`) failed with "command not found" while `--shell
/// mytool` ran. The worker looks the name up as execvp(3) would, in the task's PATH.
enum CommandLookup {
  /// `name` when it has a slash; else the first executable `DIR/name` along the PATH in
  /// `environment` (an empty or relative entry is taken from `cwd`, as the task's shell would);
  /// else `name` unchanged, so that the spawn fails as before with "command not found".
  static func resolve(_ name: String, environment: [String], cwd: String?) -> String {
    guard !name.isEmpty, !name.contains("/") else { return name }
    guard let entry = environment.last(where: { $0.hasPrefix("PATH=") }) else { return name }
    for dir in entry.dropFirst(5).split(separator: ":", omittingEmptySubsequences: false) {
      var base = dir.isEmpty ? "." : String(dir)
      if !base.hasPrefix("/"), let cwd { base = cwd + "/" + base }
      let candidate = base + "/" + name
      if FileSystem.isExecutable(candidate) { return candidate }
    }
    return name
  }
}
