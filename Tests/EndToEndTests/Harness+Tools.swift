import Posix

extension Cortex {
  /// Runs `tmux -S SOCKET ARGS` (a server private to the test, its socket in the scratch
  /// directory) and returns what it printed ("" when it could not be started).
  @discardableResult
  func tmux(socket: String, _ args: [String]) -> String {
    let out = scratch + "/tmux.out"
    guard let o = try? FileDescriptor.open(out, [.writeOnly, .create, .truncate]),
      let pid = try? Processes.spawn(
        ["tmux", "-S", socket] + args, environment: Environment.all(), stdin: nil, stdout: o, stderr: o, newProcessGroup: false)
    else { return "" }
    o.close()
    _ = Processes.wait(pid)
    return String(decoding: ((try? FileSystem.read(out)) ?? nil) ?? [], as: UTF8.self)
  }

  /// Drops `bytes` into the inbox as `name`, the way a writer should: written aside under a
  /// dot name (which the daemon ignores), then renamed.
  func dropInInbox(_ name: String, _ bytes: [UInt8]) throws {
    try FileSystem.writeAtomically(paths.inbox + "/." + name + ".tmp", bytes, durable: false)
    try FileSystem.rename(paths.inbox + "/." + name + ".tmp", paths.inbox + "/" + name)
  }

  /// `cortex ARGS...` started in the background (as a user's second terminal); `collect` waits for it.
  func background(_ args: [String]) throws -> (pid: Int32, out: String, err: String) {
    let stem = scratch + "/bg-\(Clock.monotonicNs())"
    let out = stem + ".out"
    let err = stem + ".err"
    let null = try FileDescriptor.open("/dev/null", .readWrite)
    let o = try FileDescriptor.open(out, [.writeOnly, .create, .truncate])
    let e = try FileDescriptor.open(err, [.writeOnly, .create, .truncate])
    defer {
      null.close()
      o.close()
      e.close()
    }
    let pid = try Processes.spawn(
      [Cortex.binary, "--dir", root] + args, environment: Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"],
      stdin: null, stdout: o, stderr: e, newProcessGroup: false)
    return (pid, out, err)
  }

  /// Waits (at most 60 s) for a command `background` started, and returns what it did.
  func collect(_ b: (pid: Int32, out: String, err: String), file: StaticString = #filePath, line: UInt = #line) -> Cortex.Run {
    var status: ExitStatus? = nil
    eventually("cortex (pid \(b.pid)) exits", timeoutS: 60, file: file, line: line) {
      status = Processes.reap(b.pid)?.1
      return status != nil
    }
    let out = String(decoding: ((try? FileSystem.read(b.out)) ?? nil) ?? [], as: UTF8.self)
    let err = String(decoding: ((try? FileSystem.read(b.err)) ?? nil) ?? [], as: UTF8.self)
    switch status {
    case .exited(let code): return Cortex.Run(code: code, out: out, err: err)
    case .signaled(let sig): return Cortex.Run(code: 128 + sig, out: out, err: err)
    case nil: return Cortex.Run(code: -1, out: out, err: err)
    }
  }

  /// Puts a FIFO in place of the file at `path`: a read of it waits until the returned function
  /// is called, which writes what the file held (once; later calls do nothing). Call it before
  /// the test ends, or a daemon blocked on the read outlives it.
  func holdBack(_ path: String) throws -> () -> Void {
    let bytes = try FileSystem.read(path) ?? []
    try FileSystem.remove(path)
    try FileSystem.makeFIFO(path)
    var given = false
    return {
      guard !given, let w = try? FileDescriptor.open(path, .writeOnly) else { return }
      given = true
      try? w.writeAll(bytes)
      w.close()
    }
  }

  /// Writes a copy of the built `cortex` at `path` (mode 0755): a program a test can replace or
  /// remove under the daemon started from it.
  func copyBinary(to path: String) throws {
    guard let program = try FileSystem.read(Cortex.binary) else { throw HarnessError(message: "cannot read \(Cortex.binary)") }
    try FileSystem.writeAtomically(path, program, durable: false)
    try FileSystem.setMode(path, 0o755)
  }

  /// `PROGRAM --dir ROOT start --workers N`: a daemon started from another program than
  /// `Cortex.binary` (its path is what `cortex restart` execs); how the start ended.
  func start(program: String, workers: Int) throws -> ExitStatus? {
    let devnull = try FileDescriptor.open("/dev/null", [.readWrite])
    defer { devnull.close() }
    let starter = try Processes.spawn(
      [program, "--dir", root, "start", "--workers", String(workers)], environment: Environment.all().filter { !$0.hasPrefix("CORTEX_") },
      stdin: devnull, stdout: devnull, stderr: devnull, newProcessGroup: false)
    return Processes.wait(starter)
  }
}
