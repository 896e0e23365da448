import CortexCore
import Posix
import XCTest

extension OnboardingTests {
  /// The wizard asked its questions after config.json was written with every default: a person
  /// who pressed Ctrl-C at the first question (to think about the pool size, say) was left with
  /// that file (20 workers, no agent although claude was on PATH), and the next `cortex init`
  /// kept it without asking, started 20 workers, and ended with "a typed task needs an agent
  /// CLI, see above" with nothing above. Nothing is written until the questions are answered.
  func testAWizardInterruptedAtAQuestionWritesNothingAndAsksAgain() throws {
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
      "env -u CORTEX_DIR PATH='\(bin)':\"$PATH\" NO_COLOR=1 PS1='$ ' bash --norc --noprofile",
    ])
    type("cortex init")
    enter()
    screen(shows: "Agent that runs typed tasks (claude, none) [claude]: ")
    tmux(["send-keys", "-t", "w", "C-c"])
    // The shell runs this only once init has ended.
    type("echo init-ended-$((20+22))")
    enter()
    screen(shows: "init-ended-42")
    XCTAssertFalse(FileSystem.exists(c.paths.config), "an interrupted wizard wrote config.json")
    tmux(["send-keys", "-t", "w", "clear", "Enter"])
    type("cortex init")
    enter()
    screen(shows: "Agent that runs typed tasks (claude, none) [claude]: ")
    enter()
    screen(shows: "Worker pool size (")
    type("2")
    enter()
    screen(shows: "Start the daemon now (y/n) [y]: ")
    type("n")
    enter()
    let done = screen(shows: "the daemon is not started")
    XCTAssertTrue(done.contains("✓ config.json written: 2 workers, agent claude"), done)
    let config = try JSON.parse(try FileSystem.read(c.paths.config) ?? [])
    XCTAssertEqual(config["agent"]?.string, "claude")
    XCTAssertEqual(config["workers"]?.int, 2)
    XCTAssertFalse(FileSystem.exists(c.paths.socket), "answered n, a daemon started")
  }
}

extension OnboardingTests {
  /// `cortex init --workers 3` on a directory that has a config.json dropped --workers without a
  /// word: "config.json kept", and the daemon it started had config.json's 20 workers (or the
  /// size `cortex scale` had kept). It writes the size into the kept file, says so, and the
  /// daemon it starts has it.
  func testInitWorkersOnAnExistingDirectoryIsNotDropped() throws {
    c.ok(["init", "--no-start"])
    func configured() throws -> Int64? { try JSON.parse(try FileSystem.read(c.paths.config) ?? [])["workers"]?.int }
    XCTAssertEqual(try configured(), 20)
    let kept = c.ok(["init", "--workers", "3", "--no-start"])
    XCTAssertTrue(kept.err.contains("config.json kept but for its workers, now 3"), kept.err)
    XCTAssertEqual(try configured(), 3)
    c.ok(["init", "--workers", "2"])
    XCTAssertEqual(try configured(), 2)
    XCTAssertEqual(try JSON.parse(Array(c.ok(["--json", "workers"]).out.utf8))["workers"]?.array?.count, 2)
    // A size `cortex scale` kept is not what init --workers asked for.
    c.ok(["scale", "4"])
    c.ok(["stop"])
    c.ok(["init", "--workers", "1"])
    XCTAssertEqual(try JSON.parse(Array(c.ok(["--json", "workers"]).out.utf8))["workers"]?.array?.count, 1)
  }
}

extension OnboardingTests {
  /// With claude on PATH, `cortex start` in a new directory wrote no agent into config.json (as
  /// `init` does), and the first `task create --type development` was refused telling the user
  /// to install Claude Code. `start` now configures it; and a config.json that names no agent
  /// (written by hand, or before the agent was installed) is refused naming the agent found.
  func testStartConfiguresTheAgentOnPathAndTheRefusalNamesAnInstalledOne() throws {
    let bin = c.scratch + "/bin"
    _ = try AgentTests.standIn(bin, "claude", AgentTests.claudeOK)
    let path = "PATH=\(bin):/usr/bin:/bin"
    let started = c.run(raw: ["--dir", c.root, "start", "--workers", "1"], environment: [path])
    XCTAssertEqual(started.code, 0, started.err)
    XCTAssertTrue(started.err.contains("config.json written with agent claude (\(bin)/claude)"), started.err)
    XCTAssertEqual(try JSON.parse(try FileSystem.read(c.paths.config) ?? [])["agent"]?.string, "claude")
    let ran = c.run(
      raw: ["--dir", c.root, "task", "create", "--type", "development", "-d", "Add README.md", "--wait"], timeoutS: 30, environment: [path])
    XCTAssertEqual(ran.code, 0, ran.err)
    // A config.json without an agent, claude on PATH: the refusal says how to configure it.
    c.ok(["stop"])
    var cfg = try JSON.parse(try FileSystem.read(c.paths.config) ?? []).object ?? []
    cfg.removeAll { $0.0 == "agent" }
    try FileSystem.writeAtomically(c.paths.config, JSON.object(cfg).encodedBytes())
    c.ok(["start", "--workers", "1"])
    let refused = c.run(raw: ["--dir", c.root, "task", "create", "--type", "development", "-d", "Add README.md"], environment: [path])
    XCTAssertEqual(refused.code, 65, refused.err)
    XCTAssertTrue(refused.err.contains("config.json names no agent to run it, though claude is on PATH (\(bin)/claude)"), refused.err)
    XCTAssertTrue(refused.err.contains("cortex init --force"), refused.err)
    XCTAssertFalse(refused.err.contains("install Claude Code"), refused.err)
    // Without one on PATH it still says what to install.
    let none = c.run(
      raw: ["--dir", c.root, "task", "create", "--type", "development", "-d", "Add README.md"], environment: ["PATH=/usr/bin:/bin"])
    XCTAssertEqual(none.code, 65, none.err)
    XCTAssertTrue(none.err.contains("install Claude Code"), none.err)
  }
}

extension OnboardingTests {
  /// With no agent in config.json, init's last line said "a typed task needs an agent CLI, see
  /// above": above it, a kept config.json printed nothing about agents, and a wizard answered
  /// `none` printed "agent CLI found: claude". It says what to do instead.
  func testInitsNextStepWithoutAnAgentSaysHowToGetOne() throws {
    let bin = c.scratch + "/bin"
    _ = try AgentTests.standIn(bin, "claude", AgentTests.claudeOK)
    c.ok(["init", "--no-start"])
    var cfg = try JSON.parse(try FileSystem.read(c.paths.config) ?? []).object ?? []
    cfg.removeAll { $0.0 == "agent" }
    try FileSystem.writeAtomically(c.paths.config, JSON.object(cfg).encodedBytes())
    let found = c.run(raw: ["--dir", c.root, "init", "--workers", "1"], environment: ["PATH=\(bin):/usr/bin:/bin"])
    XCTAssertEqual(found.code, 0, found.err)
    XCTAssertTrue(
      found.err.contains(
        "next: cortex task create -- make test   (a command; for typed tasks cortex init --force configures claude, found on PATH)"),
      found.err)
    XCTAssertFalse(found.err.contains("see above"), found.err)
    let none = c.run(raw: ["--dir", c.root, "init"], environment: ["PATH=/usr/bin:/bin"])
    XCTAssertTrue(none.err.contains("(a command; a typed task needs an agent CLI on PATH, then cortex init --force)"), none.err)
  }
}

extension OnboardingTests {
  /// The wizard's agent question answered `clade` said only what it takes; and with claude
  /// chosen while only OPENAI_API_KEY was set, "✓ API key detected from environment:
  /// OPENAI_API_KEY" read as claude's key. It names the answer meant, and the keys claude reads.
  func testTheWizardNamesTheAgentMeantAndTheKeysItReads() throws {
    guard FileSystem.exists("/usr/bin/tmux") || FileSystem.exists("/usr/local/bin/tmux") else {
      return XCTFail("tmux is needed to drive the wizard in a terminal: apt-get install tmux (.ci/run does)")
    }
    let project = c.scratch + "/project"
    let bin = c.scratch + "/bin"
    try FileSystem.makeDirectories(project)
    _ = try AgentTests.standIn(bin, "claude", AgentTests.claudeOK)
    try FileSystem.writeAtomically(bin + "/cortex", Array("#!/bin/sh\nexec '\(Cortex.binary)' \"$@\"\n".utf8), durable: false)
    try FileSystem.setMode(bin + "/cortex", 0o755)
    let unset = (AgentKind.claude.keyVariables + AgentKind.codex.keyVariables).map { "-u \($0)" }.joined(separator: " ")
    tmux([
      "new-session", "-d", "-s", "w", "-x", "200", "-y", "50", "-c", project,
      "env -u CORTEX_DIR \(unset) OPENAI_API_KEY=sk-test PATH='\(bin)':\"$PATH\" NO_COLOR=1 PS1='$ ' bash --norc --noprofile",
    ])
    type("cortex init")
    enter()
    screen(shows: "Agent that runs typed tasks (claude, none) [claude]: ")
    type("clade")
    enter()
    screen(shows: "'clade' is not one of claude, codex, aider, none; did you mean claude?")
    type("claude")
    enter()
    screen(shows: "claude reads ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN, not set here (OPENAI_API_KEY is another agent's)")
    screen(shows: "Worker pool size (")
    enter()
    screen(shows: "Start the daemon now (y/n) [y]: ")
    type("n")
    enter()
    screen(shows: "the daemon is not started")
  }
}
