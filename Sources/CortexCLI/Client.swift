import CortexCore
import Posix

/// A connection to the daemon's control socket. One JSON request per line, one JSON answer each.
final class Client {
  let fd: FileDescriptor
  var lines = LineBuffer(maxLine: 256 << 20)
  let paths: Paths
  /// Whether this client already said the daemon is not responding.
  var saidStalled = false

  /// Connects, or fails with exit 69 and the command that starts the daemon.
  init(_ ctx: Context) throws(CLIError) {
    paths = ctx.paths
    if let problem = ctx.paths.socketPathProblem { throw CLIError(ExitCode.usage, problem) }
    do throws(PosixError) {
      fd = try UnixSocket.connect(path: ctx.paths.socket)
    } catch {
      throw CLIError(
        ExitCode.notRunning,
        "the Cortex daemon is not running for \(ctx.paths.root) (\(error.isNotFound ? "no socket" : error.description)); \(ctx.startAdvice)"
      )
    }
  }

  deinit { fd.close() }

  func request(_ v: JSON) throws(CLIError) -> JSON {
    try send(v)
    return try receive()
  }

  func send(_ v: JSON) throws(CLIError) { try send(encoded: v.encodedBytes()) }

  /// Sends one request already encoded as JSON text (without its newline).
  func send(encoded: [UInt8]) throws(CLIError) {
    var b = encoded
    b.append(10)
    do throws(PosixError) { try fd.writeAll(b) } catch {
      // The daemon may have said why before it closed (too many connections, a request too long).
      if let answer = try? receive() { _ = try Self.check(answer) }
      throw CLIError(ExitCode.notRunning, "the daemon closed the connection: \(error)")
    }
  }

  /// Blocks for the next answer; while none comes, calls `idle` (when given) once a second, and
  /// says once on stderr when the daemon stops updating its hot state meanwhile (`stalled`).
  func receive(idle: (() -> Void)? = nil) throws(CLIError) -> JSON {
    var waitedMs: Int64 = 0
    while true {
      if case .line(let l) = lines.next() {
        do { return try JSON.parse(l) } catch { throw CLIError(ExitCode.failure, "bad answer from the daemon: \(error)") }
      }
      while !fd.waitReadable(timeoutMs: 1000) {
        idle?()
        waitedMs += 1000
        if waitedMs % Self.stallCheckMs == 0 { stalled() }
      }
      var chunk: [UInt8] = []
      let n: Int
      do { n = try fd.read(appendingTo: &chunk, max: 1 << 16) } catch {
        throw CLIError(ExitCode.notRunning, "lost the daemon: \(error)")
      }
      if n == 0 { throw CLIError(ExitCode.notRunning, "the daemon closed the connection before answering") }
      lines.append(chunk)
    }
  }

  /// How long an answer may take before the client looks at whether the daemon still runs: a
  /// `wait` or a `cancel` of a slow task waits for hours by design, a request to a daemon stopped
  /// with SIGSTOP or hung waits for ever, and neither said anything (a `cortex list` sat silent).
  static let stallCheckMs: Int64 = 10_000

  /// Says once, on stderr, that the daemon is not responding when its hot state has not been
  /// updated for longer than `cortex status` allows (it is, at least every second, while its
  /// loop runs); the request stays open, as an answer may still come.
  func stalled() {
    guard !saidStalled, let view = try? DaemonControl.readHotState(paths) else { return }
    guard let why = StatusCommand.notResponding(view, pid: StatusCommand.daemonRunning(paths), now: Clock.wallMs()) else { return }
    saidStalled = true
    let note = "cortex: no answer yet: the daemon (pid \(view.pid)) is not responding: \(why); still waiting (Ctrl-C to give up)\n"
    try? FileDescriptor.standardError.writeAll(note)
  }

  /// Turns a `{"ok":false,...}` answer into the matching error. A refusal names its reason
  /// (`refused (queue_full): ...`), the word scripts and the log use.
  static func check(_ v: JSON) throws(CLIError) -> JSON {
    if v["ok"]?.bool == true { return v }
    let code = Int32(v["code"]?.int ?? 1)
    let message = v["error"]?.string ?? v.encoded()
    if let reason = v["reason"]?.string { throw CLIError(code, "refused (\(reason)): \(message)", answer: v) }
    throw CLIError(code, message, answer: v)
  }
}
