import XCTest

@testable import CortexCore

/// The agent adapters' parsers (issue 17 item 3): each CLI's recorded output, and what broken
/// output becomes. End-to-end runs with stand-in executables are in EndToEndTests/AgentTests.
final class AgentStreamTests: XCTestCase {
  /// Feeds `text` line by line (a last line without newline too) and collects the events.
  func feed(_ s: inout AgentStream, _ text: String) -> [AgentStream.Event] {
    text.split(separator: "\n", omittingEmptySubsequences: false).flatMap { s.feed(Array($0.utf8)[...]) }
  }

  func tokens(_ events: [AgentStream.Event]) -> [Int] {
    events.compactMap { if case .tokens(let n) = $0 { return n } else { return nil } }
  }

  static let claudeRun = """
    {"type":"system","subtype":"init","session_id":"s1","model":"claude-sonnet-4-5","tools":["Write"]}
    {"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"I will add README.md."}],"usage":{"input_tokens":120,"cache_creation_input_tokens":800,"cache_read_input_tokens":9000,"output_tokens":30}}}
    {"type":"assistant","message":{"id":"msg_1","content":[{"type":"tool_use","id":"t1","name":"Write","input":{"file_path":"README.md","content":"# Hi"}}],"usage":{"input_tokens":120,"cache_creation_input_tokens":800,"cache_read_input_tokens":9000,"output_tokens":30}}}
    {"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}}
    {"type":"assistant","message":{"id":"msg_2","content":[{"type":"text","text":"Done."}],"usage":{"input_tokens":10,"cache_creation_input_tokens":0,"cache_read_input_tokens":9900,"output_tokens":40}}}
    {"type":"result","subtype":"success","is_error":false,"num_turns":2,"result":"Added README.md.","total_cost_usd":0.0123,"usage":{"input_tokens":130,"cache_creation_input_tokens":800,"cache_read_input_tokens":18900,"output_tokens":70}}
    """

  func testClaudeStreamJSONCountsEachMessageOnceAndSucceedsOnItsResult() {
    var s = AgentStream(kind: .claude)
    let events = feed(&s, Self.claudeRun)
    XCTAssertEqual(tokens(events), [950, 1000], "msg_1 counted once (its usage repeats), cache reads not counted")
    XCTAssertTrue(events.contains(.progress("claude started (claude-sonnet-4-5)")))
    XCTAssertTrue(events.contains(.progress("Write README.md")))
    XCTAssertTrue(events.contains(.text("Added README.md.")))
    XCTAssertTrue(events.contains(.progress("claude finished, 2 turns, $0.0123")))
    XCTAssertEqual(s.result, "Added README.md.")
    XCTAssertEqual(s.verdict(exitCode: 0), .succeeded)
    XCTAssertEqual(s.verdict(exitCode: 2), .exitStatus, "a non-zero exit still fails")
  }

  /// A long session: 20,000 messages, each in two lines that repeat its usage. Every message is
  /// counted once, and the table of message ids stays at the newest few hundred.
  func testClaudeLongSessionCountsEveryMessageOnceInBoundedMemory() {
    var s = AgentStream(kind: .claude)
    var last: [Int] = []
    for i in 1...20_000 {
      let line = #"{"type":"assistant","message":{"id":"msg_\#(i)","content":[],"usage":{"input_tokens":2,"output_tokens":1}}}"#
      last = tokens(feed(&s, line + "\n" + line))
      XCTAssertLessThanOrEqual(s.messageTokens.count, AgentStream.recentMessages)
      XCTAssertLessThanOrEqual(s.messageOrder.count, 2 * AgentStream.recentMessages)
    }
    XCTAssertEqual(last, [60_000])
    XCTAssertEqual(s.tokens, 60_000)
  }

  func testClaudeErrorResultFailsWithTheAgentsWords() {
    var s = AgentStream(kind: .claude)
    _ = feed(
      &s,
      #"{"type":"result","subtype":"error_max_turns","is_error":true,"result":"Reached max turns","usage":{"input_tokens":5,"output_tokens":5}}"#
    )
    XCTAssertEqual(s.tokens, 10)
    XCTAssertEqual(s.verdict(exitCode: 1), .failed(reason: "agent_failed", detail: "claude reported an error: Reached max turns"))
  }

  func testTruncatedStreamFailsAsTruncated() {
    var s = AgentStream(kind: .claude)
    let lines = Self.claudeRun.split(separator: "\n")
    // The result line cut off in the middle, as when the agent is killed while writing it.
    _ = feed(&s, lines.prefix(5).joined(separator: "\n") + "\n" + lines[5].prefix(40))
    XCTAssertEqual(s.tokens, 1000)
    XCTAssertEqual(
      s.verdict(exitCode: 0),
      .failed(reason: "agent_output_truncated", detail: "claude's output ended before its final result (5 events read, 1 unreadable)"))
  }

  func testGarbageFailsSayingWhatItWasAndGivesUpAfterTheLimit() {
    var s = AgentStream(kind: .claude)
    let events = feed(&s, "Segmentation fault\n<html>502 Bad Gateway</html>\n[1, 2]\n{\"no_type\": 1}")
    XCTAssertEqual(events.first, .text("Segmentation fault"), "garbage is kept in the log")
    XCTAssertEqual(s.badLines, 4)
    XCTAssertFalse(s.hopeless)
    XCTAssertEqual(
      s.verdict(exitCode: 0),
      .failed(
        reason: "agent_output_invalid",
        detail: "claude printed no stream-json (--output-format stream-json): 4 lines that are not, the first (line 1) 'Segmentation fault'"
      ))
    for _ in 0..<AgentStream.garbageLimit { _ = s.feed(Array("garbage".utf8)[...]) }
    XCTAssertTrue(s.hopeless, "after \(AgentStream.garbageLimit) lines and none readable the runner stops the agent")
  }

  /// A CLI that gives up before its output begins says why on stderr (no API key, not logged
  /// in, a flag it does not know): the failure quotes it. Before, the detail was "claude printed
  /// no stream-json", which sent a newcomer looking at the wrong thing.
  func testWhatTheAgentSaidOnStderrNamesTheFailure() {
    func stderr(_ s: inout AgentStream, _ lines: [String]) { for l in lines { s.feedStderr(Array(l.utf8)[...]) } }
    var key = AgentStream(kind: .claude)
    stderr(&key, ["", "Invalid API key · Please run /login", "   "])
    XCTAssertEqual(key.lastWords, "Invalid API key · Please run /login", "blank lines say nothing")
    XCTAssertEqual(
      key.verdict(exitCode: 1),
      .failed(reason: "agent_failed", detail: "claude exited with code 1 before any output: 'Invalid API key · Please run /login'"))

    // A crash in the middle: Node's stack frames and version footer are not the message.
    var crash = AgentStream(kind: .claude)
    _ = feed(&crash, Self.claudeRun.split(separator: "\n").prefix(2).joined(separator: "\n"))
    stderr(
      &crash,
      [
        "file:///usr/lib/node_modules/@anthropic-ai/claude-code/cli.js:1234",
        "TypeError: Cannot read properties of undefined (reading 'content')",
        "    at Xy (file:///usr/lib/node_modules/@anthropic-ai/claude-code/cli.js:1234:56)", "", "Node.js v22.3.0",
      ])
    let said = "'TypeError: Cannot read properties of undefined (reading 'content')'"
    XCTAssertEqual(
      crash.verdict(exitCode: 1),
      .failed(
        reason: "agent_output_truncated",
        detail: "claude's output ended before its final result (2 events read); it exited with code 1; it said: \(said)"))
    XCTAssertEqual(
      crash.verdict(exitCode: nil, signal: "SIGKILL"),
      .failed(reason: "signal", detail: "claude was killed by SIGKILL before its final result: \(said)"),
      "a signal is named, not 'exit code 137'")

    // Rust's panic footer is skipped too; a message that starts with "at" is kept.
    var codex = AgentStream(kind: .codex)
    stderr(
      &codex,
      [
        "Error: unexpected status 401 Unauthorized: Missing bearer authentication",
        "note: run with `RUST_BACKTRACE=1` to display a backtrace",
      ])
    XCTAssertEqual(
      codex.verdict(exitCode: 1),
      .failed(
        reason: "agent_failed",
        detail: "codex exited with code 1 before any output: 'Error: unexpected status 401 Unauthorized: Missing bearer authentication'"))
    stderr(&codex, ["at least one turn is required"])
    XCTAssertEqual(codex.lastWords, "at least one turn is required")

    // A finished run that exits non-zero says why when it left words, else its exit status speaks.
    var done = AgentStream(kind: .claude)
    _ = feed(&done, Self.claudeRun)
    XCTAssertEqual(done.verdict(exitCode: 3), .exitStatus)
    XCTAssertEqual(done.verdict(exitCode: nil, signal: "SIGTERM"), .exitStatus, "killed after its result: cancel or timeout says it")
    stderr(&done, ["Error: failed to write session file"])
    XCTAssertEqual(
      done.verdict(exitCode: 3), .failed(reason: "agent_failed", detail: "claude exited with code 3: 'Error: failed to write session file'")
    )
    XCTAssertEqual(done.verdict(exitCode: 0), .succeeded, "words on stderr do not fail a run that succeeded")

    // Garbage on stdout: the words come after what was printed instead.
    var garbage = AgentStream(kind: .claude)
    _ = feed(&garbage, "Segmentation fault")
    stderr(&garbage, ["zsh: killed"])
    XCTAssertEqual(
      garbage.verdict(exitCode: 139),
      .failed(
        reason: "agent_output_invalid",
        detail:
          "claude printed no stream-json (--output-format stream-json): 1 line that is not, the first (line 1) 'Segmentation fault'; it exited with code 139; it said: 'zsh: killed'"
      ))
    var none = AgentStream(kind: .codex)
    XCTAssertEqual(none.verdict(exitCode: nil, signal: nil), .exitStatus)
    stderr(&none, [String(repeating: "x", count: 1000)])
    XCTAssertEqual(none.lastWords?.count, 301, "a long line is shortened")
  }

  func testCodexExecJSONSumsTurnsAndKeepsTheLastMessage() {
    var s = AgentStream(kind: .codex)
    let events = feed(
      &s,
      """
      {"type":"thread.started","thread_id":"th_1"}
      {"type":"turn.started"}
      {"type":"item.completed","item":{"id":"item_0","type":"reasoning","text":"thinking"}}
      {"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"ls","aggregated_output":"a\\n","exit_code":0,"status":"completed"}}
      {"type":"item.completed","item":{"id":"item_2","type":"file_change","changes":[{"path":"README.md","kind":"add"}],"status":"completed"}}
      {"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Added README.md"}}
      {"type":"turn.completed","usage":{"input_tokens":2400,"cached_input_tokens":1200,"output_tokens":300}}
      {"type":"turn.started"}
      {"type":"turn.completed","usage":{"input_tokens":100,"cached_input_tokens":0,"output_tokens":50}}
      """)
    XCTAssertEqual(tokens(events), [2700, 2850], "input (cached included) + output, summed over turns")
    XCTAssertTrue(events.contains(.progress("ran ls")))
    XCTAssertTrue(events.contains(.progress("changed README.md")))
    XCTAssertEqual(s.result, "Added README.md")
    XCTAssertEqual(s.verdict(exitCode: 0), .succeeded)

    var failed = AgentStream(kind: .codex)
    _ = feed(&failed, #"{"type":"turn.started"}"# + "\n" + #"{"type":"turn.failed","error":{"message":"stream disconnected"}}"#)
    XCTAssertEqual(failed.verdict(exitCode: 1), .failed(reason: "agent_failed", detail: "codex reported an error: stream disconnected"))
    var cut = AgentStream(kind: .codex)
    _ = feed(&cut, #"{"type":"thread.started","thread_id":"th_1"}"# + "\n" + #"{"type":"turn.started"}"#)
    if case .failed(let reason, _) = cut.verdict(exitCode: 0) { XCTAssertEqual(reason, "agent_output_truncated") } else { XCTFail() }
  }

  func testAiderTokenLinesAreSummed() {
    XCTAssertEqual(AgentStream.aiderTokens("Tokens: 3.0k sent, 42 received. Cost: $0.0063 message, $0.0063 session."), 3042)
    XCTAssertEqual(AgentStream.aiderTokens("> Tokens: 12,450 sent, 3,200 received. Cost: $0.05 message, $0.19 session."), 15650)
    XCTAssertEqual(AgentStream.aiderTokens("Tokens: 47k sent, 1.5k cache write, 2.5k received."), 49500)
    XCTAssertEqual(AgentStream.aiderTokens("Tokens: 1.2M sent, 10 received."), 1_200_010)
    XCTAssertNil(AgentStream.aiderTokens("Tokens: many sent"))
    XCTAssertNil(AgentStream.aiderTokens("Applied edit to README.md"))
    var s = AgentStream(kind: .aider)
    let events = feed(
      &s,
      """
      Aider v0.86.2
      Model: anthropic/claude-sonnet-4-5 with diff edit format
      Tokens: 3.0k sent, 42 received. Cost: $0.0063 message, $0.0063 session.
      Applied edit to README.md
      Tokens: 1.1k sent, 20 received. Cost: $0.002 message, $0.0083 session.
      """)
    XCTAssertEqual(tokens(events), [3042, 4162])
    XCTAssertTrue(events.contains(.text("Applied edit to README.md")))
    XCTAssertEqual(s.verdict(exitCode: 0), .succeeded)
    var silent = AgentStream(kind: .aider)
    _ = feed(&silent, "Aider v0.86.2\nNo LLM model was specified")
    XCTAssertEqual(
      silent.verdict(exitCode: 1), .failed(reason: "agent_failed", detail: "aider exited with code 1: 'No LLM model was specified'"),
      "aider says what went wrong on stdout: the failure quotes it")
    if case .failed(let reason, _) = silent.verdict(exitCode: 0) { XCTAssertEqual(reason, "agent_output_invalid") } else { XCTFail() }
  }

  /// A hostile or broken agent can print the largest count Cortex reads (2^40) on every line for
  /// millions of lines: the running sums stay at most `Numbers.maxTokens` instead of growing
  /// towards an Int overflow (2^41 a line overflowed after 4.2 million aider lines, a trap that
  /// killed the wrapper), and the figure reported stays the cap.
  func testTokenSumsSaturateAtTheCapInsteadOfOverflowing() {
    let big = Numbers.maxTokens
    var aider = AgentStream(kind: .aider)
    var codex = AgentStream(kind: .codex)
    var claude = AgentStream(kind: .claude)
    for i in 0..<3000 {
      _ = aider.feed(Array("Tokens: \(big) sent, \(big) received.".utf8)[...])
      _ = codex.feed(Array(#"{"type":"turn.completed","usage":{"input_tokens":\#(big),"output_tokens":\#(big)}}"#.utf8)[...])
      let usage = #"{"input_tokens":\#(big),"cache_creation_input_tokens":\#(big),"output_tokens":\#(big)}"#
      _ = claude.feed(Array(#"{"type":"assistant","message":{"id":"m\#(i)","content":[],"usage":\#(usage)}}"#.utf8)[...])
    }
    for s in [aider, codex, claude] {
      XCTAssertEqual(s.tokens, big, "\(s.kind)")
      XCTAssertLessThanOrEqual(s.turnTokens, big, "\(s.kind): the per-turn sum grows without bound")
      XCTAssertLessThanOrEqual(s.messageTotal, big, "\(s.kind): the per-message sum grows without bound")
    }
  }

  /// The additions themselves saturate: a sum already at Int.max (however it got there) plus one
  /// more turn is the cap, not a trap.
  func testTokenAdditionSaturatesEvenFromIntMax() {
    XCTAssertEqual(Numbers.addTokens(Int.max, Int.max), Numbers.maxTokens)
    XCTAssertEqual(Numbers.addTokens(Numbers.maxTokens, 1), Numbers.maxTokens)
    XCTAssertEqual(Numbers.addTokens(2, 3), 5)
    XCTAssertEqual(Numbers.addTokens(5, -9), 0, "a negative figure never makes a sum go below zero")
    var s = AgentStream(kind: .aider)
    s.turnTokens = Int.max - 1
    XCTAssertEqual(tokens(s.feed(Array("Tokens: 1M sent, 1M received.".utf8)[...])), [Numbers.maxTokens])
    var c = AgentStream(kind: .codex)
    c.turnTokens = Int.max
    XCTAssertEqual(
      tokens(c.feed(Array(#"{"type":"turn.completed","usage":{"input_tokens":5,"output_tokens":5}}"#.utf8)[...])), [Numbers.maxTokens])
  }

  func testOwnJSONLProtocol() {
    var s = AgentStream(kind: .jsonl)
    let events = feed(
      &s,
      """
      {"type":"progress","message":"reading the repo"}
      {"type":"usage","tokens_used":500}
      {"type":"text","text":"plain output"}
      {"type":"usage","tokens_used":400}
      {"type":"future_kind","x":1}
      {"type":"result","ok":true,"summary":"all done"}
      """)
    XCTAssertEqual(tokens(events), [500], "the running total never goes down")
    XCTAssertEqual(events.first, .progress("reading the repo"))
    XCTAssertEqual(s.badLines, 0, "an unknown type is no error (the protocol may grow)")
    XCTAssertEqual(s.verdict(exitCode: 0), .succeeded)
    var no = AgentStream(kind: .jsonl)
    _ = feed(&no, #"{"type":"result","ok":false,"summary":"tests still fail"}"#)
    XCTAssertEqual(no.verdict(exitCode: 0), .failed(reason: "agent_failed", detail: "the agent reported an error: tests still fail"))
  }

  func testArgvKeepsTheDescriptionOneElement() {
    for d in ["Add README.md; rm -rf / $(whoami) 'quoted'", "--dangerously-skip-permissions"] {
      for kind in AgentKind.detectable {
        let argv = kind.argv(description: d) ?? []
        XCTAssertEqual(argv.first, kind.executable)
        // After `--` (claude, codex) or glued to its option (aider): never an option of its own.
        let held = kind == .aider ? argv.filter { $0 == "--message=" + d } : argv.suffix(2).filter { $0 == d }
        XCTAssertEqual(held.count, 1, "\(kind): \(argv)")
        if kind != .aider { XCTAssertEqual(argv.suffix(2).first, "--") }
        XCTAssertEqual(argv.filter { $0.contains(d) }.count, 1, "\(kind): \(argv)")
      }
    }
    XCTAssertNil(AgentKind.jsonl.argv(description: "x"))
  }

  func testReportLineErrorAndReason() {
    let r = ReportLine.parse(Array(#"{"error":"claude printed garbage","reason":"agent_output_invalid"}"#.utf8)[...])
    XCTAssertEqual(r.error, "claude printed garbage")
    XCTAssertEqual(r.reason, "agent_output_invalid")
    let bad = ReportLine.parse(Array(#"{"error":5,"reason":"Not A Word"}"#.utf8)[...])
    XCTAssertNil(bad.error)
    XCTAssertNil(bad.reason)
    XCTAssertEqual(bad.refused.count, 2, "\(bad.refused)")
  }

  func testConfigAgentFieldsRoundTripAndRejectUnknownAgents() throws {
    var c = Config()
    c.agent = .claude
    if let i = c.workerTypes.firstIndex(where: { $0.0 == "security" }) { c.workerTypes[i].1.agent = .codex }
    XCTAssertEqual(try Config.decode(c.json()), c)
    XCTAssertNotNil(c.workerType("development"))
    XCTAssertThrowsError(try Config.decode(.object([("agent", .string("gpt"))]))) { e in
      XCTAssertTrue("\(e)".contains("must be one of claude, codex, aider, jsonl, not 'gpt'"), "\(e)")
    }
  }
}
