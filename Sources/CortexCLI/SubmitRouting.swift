import CortexCore
import Posix

/// `task create --description D` without `--type` (issue 17 part 5): picks the type on the client
/// with `Router` and the `"routing"` rules of the directory's `config.json` (the built-in rules when
/// it has none or cannot be read; the daemon reports a bad config itself). No history of past
/// tasks is consulted here yet: the keyword rules decide, then the default type. Only the worker
/// types config.json defines can be chosen: a config of its own types (say `build` and `deploy`)
/// must not have "Fix the crash" routed to the built-in `fix` and refused as an unknown type.
enum SubmitRouting {
  static func route(_ description: String, _ ctx: Context) throws(CLIError) -> RouteDecision {
    var rules = RoutingRules()
    var types: [String]? = nil
    if let bytes = try? FileSystem.read(ctx.paths.config), let v = try? JSON.parse(bytes), let c = try? Config.decode(v) {
      if let r = c.routing { rules = r }
      types = c.workerTypes.map(\.0)
    }
    guard let types else { return Router(rules: rules).route(description) }
    let d = Router(rules: rules.restricted(to: types)).route(description)
    if !types.contains(d.type) {
      throw CLIError(
        ExitCode.invalidSpec,
        "type: no worker type in config.json matched this description and the routing default, \(quoted(d.type)), is not one of them (\(types.joined(separator: ", "))); give --type, or set \"routing\": {\"default_type\": …} in config.json"
      )
    }
    return d
  }

  /// The line printed on stderr, so the choice is visible and can be overridden with `--type`.
  static func line(_ d: RouteDecision) -> String {
    "routed to \(d.type) (confidence \(Router.fixed2(d.confidence)); \(d.reason)); give --type to choose\n"
  }
}

extension SubmitRouting {
  /// The daemon's refusal of a typed task when config.json names no agent tells the user to
  /// install one; with one on PATH already (config.json written before it was installed, by
  /// hand, or by `init` with `none` chosen) that advice is wrong: it says which one is there and
  /// how to configure it instead.
  static func withAgentOnPath(_ e: CLIError) -> CLIError {
    guard e.answer?["field"]?.string == "agent", e.description.hasSuffix(AgentKind.installAdvice),
      let (agent, path) = InitWizard.find().agents.first
    else { return e }
    let head = e.description.dropLast(AgentKind.installAdvice.count)
    return CLIError(
      e.code,
      head + "config.json names no agent to run it, though \(agent.rawValue) is on PATH (\(path)): run `cortex init --force` "
        + "to configure it (or set \"agent\": \"\(agent.rawValue)\" in config.json); or give a command (-- CMD ARGS), --shell or --synthetic",
      answer: e.answer)
  }
}
