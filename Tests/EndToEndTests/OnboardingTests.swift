import CortexCore
import Posix
import XCTest

/// The reference vision's five-minute onboarding, literally (issue 17): in a fresh directory with
/// a stand-in `claude` on PATH, `cortex init` is driven as a wizard in a real terminal (tmux),
/// then `cortex task create --type development --description "Add README.md"`, `show` (the
/// tokens the stand-in printed), `status` and `tail`, typed in the same terminal.
final class OnboardingTests: XCTestCase {
  var c: Cortex!
  var socket = ""

  override func setUpWithError() throws {
    c = try Cortex(rootName: "project/coordination")
    // The server's socket inside the scratch directory: private to this test, removed with it.
    socket = c.scratch + "/tmux.sock"
  }

  override func tearDown() {
    if FileSystem.exists(socket) { tmux(["kill-server"]) }
    c?.finish()
  }

  /// Runs `tmux -L SOCKET ARGS` and returns its stdout ("" when it failed).
  @discardableResult
  func tmux(_ args: [String]) -> String {
    c.tmux(socket: socket, args)
  }

  /// Waits until the terminal shows `text`; returns the screen.
  @discardableResult
  func screen(shows text: String, timeoutS: Int64 = 30, file: StaticString = #filePath, line: UInt = #line) -> String {
    var s = ""
    c.eventually("the terminal to show '\(text)'; it shows:\n\(s)", timeoutS: timeoutS, file: file, line: line) {
      s = tmux(["capture-pane", "-p", "-J", "-S", "-200", "-t", "w"])
      return s.contains(text)
    }
    return s
  }

  func type(_ keys: String) { tmux(["send-keys", "-t", "w", "-l", keys]) }
  func enter() { tmux(["send-keys", "-t", "w", "Enter"]) }

  func testTheFourCommandsInAFreshDirectoryWithAStandInClaude() throws {
    guard FileSystem.exists("/usr/bin/tmux") || FileSystem.exists("/usr/local/bin/tmux") else {
      return XCTFail("tmux is needed to drive the wizard in a terminal: apt-get install tmux (.ci/run does)")
    }
    let project = c.scratch + "/project"
    let bin = c.scratch + "/bin"
    try FileSystem.makeDirectories(project)
    // The stand-in: Claude Code's stream-json for a run that writes README.md (argv: -p … -- DESCRIPTION).
    _ = try AgentTests.standIn(bin, "claude", AgentTests.claudeOK, after: "for a; do last=$a; done; printf '# %s\\n' \"$last\" > README.md")
    try FileSystem.writeAtomically(bin + "/cortex", Array("#!/bin/sh\nexec '\(Cortex.binary)' \"$@\"\n".utf8), durable: false)
    try FileSystem.setMode(bin + "/cortex", 0o755)
    let secret = "sk-ant-api03-onboarding-test-\(Processes.currentID)"
    tmux([
      "new-session", "-d", "-s", "w", "-x", "200", "-y", "50", "-c", project,
      "env -u CORTEX_DIR PATH='\(bin)':\"$PATH\" ANTHROPIC_API_KEY=\(secret) NO_COLOR=1 PS1='$ ' bash --norc --noprofile",
    ])

    type("cortex init")
    enter()
    screen(shows: "✓ agent CLI found: claude (\(bin)/claude)")
    screen(shows: "✓ API key detected from environment: ANTHROPIC_API_KEY")
    screen(shows: "Agent that runs typed tasks (claude, none) [claude]: ")
    enter()
    screen(shows: "Worker pool size (")
    type("2")
    enter()
    screen(shows: "Start the daemon now (y/n) [y]: ")
    enter()
    let started = screen(shows: "next: cortex task create")
    for want in [
      "✓ config.json written: 2 workers, agent claude", "✓ daemon started (pid ", "✓ worker pool initialized (2 workers)",
      "✓ dashboard available at http://127.0.0.1:",
    ] {
      XCTAssertTrue(started.contains(want), "missing '\(want)' in:\n\(started)")
    }
    let config = String(decoding: try FileSystem.read(c.paths.config) ?? [], as: UTF8.self)
    XCTAssertFalse(config.contains(secret), "the key's value must never be written")
    XCTAssertTrue(config.contains(#""agent": "claude""#), config)
    let budgets = (try? JSON.parse(Array(config.utf8)))?["worker_types"]?.object?.compactMap { $0.1["token_budget"]?.int } ?? []
    XCTAssertFalse(budgets.isEmpty)
    XCTAssertTrue(budgets.allSatisfy { $0 >= 100_000 }, "an agent run fits every type's budget: \(budgets)")
    let cpus = (try? JSON.parse(Array(config.utf8)))?["worker_types"]?.object?.compactMap { $0.1["cpu"]?.double } ?? []
    XCTAssertEqual(Set(cpus), [0], "agents wait on their provider: no type waits for idle cores (this machine may be busy)")

    tmux(["send-keys", "-t", "w", "clear", "Enter"])
    type("cortex task create --type development --description \"Add README.md\"")
    enter()
    let created = screen(shows: "follow it: cortex log -f task-000001")
    XCTAssertTrue(created.contains("task-000001 created; "), created)
    XCTAssertTrue(created.contains("progress: http://127.0.0.1:"), created)
    type("cortex wait task-000001 && cortex show task-000001")
    enter()
    let shown = screen(shows: "tokens          1234 used of 200000 budgeted")
    XCTAssertTrue(shown.contains("state           succeeded"), shown)
    XCTAssertEqual(String(decoding: try FileSystem.read(project + "/README.md") ?? [], as: UTF8.self), "# Add README.md\n")
    type("cortex status")
    enter()
    screen(shows: "finished   1 succeeded")
    type("cortex tail")
    enter()
    let tail = screen(shows: "task.succeeded   task-000001")
    XCTAssertTrue(tail.contains("task.progress    task-000001"), tail)

    // A description alone is routed, and the daemon logs why.
    let routed = c.ok([
      "task", "create", "--description", "Write docs for the public API", "--cwd", project, "--env", "PATH=\(bin):/usr/bin:/bin",
    ])
    XCTAssertTrue(routed.err.contains("routed to documentation"), routed.err)
    let id = routed.out.trimmed
    let event = c.events().first { $0["type"]?.string == "task.routed" && $0["task_id"]?.string == id }
    XCTAssertEqual(event?["reason"]?.string, "keyword", "\(String(describing: event))")
    XCTAssertEqual(event?["routed_to"]?.string, "documentation")
    XCTAssertGreaterThan(event?["confidence"]?.double ?? 0, 0)
    let waited = c.run(["wait", id], timeoutS: 30)
    XCTAssertEqual(waited.code, 0, "\(waited.err)\n\(c.run(["show", id]).out)\n\(c.run(["tail"]).out)\n\(c.run(["log", id]).out)")
    for f in ["config.json", "tasks/task-000001/spec.json", "events/00000001.jsonl"] {
      let text = String(decoding: ((try? FileSystem.read(c.root + "/" + f)) ?? nil) ?? [], as: UTF8.self)
      XCTAssertFalse(text.isEmpty || text.contains(secret), "\(f) is missing or holds the key")
    }
  }

  func testWithNoAgentADescriptionAloneIsRefusedSayingWhatToInstall() throws {
    c.ok(["init", "--no-start"])
    guard var cfg = try FileSystem.read(c.paths.config).flatMap({ try? JSON.parse($0) })?.object else { return XCTFail("config") }
    cfg.removeAll { $0.0 == "agent" }
    try FileSystem.writeAtomically(c.paths.config, JSON.object(cfg).encodedBytes())
    c.ok(["start", "--workers", "1"])
    for args in [["--type", "development", "--description", "Add README.md"], ["--description", "Add README.md"]] {
      let r = c.run(["task", "create"] + args)
      XCTAssertEqual(r.code, 65, r.err)
      XCTAssertTrue(r.err.contains("install Claude Code (npm install -g @anthropic-ai/claude-code)"), r.err)
      XCTAssertTrue(r.err.contains("set \"agent\": \"claude\" in config.json"), r.err)
    }
    XCTAssertEqual(c.events().filter { $0["type"]?.string == "task.submitted" }.count, 0, "nothing half-accepted")
  }

  /// With no agent CLI on PATH, init ended with "next: cortex task create --type development
  /// --description …", a command that is then refused (65, no agent). It offers one that runs.
  func testWithNoAgentInitOffersANextStepThatRuns() throws {
    let r = c.run(raw: ["--dir", c.root, "init", "--workers", "1"], environment: ["PATH=/usr/bin:/bin"])
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertTrue(r.err.contains("! no agent CLI on PATH"), r.err)
    XCTAssertTrue(r.err.contains("next: cortex task create -- make test"), r.err)
    XCTAssertFalse(r.err.contains("next: cortex task create --type development"), r.err)
    let ran = c.ok(["task", "create", "--wait", "--", "true"])
    XCTAssertTrue(ran.err.contains("succeeded"), ran.err)
  }

  func testInitWithoutATerminalTakesTheDefaultsAndStartsOnlyNoStartWritesOnly() throws {
    // No terminal here (the harness's pipes): the defaults are taken without asking.
    let r = c.ok(["init", "--workers", "2"])
    XCTAssertTrue(r.err.contains("config.json written: 2 workers"), r.err)
    XCTAssertTrue(r.err.contains("daemon started"), r.err)
    XCTAssertTrue(r.err.contains("worker pool initialized (2 workers)"), r.err)
    // Right away, status agrees with "initialized (2 workers)": none still shown as starting.
    let status = try JSON.parse(Array(c.ok(["--json", "status"]).out.utf8))
    XCTAssertEqual(status["pool_size"]?.int, 2)
    XCTAssertEqual(status["workers"]?["idle"]?.int, 2, "\(status)")
    // With --json, stdout is init's one answer (the status it prints for people stayed there too).
    let json = c.ok(["--json", "init"])
    XCTAssertEqual(try? JSON.parse(Array(json.out.utf8))["config_written"]?.bool, false, "one JSON document: \(json.out)")
    // Again: nothing rewritten, the running daemon reported, not a second one started.
    let again = c.ok(["init"])
    XCTAssertTrue(again.err.contains("already initialized"), again.err)
    XCTAssertTrue(again.err.contains("daemon already running"), again.err)
    c.ok(["stop"])

    // --no-start: the files only, as scripts that edit config.json before `cortex start` expect.
    let other = try Cortex()
    defer { other.finish() }
    let w = other.ok(["init", "--no-start"])
    XCTAssertTrue(w.err.contains("initialized"), w.err)
    XCTAssertTrue(FileSystem.exists(other.paths.config))
    XCTAssertFalse(FileSystem.exists(other.paths.socket), "--no-start started a daemon")
    XCTAssertEqual(other.run(["status"]).code, 69)
  }

  /// The no-agent refusal says: install one, put it on PATH and run `cortex init --force`. With
  /// the daemon already running (the plain `cortex init` started it), that must be enough: init
  /// has the daemon read the config it wrote. Before, it said "daemon already running" and the
  /// next task was refused again with the same advice, however often it was followed.
  func testInitForceAfterInstallingAnAgentReachesTheRunningDaemon() throws {
    let project = c.scratch + "/project"
    let bin = c.scratch + "/bin"
    try FileSystem.makeDirectories(project)
    let bare = ["PATH=/usr/bin:/bin"]
    let first = c.run(raw: ["init", "--workers", "1"], directory: project, environment: bare)
    XCTAssertEqual(first.code, 0, first.err)
    XCTAssertTrue(first.err.contains("no agent CLI on PATH; typed tasks need one: install Claude Code ("), first.err)
    let refused = c.run(["task", "create", "--type", "development", "--description", "Add README.md", "--cwd", project])
    XCTAssertEqual(refused.code, 65, refused.err)
    XCTAssertTrue(refused.err.contains("run `cortex init --force`"), refused.err)

    // Following the advice: an agent on PATH, then init --force.
    _ = try AgentTests.standIn(bin, "claude", AgentTests.claudeOK)
    let withAgent = ["PATH=\(bin):/usr/bin:/bin"]
    let again = c.run(raw: ["init", "--force", "--workers", "1"], directory: project, environment: withAgent)
    XCTAssertEqual(again.code, 0, again.err)
    for want in [
      "✓ agent CLI found: claude", "config.json written: 1 workers, agent claude", "daemon already running",
      "✓ daemon reloaded config.json",
    ] {
      XCTAssertTrue(again.err.contains(want), "missing '\(want)' in:\n\(again.err)")
    }
    let created = c.run(
      raw: ["--dir", c.root, "task", "create", "--type", "development", "--description", "Add README.md", "--cwd", project, "-p"],
      environment: withAgent)
    XCTAssertEqual(created.code, 0, "refused after init --force: \(created.err)")
    let waited = c.run(["wait", created.out.trimmed], timeoutS: 30)
    XCTAssertEqual(waited.code, 0, waited.err)
    XCTAssertTrue(c.ok(["show", created.out.trimmed]).out.contains("tokens          1234 used of 200000 budgeted"))
    XCTAssertTrue(c.events().contains { $0["type"]?.string == "daemon.reloaded" })
    // --no-start starts nothing, but a daemon already running reads the rewritten file too.
    let reloads = c.events().filter { $0["type"]?.string == "daemon.reloaded" }.count
    let filesOnly = c.run(raw: ["init", "--force", "--no-start", "--workers", "1"], directory: project, environment: withAgent)
    XCTAssertEqual(filesOnly.code, 0, filesOnly.err)
    XCTAssertTrue(filesOnly.err.contains("daemon reloaded config.json"), filesOnly.err)
    XCTAssertEqual(c.events().filter { $0["type"]?.string == "daemon.reloaded" }.count, reloads + 1)
  }

  /// The wizard takes only answers that work: not `jsonl` as the agent (it has no program of its
  /// own, so every typed task would be refused), and says what it expects after a wrong answer.
  /// An agent named that is not on PATH is accepted with a note to install it.
  func testTheWizardRefusesAnswersThatCannotWork() throws {
    guard FileSystem.exists("/usr/bin/tmux") || FileSystem.exists("/usr/local/bin/tmux") else {
      return XCTFail("tmux is needed to drive the wizard in a terminal: apt-get install tmux (.ci/run does)")
    }
    let project = c.scratch + "/project"
    let bin = c.scratch + "/bin"
    try FileSystem.makeDirectories(project)
    _ = try AgentTests.standIn(bin, "claude", AgentTests.claudeOK)
    try FileSystem.writeAtomically(bin + "/cortex", Array("#!/bin/sh\nexec '\(Cortex.binary)' \"$@\"\n".utf8), durable: false)
    try FileSystem.setMode(bin + "/cortex", 0o755)
    tmux([
      "new-session", "-d", "-s", "w", "-x", "200", "-y", "50", "-c", project,
      "env -u CORTEX_DIR PATH='\(bin)':/usr/bin:/bin NO_COLOR=1 PS1='$ ' bash --norc --noprofile",
    ])
    type("cortex init")
    enter()
    screen(shows: "Agent that runs typed tasks (claude, none) [claude]: ")
    type("jsonl")
    enter()
    screen(shows: "'jsonl' is not one of claude, codex, aider, none")
    type("codex")
    enter()
    screen(shows: "codex is not on PATH here; install it before the first task (npm install -g @openai/codex)")
    screen(shows: "Worker pool size (")
    type("0")
    enter()
    screen(shows: "'0' is not a whole number from 1 to 1024")
    type("2")
    enter()
    screen(shows: "Start the daemon now (y/n) [y]: ")
    type("maybe")
    enter()
    screen(shows: "'maybe' is not y or n")
    type("n")
    enter()
    screen(shows: "config.json written: 2 workers, agent codex")
    // It ended on that line; a newcomer is told how to start later.
    screen(shows: "the daemon is not started; start it with: cortex start")
    let config = try XCTUnwrap(FileSystem.read(c.paths.config).flatMap { try? JSON.parse($0) })
    XCTAssertEqual(config["agent"]?.string, "codex")
    XCTAssertFalse(FileSystem.exists(c.paths.socket), "answered n: no daemon")
  }
}
