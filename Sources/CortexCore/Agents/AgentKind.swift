/// The agent CLIs Cortex knows how to run and read (issue 17; docs/agents.md). A worker type that
/// says `"agent": "claude"` runs Claude Code non-interactively with the task's description as one
/// argv element, and its structured output becomes Cortex reports (`AgentStream`).
public enum AgentKind: String, CaseIterable, Equatable, Sendable {
  /// Claude Code: `claude -p --output-format stream-json --verbose … -- D`.
  case claude
  /// OpenAI Codex CLI: `codex exec --json --full-auto -- D`.
  case codex
  /// aider: `aider --yes-always --no-pretty --no-stream --message=D`; its `Tokens:` lines count.
  case aider
  /// Any program that prints Cortex's own JSONL protocol on stdout (docs/agents.md); it needs a
  /// `command` template, there is no default program.
  case jsonl

  /// The program looked up on PATH, or nil for `jsonl` (the type's command names it).
  public var executable: String? {
    switch self {
    case .claude: return "claude"
    case .codex: return "codex"
    case .aider: return "aider"
    case .jsonl: return nil
    }
  }

  /// The argv for a non-interactive run of `description` (one element, never through a shell);
  /// nil for `jsonl`. Each CLI's flags are from its own documentation: Claude Code needs
  /// `--verbose` for stream-json in print mode, and `acceptEdits` so it may write files unattended.
  /// The description comes after `--` (or glued to `--message=` for aider), so one that starts with
  /// a dash is never read as an option of the agent.
  public func argv(description: String) -> [String]? {
    switch self {
    case .claude:
      return ["claude", "-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits", "--", description]
    case .codex: return ["codex", "exec", "--json", "--full-auto", "--", description]
    case .aider: return ["aider", "--yes-always", "--no-pretty", "--no-stream", "--message=" + description]
    case .jsonl: return nil
    }
  }

  /// What to run to install it, for messages.
  public var install: String {
    switch self {
    case .claude: return "npm install -g @anthropic-ai/claude-code"
    case .codex: return "npm install -g @openai/codex"
    case .aider: return "python -m pip install aider-install && aider-install"
    case .jsonl: return "a program that prints Cortex's JSONL protocol (docs/agents.md)"
    }
  }

  /// The environment variables that hold its API key (names only; Cortex never stores a value).
  public var keyVariables: [String] {
    switch self {
    case .claude: return ["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"]
    case .codex: return ["OPENAI_API_KEY", "CODEX_API_KEY"]
    case .aider: return ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]
    case .jsonl: return []
    }
  }

  /// The agents to look for on PATH, in order of preference.
  public static let detectable: [AgentKind] = [.claude, .codex, .aider]

  /// The message when a description alone cannot run because no agent is configured.
  public static let installAdvice = "no agent CLI is configured to run it: " + installSteps
  /// What to install and set to get one (`cortex init` says it when it finds none on PATH).
  public static let installSteps =
    "install Claude Code (\(AgentKind.claude.install)), Codex (\(AgentKind.codex.install)) or aider (\(AgentKind.aider.install)), put it on PATH and run `cortex init --force` (or set \"agent\": \"claude\" in config.json); or give a command (-- CMD ARGS), --shell or --synthetic"

  static func decode(_ field: String, _ v: JSON) throws(SpecError) -> AgentKind {
    guard let s = v.string, let k = AgentKind(rawValue: s) else {
      throw SpecError(
        field, "must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), not \(v.string.map { "\(quoted($0))" } ?? v.kindName)")
    }
    return k
  }
}
