import CortexCore
import Posix
import XCTest

/// Agent adapters end to end (issue 17 item 3): stand-in executables replay recorded output of
/// Claude Code (stream-json), Codex (exec --json), aider and Cortex's own JSONL protocol through a
/// real daemon and worker; the tokens they print reach `show`, an overspending one is stopped
/// while it runs, garbage and truncated output fail with a reason that says what went wrong.
final class AgentTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  /// Writes an executable `name` in `dir` that prints `output` then runs `after` (shell).
  static func standIn(_ dir: String, _ name: String, _ output: String, before: String = "", after: String = "exit 0") throws -> String {
    try FileSystem.makeDirectories(dir)
    let data = dir + "/" + name + ".out"
    try FileSystem.writeAtomically(data, Array(output.utf8), durable: false)
    let path = dir + "/" + name
    try FileSystem.writeAtomically(path, Array("#!/bin/sh\n\(before)\ncat '\(data)'\n\(after)\n".utf8), durable: false)
    try FileSystem.setMode(path, 0o755)
    return path
  }

  static let claudeOK = """
    {"type":"system","subtype":"init","session_id":"s1","model":"claude-sonnet-4-5"}
    {"type":"assistant","message":{"id":"msg_1","content":[{"type":"tool_use","id":"t1","name":"Write","input":{"file_path":"README.md"}}],"usage":{"input_tokens":120,"cache_creation_input_tokens":800,"cache_read_input_tokens":9000,"output_tokens":30}}}
    {"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"Added README.md.","total_cost_usd":0.01,"usage":{"input_tokens":130,"cache_creation_input_tokens":800,"cache_read_input_tokens":9000,"output_tokens":304}}

    """

  /// config.json with one worker type, `dev`: a Claude Code agent run as `program {description}`.
  func initializeDev(_ program: String, timeoutS: Int? = nil) throws {
    var dev: [(String, JSON)] = [("agent", .string("claude")), ("token_budget", .int(100_000))]
    if let timeoutS { dev.append(("timeout_s", .int(Int64(timeoutS)))) }
    dev.append(("command", .array([.string(program), .string("{description}")])))
    try c.initialize([("worker_types", .object([("dev", .object(dev))]))])
  }

  func state(_ id: String) -> JSON? {
    let r = c.run(["show", id, "--json"])
    return r.code == 0 ? try? JSON.parse(Array(r.out.utf8)) : nil
  }

  func waitDone(_ id: String, _ timeoutS: Int64 = 30) -> JSON {
    var last: JSON? = nil
    c.eventually("\(id) to finish", timeoutS: timeoutS) {
      last = state(id)
      return ["succeeded", "failed", "cancelled", "timed_out"].contains(last?["state"]?.string ?? "")
    }
    return last ?? .null
  }

  func testEachAdapterReadsItsAgentsRecordedOutput() throws {
    let bin = c.scratch + "/bin"
    let claude = try Self.standIn(bin, "claude-replay", Self.claudeOK)
    let codex = try Self.standIn(
      bin, "codex-replay",
      """
      {"type":"thread.started","thread_id":"th_1"}
      {"type":"turn.started"}
      {"type":"item.completed","item":{"id":"item_0","type":"command_execution","command":"ls","exit_code":0,"status":"completed"}}
      {"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"Added README.md"}}
      {"type":"turn.completed","usage":{"input_tokens":2400,"cached_input_tokens":1200,"output_tokens":300}}

      """)
    let aider = try Self.standIn(
      bin, "aider-replay",
      """
      Aider v0.86.2
      Tokens: 3.0k sent, 42 received. Cost: $0.0063 message, $0.0063 session.
      Applied edit to README.md

      """)
    let jsonl = try Self.standIn(
      bin, "jsonl-replay",
      """
      {"type":"progress","message":"reading"}
      {"type":"usage","tokens_used":777}
      {"type":"result","ok":true,"summary":"done"}

      """)
    func type(_ agent: String, _ program: String) -> JSON {
      .object([
        ("agent", .string(agent)), ("token_budget", .int(100_000)), ("command", .array([.string(program), .string("{description}")])),
      ])
    }
    try c.initialize([
      (
        "worker_types",
        .object([("c", type("claude", claude)), ("x", type("codex", codex)), ("a", type("aider", aider)), ("j", type("jsonl", jsonl))])
      )
    ])
    c.ok(["start", "--workers", "2"])
    for (t, tokens, message) in [
      ("c", 1234, "claude-replay finished; 1234 tokens"), ("x", 2700, "codex-replay finished; 2700 tokens"),
      ("a", 3042, "aider-replay finished; 3042 tokens"), ("j", 777, "jsonl-replay finished; 777 tokens"),
    ] {
      let id = c.ok(["task", "create", "--type", t, "--description", "Add README.md", "--cwd", c.scratch, "-p"]).out.trimmed
      let done = waitDone(id)
      XCTAssertEqual(done["state"]?.string, "succeeded", "\(t): \(done)")
      XCTAssertEqual(done["tokens_used"]?.int, Int64(tokens), "\(t): \(done)")
      XCTAssertEqual(done["message"]?.string, message, "\(t)")
      XCTAssertEqual(done["spec"]?["agent"]?.string, ["c": "claude", "x": "codex", "a": "aider", "j": "jsonl"][t])
    }
    let log = c.ok(["log", "task-000001"]).out
    XCTAssertTrue(log.contains("→ Write README.md") && log.contains("Added README.md."), log)
  }

  func testAnOverspendingAgentIsStoppedWhileItRuns() throws {
    let bin = c.scratch + "/bin"
    let pidFile = c.scratch + "/agent.pid"
    var lines = #"{"type":"system","subtype":"init","session_id":"s1","model":"m"}"# + "\n"
    for i in 1...5 {
      lines += #"{"type":"assistant","message":{"id":"msg_\#(i)","content":[],"usage":{"input_tokens":100,"output_tokens":100}}}"# + "\n"
    }
    // Spends 1000 tokens at once, then would work on for a minute: only the budget can end it.
    let spender = try Self.standIn(bin, "spender", lines, before: "echo $$ > '\(pidFile)'", after: "sleep 60")
    try c.initialize([
      (
        "worker_types",
        .object([("dev", .object([("agent", .string("claude")), ("command", .array([.string(spender), .string("{description}")]))]))])
      )
    ])
    c.ok(["start", "--workers", "1"])
    let started = Clock.monotonicMs()
    let id = c.ok(["task", "create", "--type", "dev", "--description", "spend", "--tokens", "500", "--cwd", c.scratch, "-p"]).out.trimmed
    let done = waitDone(id)
    XCTAssertLessThan(Clock.monotonicMs() - started, 30_000, "stopped long before the agent's minute was up")
    XCTAssertEqual(done["state"]?.string, "failed", "\(done)")
    XCTAssertEqual(done["reason"]?.string, "token_budget_exceeded", "\(done)")
    let overrun = c.events().first { $0["type"]?.string == "budget.overrun" }
    XCTAssertEqual(overrun?["reason"]?.string, "token_budget_exceeded")
    XCTAssertEqual(overrun?["tokens_used"]?.int ?? 0 > 500, true, "\(String(describing: overrun))")
    if let pid = (try? FileSystem.read(pidFile)).flatMap({ $0 }).flatMap({ Int32(String(decoding: $0, as: UTF8.self).trimmed) }) {
      XCTAssertTrue(c.eventually("the agent process to be gone", timeoutS: 10) { !Processes.isAlive(pid) })
    } else {
      XCTFail("the stand-in never wrote its pid")
    }
  }

  func testGarbageAndTruncatedOutputFailWithAClearReason() throws {
    let bin = c.scratch + "/bin"
    let garbage = try Self.standIn(bin, "garbage", "Segmentation fault (core dumped)\n<html>502 Bad Gateway</html>\n")
    let cut = try Self.standIn(
      bin, "cut", String(Self.claudeOK.split(separator: "\n")[0...1].joined(separator: "\n")) + "\n{\"type\":\"resu")
    let failing = try Self.standIn(
      bin, "failing", #"{"type":"result","subtype":"error_during_execution","is_error":true,"result":"API Error: 401"}"# + "\n",
      after: "exit 1")
    func type(_ program: String) -> JSON {
      .object([
        ("agent", .string("claude")), ("token_budget", .int(100_000)), ("command", .array([.string(program), .string("{description}")])),
      ])
    }
    // Gives up before its output begins, saying why on stderr (as a CLI without its key does).
    let noKey = try Self.standIn(bin, "no-key", "", before: "echo 'Invalid API key · Please run /login' >&2; exit 1")
    try c.initialize([
      (
        "worker_types",
        .object([("g", type(garbage)), ("t", type(cut)), ("f", type(failing)), ("n", type(bin + "/absent")), ("k", type(noKey))])
      )
    ])
    c.ok(["start", "--workers", "2"])
    let cases: [(String, String, String)] = [
      ("g", "agent_output_invalid", "claude printed no stream-json"),
      ("t", "agent_output_truncated", "output ended before its final result (2 events read, 1 unreadable)"),
      ("f", "agent_failed", "reported an error: API Error: 401"),
      ("n", "agent_not_found", "not found on PATH; install it (npm install -g @anthropic-ai/claude-code)"),
      ("k", "agent_failed", "claude exited with code 1 before any output: 'Invalid API key · Please run /login'"),
    ]
    for (t, reason, detail) in cases {
      let id = c.ok(["task", "create", "--type", t, "--description", "x", "--cwd", c.scratch, "-p"]).out.trimmed
      let done = waitDone(id)
      XCTAssertEqual(done["state"]?.string, "failed", "\(t): \(done)")
      XCTAssertEqual(done["reason"]?.string, reason, "\(t): \(done)")
      let failed = c.events().last { $0["type"]?.string == "task.failed" && $0["task_id"]?.string == id }
      let said = failed?["detail"]?.string ?? ""
      XCTAssertTrue(said.contains(detail), "\(t): \(said)")
      if t == "g" { XCTAssertTrue(said.contains("'Segmentation fault (core dumped)'"), said) }
      // wait and submit --wait say the sentence beside the word, as show and log do (they said
      // only "(agent_not_found)").
      let wait = c.run(["wait", id])
      XCTAssertTrue(wait.err.contains("(\(reason): ") && wait.err.contains(detail), "wait: \(wait.err)")
      let answer = try JSON.parse(Array(c.run(["--json", "wait", id]).out.utf8))
      XCTAssertTrue(answer["tasks"]?.array?.first?["detail"]?.string?.contains(detail) == true, "wait --json: \(answer)")
      if t == "n" {
        let viaSubmit = c.run(["task", "create", "--type", t, "--description", "x", "--cwd", c.scratch, "--wait"])
        XCTAssertTrue(viaSubmit.err.contains("(\(reason): ") && viaSubmit.err.contains(detail), "submit --wait: \(viaSubmit.err)")
      }
    }
  }

  /// An agent that finished but left a process holding its stdout (a server started in the
  /// background inherits it) is done when it exits: the task succeeds at once with its tokens,
  /// and what it left behind dies with the task's group. Before, `agent-run` read on until that
  /// pipe closed, so the task ran on, holding its worker and its reservation, until its timeout.
  func testAnAgentThatLeavesAProcessHoldingItsOutputIsDoneWhenItExits() throws {
    let bin = c.scratch + "/bin"
    let pidFile = c.scratch + "/server.pid"
    let agent = try Self.standIn(bin, "leaves-server", Self.claudeOK, after: "sleep 120 &\necho $! > '\(pidFile)'\nexit 0")
    try initializeDev(agent, timeoutS: 120)
    c.ok(["start", "--workers", "1"])
    let started = Clock.monotonicMs()
    let id = c.ok(["task", "create", "--type", "dev", "--description", "serve", "--cwd", c.scratch, "-p"]).out.trimmed
    let done = waitDone(id, 60)
    XCTAssertLessThan(Clock.monotonicMs() - started, 20_000, "done when the agent exited, not when its server's sleep ends")
    XCTAssertEqual(done["state"]?.string, "succeeded", "\(done)")
    XCTAssertEqual(done["tokens_used"]?.int, 1234, "\(done)")
    XCTAssertEqual(c.ok(["budget", "--json"]).out.contains(#""reserved":0"#), true, "the reservation went back")
    if let pid = (try? FileSystem.read(pidFile)).flatMap({ $0 }).flatMap({ Int32(String(decoding: $0, as: UTF8.self).trimmed) }) {
      XCTAssertTrue(c.eventually("the process it left to be gone", timeoutS: 10) { !Processes.isAlive(pid) })
    } else {
      XCTFail("the stand-in never wrote its server's pid")
    }
  }

  /// For an agent task the runner is the one that reports (tokens read from the agent's output).
  /// The agent and the tools it runs inherited the report descriptor and `CORTEX_REPORT_FD`, so a
  /// tool that happened to write on descriptor 3 wrote into the task's accounting: here a made-up
  /// million tokens, and the task was stopped for overspending a budget it never touched.
  func testAnAgentsToolsCannotWriteIntoItsReport() throws {
    let bin = c.scratch + "/bin"
    let seen = c.scratch + "/seen"
    let agent = try Self.standIn(
      bin, "writes-fd3", Self.claudeOK,
      before: #"echo "${CORTEX_REPORT_FD:-unset}" > '\#(seen)'; echo '{"tokens_used": 1000000}' >&3 2>/dev/null; sleep 0.3"#)
    try initializeDev(agent)
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["task", "create", "--type", "dev", "--description", "tools", "--cwd", c.scratch, "-p"]).out.trimmed
    let done = waitDone(id)
    XCTAssertEqual(done["state"]?.string, "succeeded", "\(done)")
    XCTAssertEqual(done["tokens_used"]?.int, 1234, "\(done)")
    XCTAssertEqual((try? FileSystem.read(seen)).flatMap { $0 }.map { String(decoding: $0, as: UTF8.self).trimmed }, "unset")
  }

  /// An upgrade replaces the binary while the workers started from the old one run on (a new
  /// build, a package upgrade, then `cortex restart`). Their agent tasks still run: a worker
  /// spawns `agent-run` from the path, not from "/…/cortex (deleted)", which every agent task
  /// failed on (spawn_failed, "command not found") until the daemon and its workers were stopped.
  func testAgentTasksRunAfterTheBinaryIsReplaced() throws {
    let bin = c.scratch + "/bin"
    try FileSystem.makeDirectories(bin)
    let copy = bin + "/cortex"
    try c.copyBinary(to: copy)
    let claude = try Self.standIn(bin, "claude-replay", Self.claudeOK)
    try initializeDev(claude)
    XCTAssertEqual(try c.start(program: copy, workers: 1), .exited(0))
    // The upgrade: a new file at the same path (rename over it, as installers do).
    try c.copyBinary(to: copy)
    let id = c.ok(["task", "create", "--type", "dev", "--description", "Add README.md", "--cwd", c.scratch, "-p"]).out.trimmed
    let done = waitDone(id)
    XCTAssertEqual(done["state"]?.string, "succeeded", "\(done)\n\(c.run(["log", id]).out)")
    XCTAssertEqual(done["tokens_used"]?.int, 1234)
  }
}
