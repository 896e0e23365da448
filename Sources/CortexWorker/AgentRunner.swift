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
  public static func run(kind: AgentKind, argv: [String]) -> Int32 {
    Signal.ignore(Signal.pipe)
    let report = Environment.get("CORTEX_REPORT_FD").flatMap(Int32.init).map { FileDescriptor(raw: $0) }
    func say(_ fields: [(String, JSON)]) {
      guard let report else { return }
      try? report.writeAll(JSON.object(fields).encodedBytes() + [10])
    }
    func log(_ s: String) { try? FileDescriptor.standardOutput.writeAll(s + "\n") }
    let pipe: (read: FileDescriptor, write: FileDescriptor)
    let pid: Int32
    do throws(PosixError) {
      pipe = try makePipe()
      pid = try Processes.spawn(
        argv, environment: Environment.all(), stdin: FileDescriptor.standardInput, stdout: pipe.write,
        stderr: FileDescriptor.standardError, fd3: report, newProcessGroup: false)
      pipe.write.close()
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
    var chunk: [UInt8] = []
    var stopped = false
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
      }
    }
    while true {
      chunk.removeAll(keepingCapacity: true)
      let n = (try? pipe.read.read(appendingTo: &chunk, max: 65536)) ?? 0
      if n <= 0 { break }
      lines.append(chunk)
      drain: while true {
        switch lines.next() {
        case .line(let l): handle(l)
        case .tooLong, .dropped: handle(Array("(a line longer than 8 MiB)".utf8)[...])
        case .none: break drain
        }
      }
    }
    // Output that stopped in the middle of a line: read what there is (it will not parse).
    if lines.partialCount > 0 { handle(lines.bytes.suffix(lines.partialCount)) }
    pipe.read.close()
    let status = Processes.wait(pid)
    var code: Int32? = nil
    var exit: Int32 = 1
    switch status {
    case .exited(let c)?:
      code = c
      exit = c
    case .signaled(let s)?: exit = 128 + s
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
    switch stream.verdict(exitCode: code) {
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
