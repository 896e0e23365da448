import Posix

/// The packaged `cortex` is two programs built from the same code. `/usr/bin/cortex` is linked
/// with `-static-executable`: no dynamic loader to map it, no libc and libm to find and relocate,
/// so a `cortex submit` or `cortex status` from a shell loop starts faster. A static glibc
/// cannot load libpq, though (its dlopen needs the very glibc it was linked with), so this client
/// runs itself only the commands that never need it nor become the daemon, and hands every other
/// one to `cortexd` — the same program linked dynamically against libc, installed at
/// `../lib/cortex/cortexd` from it — by execve: the same pid, arguments, environment and
/// descriptors. The daemon, its workers and agents are then `cortexd` too. A build run from the
/// toolchain (`swift run cortex`, the tests) is dynamic and runs every command itself.
enum StaticClient {
  /// The commands the static client runs itself: they talk to the daemon's socket or read its
  /// files, never PostgreSQL (`group`, `pause`, `resume` and `budget` read it in cluster mode) and
  /// never start a process. Any other command, a new one included, goes to cortexd. A switch, not
  /// a `Set`: the first `Set<String>` of a process has the runtime demangle its type and scan every
  /// conformance record for `String: Hashable`, a third of a `cortex submit`'s instructions.
  static func runsHere(_ name: String) -> Bool {
    switch name {
    case "submit", "list", "show", "cancel", "wait", "kill", "retry", "edit", "log", "tail", "status", "top", "workers",
      "scale", "help", "completions", "__complete":
      return true
    default: return false
    }
  }

  /// Where cortexd is, from the static client at `executable`: `../lib/cortex/cortexd` as the
  /// package installs it, else beside it.
  static func daemonBinary(from executable: String) -> [String] {
    let dir = FileSystem.dirname(executable)
    return [FileSystem.dirname(dir) + "/lib/cortex/cortexd", dir + "/cortexd"]
  }

  /// Hands command `name` to cortexd when this is the static client and the command is not one
  /// of its own. Returns nil when the command runs here, else why the handover failed (execve
  /// returns only then).
  static func handOverIfNeeded(_ name: String) -> CLIError? {
    guard !runsHere(name), Processes.isStaticExecutable else { return nil }
    let exe = Processes.executablePath()
    let candidates = daemonBinary(from: exe)
    guard let daemon = candidates.first(where: FileSystem.isExecutable) else {
      return CLIError(
        1,
        "cortex \(name) runs in cortexd, the dynamically linked half of this installation, which is at neither \(candidates.joined(separator: " nor ")); this cortex (\(exe)) is the statically linked client: reinstall the package"
      )
    }
    let e = Processes.handOver(to: daemon)
    return CLIError(1, "cannot run cortexd for cortex \(name): \(e)")
  }
}
