import CortexCore
import CortexWorker

/// `cortex agent-run --agent K -- ARGV...`: the hidden mode a worker runs for an agent task
/// (see `AgentRunner`): runs ARGV, reads its output as agent K, reports on `CORTEX_REPORT_FD`.
enum AgentRunCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    guard let name = try args.option("--agent") else { throw CLIError.usage("--agent is required", args.usage) }
    guard let kind = AgentKind(rawValue: name) else {
      throw CLIError.usage(
        "unknown agent \(quoted(name)) (known: \(AgentKind.allCases.map(\.rawValue).joined(separator: ", ")))", args.usage)
    }
    let argv = args.afterDashDash
    try args.noPositionals()
    if argv.isEmpty { throw CLIError.usage("give the agent's command after --", args.usage) }
    return AgentRunner.run(kind: kind, argv: argv)
  }

  static let help = CommandHelp(
    "agent-run", abstract: "run an agent CLI and report what it prints (started by a worker)",
    usage: "cortex agent-run --agent claude|codex|aider|jsonl -- ARGV...",
    flags: [.option("--agent", value: "K", help: "how to read its output", choices: AgentKind.allCases.map(\.rawValue))],
    operands: .command, hidden: true)
}
