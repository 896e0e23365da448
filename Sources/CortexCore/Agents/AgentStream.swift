/// Reads one agent's stdout, line by line, and says what it means for Cortex: tokens used so far
/// (as they accrue), progress messages, the text to keep in `output.log`, and at the end whether
/// the run succeeded and why not (issue 17; docs/agents.md). Pure: the caller feeds lines and
/// performs the reports (`AgentRunner` in CortexWorker).
///
/// The agent is untrusted. A line that is not in its format is kept in the log and counted; it
/// is no failure by itself (a CLI may print a warning), but a run that never produced its final
/// result fails, saying whether the output was garbage (`agent_output_invalid`), stopped before
/// the result (`agent_output_truncated`) or the agent reported an error (`agent_failed`).
public struct AgentStream: Sendable {
  public let kind: AgentKind
  /// Tokens used so far: the figure reported to the daemon, never decreasing.
  public internal(set) var tokens = 0
  /// The agent's final answer, once it gave one.
  public internal(set) var result: String?
  /// The agent said it failed (its own words).
  public internal(set) var agentError: String?
  /// Lines read in the agent's format, and lines that were not.
  public internal(set) var goodLines = 0
  public internal(set) var badLines = 0
  /// The first line that was not in the format, shortened, with its number.
  public internal(set) var firstBad: (line: Int, text: String)?
  var lineNumber = 0
  var finished = false
  /// Claude Code: usage per assistant message id (a message's lines repeat its usage), for the
  /// newest `recentMessages` ids only: a message's lines come together, so an older id does not
  /// come back, and a run of many thousand turns keeps this table small. `messageOrder` holds the
  /// ids in the order they were first seen, oldest first from `messageOrderStart`.
  var messageTokens: [String: Int] = [:]
  var messageOrder: [String] = []
  var messageOrderStart = 0
  static let recentMessages = 256
  /// Claude Code: the sum of `messageTokens`, kept as they change (summing them per line was
  /// quadratic in the number of messages).
  var messageTotal = 0
  /// Codex and aider: usage of the turns already completed.
  var turnTokens = 0
  /// The agent's last words: the last line on its stderr that says something (aider's plain
  /// stdout counts too), shortened. A CLI that fails before its structured output (no API key,
  /// not logged in, an unknown flag, a crash) says why there, and the failure's detail quotes it.
  public internal(set) var lastWords: String?

  /// Stop the agent after this many lines of which none was in its format.
  public static let garbageLimit = 200

  public init(kind: AgentKind) { self.kind = kind }

  /// What a line meant.
  public enum Event: Equatable, Sendable {
    /// The running total of tokens changed.
    case tokens(Int)
    /// A progress message for the decision log and `cortex show`.
    case progress(String)
    /// Text for the task's `output.log`.
    case text(String)
  }

  /// True when the output has been garbage for long enough that running on is pointless.
  public var hopeless: Bool { goodLines == 0 && badLines >= Self.garbageLimit }

  /// Reads one line (without its newline).
  public mutating func feed(_ line: ArraySlice<UInt8>) -> [Event] {
    lineNumber += 1
    if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return [] }
    let before = tokens
    var out: [Event]
    switch kind {
    case .aider: out = aider(line)
    case .claude, .codex, .jsonl:
      guard let v = try? JSON.parse(line), v.object != nil, let type = v["type"]?.string else {
        bad(line)
        return [.text(String(decoding: line, as: UTF8.self))]
      }
      goodLines += 1
      switch kind {
      case .claude: out = claude(type, v)
      case .codex: out = codex(type, v)
      default: out = jsonl(type, v)
      }
    }
    if tokens != before { out.insert(.tokens(tokens), at: 0) }
    return out
  }

  /// Reads one line the agent wrote on stderr (without its newline); keeps it as `lastWords`
  /// unless it is blank or the boilerplate a runtime prints after the message that matters
  /// (an indented stack frame, Node's version footer, Rust's backtrace hint, Python's carets).
  public mutating func feedStderr(_ line: ArraySlice<UInt8>) {
    let text = Self.shorten(String(decoding: line, as: UTF8.self), 300)
    let blank: (Character) -> Bool = { $0 == " " || $0 == "\r" }
    let trimmed = text.drop(while: blank)
    if trimmed.isEmpty { return }
    if trimmed.startIndex != text.startIndex && trimmed.hasPrefix("at ") { return }
    for footer in ["Node.js v", "note: run with `RUST_BACKTRACE", "^"] where trimmed.hasPrefix(footer) { return }
    lastWords = String(trimmed.reversed().drop(while: blank).reversed())
  }

  mutating func bad(_ line: ArraySlice<UInt8>) {
    badLines += 1
    if firstBad == nil { firstBad = (lineNumber, Self.shorten(String(decoding: line, as: UTF8.self), 60)) }
  }

  mutating func raise(to n: Int) { tokens = max(tokens, min(n, Numbers.maxTokens)) }

  /// How the run ended, given how the agent exited (`exitCode` nil when a signal ended it).
  public enum Verdict: Equatable, Sendable {
    case succeeded
    /// `reason` is a machine word for the decision log, `detail` a sentence.
    case failed(reason: String, detail: String)
    /// Let the exit status speak (it failed on its own, or was killed).
    case exitStatus
  }

  /// `signal` names the signal that ended the agent when `exitCode` is nil (e.g. "SIGKILL").
  public func verdict(exitCode: Int32?, signal: String? = nil) -> Verdict {
    let name = kind.executable ?? "the agent"
    if let e = agentError { return .failed(reason: "agent_failed", detail: "\(name) reported an error: \(e)") }
    let ended = finished || (kind == .aider && turnTokens > 0)
    // What it said last on stderr, quoted after any detail below.
    let words = lastWords.map { ": \(quoted($0))" } ?? ""
    guard let code = exitCode else {
      if ended || signal == nil { return .exitStatus }
      return .failed(reason: "signal", detail: "\(name) was killed by \(signal!) before its final result" + words)
    }
    if ended {
      if code == 0 { return .succeeded }
      // Its result came, then it failed anyway: its own words say why, when it left any.
      return lastWords == nil ? .exitStatus : .failed(reason: "agent_failed", detail: "\(name) exited with code \(code)" + words)
    }
    // Nothing on stdout at all and a failing exit: it gave up before its output began (no API
    // key, not logged in, a flag it does not know), and stderr is where it said why.
    if code != 0, lastWords != nil, goodLines == 0, badLines == 0, kind != .aider {
      return .failed(reason: "agent_failed", detail: "\(name) exited with code \(code) before any output" + words)
    }
    let format: String
    switch kind {
    case .claude: format = "stream-json (--output-format stream-json)"
    case .codex: format = "exec --json events"
    case .aider: format = "a 'Tokens: N sent, M received.' line"
    case .jsonl: format = "Cortex's JSONL protocol"
    }
    let said = lastWords.map { "; it said: \(quoted($0))" } ?? ""
    if kind == .aider {
      if code != 0 {
        return lastWords == nil ? .exitStatus : .failed(reason: "agent_failed", detail: "aider exited with code \(code)" + words)
      }
      return .failed(
        reason: "agent_output_invalid",
        detail: "aider exited 0 but printed no 'Tokens: N sent, M received.' line, so its token use is unknown" + said)
    }
    if goodLines == 0 {
      var d = "\(name) printed no \(format)"
      if let b = firstBad {
        d += ": \(badLines) line\(badLines == 1 ? " that is" : "s that are") not, the first (line \(b.line)) \(quoted(b.text))"
      }
      if code != 0 { d += "; it exited with code \(code)" }
      return .failed(reason: "agent_output_invalid", detail: d + said)
    }
    var d = "\(name)'s output ended before its final result (\(goodLines) events read"
    if badLines > 0 { d += ", \(badLines) unreadable" }
    d += code == 0 ? ")" : "); it exited with code \(code)"
    return .failed(reason: "agent_output_truncated", detail: d + said)
  }

  static func shorten(_ s: String, _ n: Int) -> String {
    let flat = String(s.map { $0 == "\n" || $0 == "\t" ? " " : $0 })
    return flat.count <= n ? flat : String(flat.prefix(n)) + "…"
  }

  /// A whole number of tokens from a JSON field, or nil (negative and absurd values are ignored).
  static func count(_ v: JSON?) -> Int? {
    guard let n = v?.int, n >= 0, n <= Int64(Numbers.maxTokens) else { return nil }
    return Int(n)
  }
}
