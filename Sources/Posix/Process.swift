internal import CShim
internal import Glibc

/// How a child ended, from waitpid(2).
public enum ExitStatus: Equatable, Sendable {
  case exited(Int32)
  case signaled(Int32)

  init(raw: Int32) {
    if cshim_wifexited(raw) != 0 {
      self = .exited(cshim_wexitstatus(raw))
    } else if cshim_wifsignaled(raw) != 0 {
      self = .signaled(cshim_wtermsig(raw))
    } else {
      self = .exited(-1)
    }
  }
}

public enum Signal {
  public static let hup = SIGHUP
  public static let int = SIGINT
  public static let kill = SIGKILL
  public static let term = SIGTERM
  public static let chld = SIGCHLD
  public static let pipe = SIGPIPE
  public static let stop = SIGSTOP
  public static let cont = SIGCONT
  public static let usr1 = SIGUSR1
  public static let usr2 = SIGUSR2

  /// The name of a signal number ("SIGTERM"), for messages.
  public static func name(_ sig: Int32) -> String {
    switch sig {
    case SIGHUP: "SIGHUP"
    case SIGINT: "SIGINT"
    case SIGQUIT: "SIGQUIT"
    case SIGABRT: "SIGABRT"
    case SIGKILL: "SIGKILL"
    case SIGSEGV: "SIGSEGV"
    case SIGPIPE: "SIGPIPE"
    case SIGTERM: "SIGTERM"
    case SIGBUS: "SIGBUS"
    case SIGTRAP: "SIGTRAP"
    case SIGILL: "SIGILL"
    case SIGUSR2: "SIGUSR2"
    default: "signal \(sig)"
    }
  }

  /// Routes `sig` to a handler that writes its number as one byte to `pipe`.
  public static func deliver(_ sig: Int32, to pipe: FileDescriptor) throws(PosixError) {
    _ = try retryOnInterrupt("sigaction") { cshim_signal_pipe(pipe.raw, sig) }
  }
  public static func ignore(_ sig: Int32) { _ = cshim_signal_ignore(sig) }
  public static func setDefault(_ sig: Int32) { _ = cshim_signal_default(sig) }
  /// pthread_sigmask(2) for the calling thread: a blocked signal stays pending (also across
  /// execve) until unblocked.
  public static func block(_ sig: Int32, _ on: Bool) { _ = cshim_signal_block(sig, on ? 1 : 0) }
}

/// Child processes: spawn, signal, reap.
public enum Processes {
  public static var currentID: Int32 { Glibc.getpid() }
  public static var parentID: Int32 { Glibc.getppid() }
  /// geteuid(2): the user whose permissions this process has.
  public static var effectiveUserID: UInt32 { UInt32(Glibc.geteuid()) }

  /// posix_spawnp(3): `program` (else argv[0]) looked up in this process's PATH, run with `argv`;
  /// stdin/stdout/stderr and descriptor 3 as given, an empty signal mask and default
  /// dispositions; in a new process group when asked.
  public static func spawn(
    _ argv: [String], program: String? = nil, environment: [String], directory: String? = nil,
    stdin: FileDescriptor?, stdout: FileDescriptor?, stderr: FileDescriptor?, fd3: FileDescriptor? = nil,
    newProcessGroup: Bool
  ) throws(PosixError) -> Int32 {
    precondition(!argv.isEmpty)
    var err: Int32 = 0
    let pid = (program ?? argv[0]).withCString { file in
      withCStrings(argv) { cargv in
        withCStrings(environment) { cenv in
          if let directory {
            return cshim_spawn(
              file, cargv, cenv, directory, stdin?.raw ?? -1, stdout?.raw ?? -1, stderr?.raw ?? -1,
              fd3?.raw ?? -1, newProcessGroup ? 1 : 0, &err)
          }
          return cshim_spawn(
            file, cargv, cenv, nil, stdin?.raw ?? -1, stdout?.raw ?? -1, stderr?.raw ?? -1,
            fd3?.raw ?? -1, newProcessGroup ? 1 : 0, &err)
        }
      }
    }
    if pid < 0 { throw PosixError("spawn", code: err, path: argv[0]) }
    return pid
  }

  /// waitpid(2) with WNOHANG: the next child that ended (any child when pid == -1), or nil.
  public static func reap(_ pid: Int32 = -1) -> (pid: Int32, status: ExitStatus)? {
    var status: Int32 = 0
    while true {
      let r = Glibc.waitpid(pid, &status, WNOHANG)
      if r > 0 { return (r, ExitStatus(raw: status)) }
      if r < 0 && errno == EINTR { continue }
      return nil
    }
  }

  /// waitpid(2), blocking.
  public static func wait(_ pid: Int32) -> ExitStatus? {
    var status: Int32 = 0
    while true {
      let r = Glibc.waitpid(pid, &status, 0)
      if r > 0 { return ExitStatus(raw: status) }
      if r < 0 && errno == EINTR { continue }
      return nil
    }
  }

  /// kill(2); returns false when there is no such process (ESRCH).
  @discardableResult
  public static func signal(_ pid: Int32, _ sig: Int32) -> Bool { Glibc.kill(pid, sig) == 0 }

  /// kill(2) of a process group (-pgid); returns false when the group is empty.
  @discardableResult
  public static func signalGroup(_ pgid: Int32, _ sig: Int32) -> Bool {
    pgid > 1 && Glibc.kill(-pgid, sig) == 0
  }

  /// True while any process of the group exists (zombies included).
  public static func groupExists(_ pgid: Int32) -> Bool { pgid > 1 && Glibc.kill(-pgid, 0) == 0 }

  /// True while the process exists (kill(pid, 0)).
  /// Whether `pid` exists and has not exited. A zombie (exited, not yet reaped by its parent,
  /// which may be a slow init) counts as gone.
  public static func isAlive(_ pid: Int32) -> Bool {
    guard pid > 0 && (Glibc.kill(pid, 0) == 0 || errno == EPERM) else { return false }
    return info(pid)?.isZombie != true
  }

  /// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are re-parented to this process.
  public static func becomeSubreaper() { _ = cshim_set_child_subreaper() }
  /// prctl(PR_SET_PDEATHSIG): the caller gets `sig` when the thread that spawned it exits.
  public static func setParentDeathSignal(_ sig: Int32) { _ = cshim_set_pdeathsig(sig) }
  /// setsid(2)
  public static func newSession() { _ = Glibc.setsid() }

  /// Runs `argv` (`argv[0]` a path) as a child in this process's group and returns its exit code
  /// (a child killed by a signal ends this process by the same signal); when `parent` dies first,
  /// kills this whole process group, itself included (`cortex hook-guard`; cshim_hook_guard).
  public static func guardChild(parent: Int32, _ argv: [String], environment: [String]) -> Int32 {
    withCStrings(argv) { cargv in withCStrings(environment) { cenv in cshim_hook_guard(parent, cargv, cenv) } }
  }

  /// Raises RLIMIT_NOFILE to at least `want`; returns the soft limit now in force.
  public static func raiseOpenFileLimit(_ want: Int) -> Int { Int(cshim_raise_nofile(want)) }

  /// The path of the running executable (/proc/self/exe). Once that file has been replaced (an
  /// upgrade: a new build or package at the same path, while workers started from the old one
  /// run on) or removed, the link reads "PATH (deleted)": the answer is then PATH, where the
  /// program to run now is (a worker spawns `cortex agent-run` from it for every agent task).
  public static func executablePath() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = Glibc.readlink("/proc/self/exe", &buf, buf.count - 1)
    if n <= 0 { return CommandLine.arguments[0] }
    buf[n] = 0
    let path = buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    let deleted = " (deleted)"
    if path.hasSuffix(deleted) && !FileSystem.exists(path) { return String(path.dropLast(deleted.count)) }
    return path
  }

  /// Whether this program was linked with `-static-executable`: no dynamic loader mapped it
  /// (the loader's address in the auxiliary vector is 0), so it cannot dlopen a system library.
  public static var isStaticExecutable: Bool { cshim_is_static_executable() != 0 }

  /// Takes out of the environment the `SWIFT_ROOT` the C shim set for the Swift runtime's own
  /// start in a static executable without /proc (cshim.c), so that no task or child inherits it.
  /// Call first thing in main.
  public static func finishStartup() { cshim_unset_swift_root() }

  /// _exit(2): no atexit handlers, no flushing.
  public static func exitImmediately(_ code: Int32) -> Never { Glibc._exit(code) }
  /// exit(3)
  public static func exit(_ code: Int32) -> Never { Glibc.exit(code) }
}

/// The process environment.
extension Processes {
  /// The command line, from what the C runtime passed to the process (not `CommandLine`, which
  /// the Swift runtime finds through /proc/self/maps and is empty without /proc, in a chroot).
  public static func arguments() -> [String] {
    guard let argv = cshim_argv() else { return [] }
    return (0..<Int(cshim_argc())).compactMap { argv[$0].map { String(cString: $0) } }
  }

  /// The index of the first argument after the program's name that is not valid UTF-8
  /// (`arguments()` holds it with U+FFFD in place of the bad bytes), or nil.
  public static func argumentNotUTF8() -> Int? {
    guard let argv = cshim_argv(), cshim_argc() > 1 else { return nil }
    return (1..<Int(cshim_argc())).first { i in argv[i].map { String(validatingCString: $0) == nil } ?? false }
  }
}

public enum Environment {
  public static func get(_ name: String) -> String? {
    guard let v = Glibc.getenv(name) else { return nil }
    return String(cString: v)
  }
  /// Every "NAME=value" entry of environ(7).
  public static func all() -> [String] {
    var out: [String] = []
    var p = Glibc.environ
    while let entry = p.pointee {
      out.append(String(cString: entry))
      p += 1
    }
    return out
  }

  /// Every variable of environ(7) as (name, value), split at the first `=` on bytes (cheaper
  /// than `all()` and splitting Strings by Character, which matters in `cortex submit`'s start-up).
  /// Entries without `=` are skipped.
  public static func pairs() -> [(name: String, value: String)] {
    var out: [(name: String, value: String)] = []
    forEachPair { name, value in out.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))) }
    return out
  }

}

extension Environment {
  /// Calls `body` with the name and the value of every variable of environ(7), as bytes split at
  /// the first `=` (entries without one are skipped), without making a String of either:
  /// `cortex submit` encodes them straight into its request.
  public static func forEachPair(_ body: (_ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) -> Void) {
    var p = Glibc.environ
    while let entry = p.pointee {
      p += 1
      let length = strlen(entry)
      guard let eq = memchr(entry, 61, length) else { continue }
      let nameLength = UnsafeRawPointer(eq) - UnsafeRawPointer(entry)
      entry.withMemoryRebound(to: UInt8.self, capacity: length) { bytes in
        body(
          UnsafeBufferPointer(start: bytes, count: nameLength),
          UnsafeBufferPointer(start: bytes + nameLength + 1, count: length - nameLength - 1))
      }
    }
  }
}

/// Calls `body` with a NULL-terminated array of C strings that lives for the call.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
  var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
  ptrs.append(nil)
  defer { for p in ptrs where p != nil { free(p) } }
  return ptrs.withUnsafeBufferPointer { body($0.baseAddress!) }
}
