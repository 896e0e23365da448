import Posix

/// Where a command task's program is found: on the task's own PATH.
///
/// posix_spawnp(3) searches the PATH of the process that spawns, the worker's (inherited from
/// whoever started the daemon), not the environment the task is given. A task runs with its
/// submitter's environment, so `cortex submit -- mytool` from a shell whose PATH has `mytool`
/// (a virtualenv, `~/.local/bin`, `--env PATH=…`) failed with "command not found" while `--shell
/// mytool` ran. The worker looks the name up as execvp(3) would, in the task's PATH.
enum CommandLookup {
  /// This worker's own PATH, the one posix_spawnp(3) searches, when every entry is absolute
  /// (a relative one would be taken from the worker's directory, not the task's).
  static let workerPath: String? = Environment.get("PATH").flatMap { p in
    p.split(separator: ":", omittingEmptySubsequences: false).allSatisfy { $0.hasPrefix("/") } ? p : nil
  }

  /// `name` when it has a slash; else the first executable `DIR/name` along the PATH in
  /// `environment` (an empty or relative entry is taken from `cwd`, as the task's shell would);
  /// else `name` unchanged, so that the spawn fails as before with "command not found".
  static func resolve(_ name: String, environment: [String], cwd: String?) -> String {
    guard !name.isEmpty, !name.contains("/") else { return name }
    guard let entry = environment.last(where: { $0.hasPrefix("PATH=") }) else { return name }
    // The task's PATH is the worker's (the usual case: both inherit it from one shell):
    // posix_spawnp's own search finds the same file, without an access(2) of each entry here
    // on every task.
    if let own = workerPath, entry.utf8.dropFirst(5).elementsEqual(own.utf8) { return name }
    for dir in entry.dropFirst(5).split(separator: ":", omittingEmptySubsequences: false) {
      var base = dir.isEmpty ? "." : String(dir)
      if !base.hasPrefix("/"), let cwd { base = cwd + "/" + base }
      let candidate = base + "/" + name
      if FileSystem.isExecutable(candidate) { return candidate }
    }
    return name
  }
}
