public import CortexCore
import Posix

/// The agent adapter's process side (issue 17; docs/agents.md). For a task whose spec names an
/// `agent`, the worker does not spawn the agent's argv itself but `cortex agent-run --agent K --
/// ARGV…` (this binary's hidden mode) as the task's process-group leader. That process spawns the
/// agent in the same group with its stdout on a pipe, reads it with `AgentStream`, writes the
/// readable text to its own stdout (the task's `output.log`) and turns what it learns into
/// ordinary report lines on `CORTEX_REPORT_FD`: `{"tokens_used": N}` as tokens accrue, so the
/// daemon enforces the budget on live numbers (`token_budget_exceeded`) exactly as for any task,
/// `{"message": …}` for progress, and at the end `{"error": …, "reason": …}` when the run failed
/// in a way its exit code does not say (garbage, truncated output, an error the agent reported).
///
/// Cancel, timeout and budget stops signal the whole group: the agent and this process with it.
public enum AgentRunner {
  /// What the worker spawns for `spec`, or nil when it is no agent task.
  public static func launchArgv(_ spec: TaskSpec, executable: String) -> [String]? {
    guard let agent = spec.agent, let command = spec.command, !command.isEmpty else { return nil }
    return [executable, "agent-run", "--agent", agent.rawValue, "--"] + command
  }

  /// Runs `argv` as agent `kind` and returns the exit code for this process.
  ///
  /// The agent's stdout is read as its format; its stderr is copied to this process's stderr
  /// (the task's `output.log` too) and its last line kept, so a failure can quote what the
  /// agent said (`AgentStream.lastWords`). The run is over when the agent exits, not when its
  /// pipes close: a process it left behind may hold them open for as long as it lives (a dev
  /// server started in the background), and the task must not wait for it. What the agent wrote
  /// before it exited is still read; whatever it left behind dies with the task's process group.
  public static func run(kind: AgentKind, argv: [String]) -> Int32 {
    Signal.ignore(Signal.pipe)
    let report = Environment.get("CORTEX_REPORT_FD").flatMap(Int32.init).map { FileDescriptor(raw: $0) }
    // The runner reports for the agent: neither the agent nor the tools it runs get the report
    // descriptor (one writing on descriptor 3 would write into the task's accounting).
    try? report?.setCloseOnExec(true)
    func say(_ fields: [(String, JSON)]) {
      guard let report else { return }
      try? report.writeAll(JSON.object(fields).encodedBytes() + [10])
    }
    func log(_ s: String) { try? FileDescriptor.standardOutput.writeAll(s + "\n") }
    let out: (read: FileDescriptor, write: FileDescriptor)
    let err: (read: FileDescriptor, write: FileDescriptor)
    let pid: Int32
    do throws(PosixError) {
      out = try makePipe()
      err = try makePipe()
      pid = try Processes.spawn(
        argv, environment: Environment.all().filter { !$0.hasPrefix("CORTEX_REPORT_FD=") },
        stdin: FileDescriptor.standardInput, stdout: out.write, stderr: err.write, fd3: nil, newProcessGroup: false)
      out.write.close()
      err.write.close()
    } catch {
      let what =
        error.code == PosixError.ENOENT_
        ? "\(argv[0]) not found on PATH; install it (\(kind.install))" : "cannot run \(argv[0]): \(error)"
      log("cortex: " + what)
      say([("error", .string(what)), ("reason", .string("agent_not_found"))])
      return 127
    }
    var stream = AgentStream(kind: kind)
    var lines = LineBuffer(maxLine: 8 << 20)
    var errLines = LineBuffer(maxLine: 64 << 10)
    var chunk: [UInt8] = []
    var stopped = false
    var killAtMs: Int64? = nil
    func handle(_ line: ArraySlice<UInt8>) {
      for e in stream.feed(line) {
        switch e {
        case .tokens(let n): say([("tokens_used", .int(Int64(n)))])
        case .progress(let m): say([("message", .string(m))])
        case .text(let t): log(t)
        }
      }
      if stream.hopeless && !stopped {
        stopped = true
        _ = Processes.signal(pid, Signal.term)
        killAtMs = Clock.monotonicMs() + 5000
      }
    }
    /// Reads what `fd` has (one read); false at its end (or on an error, EAGAIN included).
    func pump(_ fd: FileDescriptor, stdout: Bool) -> Bool {
      chunk.removeAll(keepingCapacity: true)
      let n = (try? fd.read(appendingTo: &chunk, max: 65536)) ?? 0
      if n <= 0 { return false }
      if stdout {
        lines.append(chunk)
        drain: while true {
          switch lines.next() {
          case .line(let l): handle(l)
          case .tooLong, .dropped: handle(Array("(a line longer than 8 MiB)".utf8)[...])
          case .none: break drain
          }
        }
      } else {
        try? FileDescriptor.standardError.writeAll(chunk)
        errLines.append(chunk)
        while true {
          switch errLines.next() {
          case .line(let l): stream.feedStderr(l)
          case .tooLong, .dropped: continue
          case .none: return true
          }
        }
      }
      return true
    }
    // Without pidfd_open (Linux before 5.3) the agent's exit is looked for every 200 ms.
    let exitFD = try? Processes.openPidFD(pid)
    var status: ExitStatus? = nil
    var outOpen = true
    var errOpen = true
    while outOpen || errOpen {
      var fds: [Int32] = []
      if outOpen { fds.append(out.read.raw) }
      if errOpen { fds.append(err.read.raw) }
      if let exitFD { fds.append(exitFD.raw) }
      let timeout: Int32 = killAtMs != nil ? 500 : (exitFD == nil ? 200 : -1)
      let ready = FileDescriptor.waitReadable(fds, timeoutMs: timeout)
      var i = 0
      if outOpen {
        if ready[i] { outOpen = pump(out.read, stdout: true) }
        i += 1
      }
      if errOpen {
        if ready[i] { errOpen = pump(err.read, stdout: false) }
        i += 1
      }
      if exitFD == nil || ready[i], let (_, s) = Processes.reap(pid) {
        status = s
        break
      }
      if let k = killAtMs, Clock.monotonicMs() >= k {
        _ = Processes.signal(pid, Signal.kill)
        killAtMs = nil
      }
    }
    exitFD?.close()
    if status != nil {
      // The agent has exited: what it wrote is in the pipes. Read it without waiting for an end
      // that a process it left behind could put off (bounded, should that one keep writing).
      let until = Clock.monotonicMs() + 2000
      for (fd, isOut) in [(out.read, true), (err.read, false)] where isOut ? outOpen : errOpen {
        try? fd.setNonBlocking(true)
        while Clock.monotonicMs() < until && pump(fd, stdout: isOut) {}
      }
    }
    // Output that stopped in the middle of a line: read what there is (it will not parse).
    if lines.partialCount > 0 { handle(lines.bytes.suffix(lines.partialCount)) }
    if errLines.partialCount > 0 { stream.feedStderr(errLines.bytes.suffix(errLines.partialCount)) }
    out.read.close()
    err.read.close()
    if status == nil { status = Processes.wait(pid) }
    var code: Int32? = nil
    var signal: String? = nil
    var exit: Int32 = 1
    switch status {
    case .exited(let c)?:
      code = c
      exit = c
    case .signaled(let s)?:
      signal = Signal.name(s)
      exit = 128 + s
    case nil: break
    }
    if stopped {
      let d = stream.verdict(exitCode: 0)
      if case .failed(let reason, let detail) = d {
        log("cortex: " + detail + "; stopped it")
        say([("error", .string(detail + "; stopped it")), ("reason", .string(reason))])
      }
      return exit == 0 ? 1 : exit
    }
    switch stream.verdict(exitCode: code, signal: signal) {
    case .succeeded:
      say([("progress", .double(1)), ("message", .string("\(FileSystem.basename(argv[0])) finished; \(stream.tokens) tokens"))])
      return 0
    case .failed(let reason, let detail):
      log("cortex: " + detail)
      say([("error", .string(detail)), ("reason", .string(reason))])
      return exit == 0 ? 1 : exit
    case .exitStatus:
      return exit == 0 ? 1 : exit
    }
  }
}
