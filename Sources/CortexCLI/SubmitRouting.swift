import CortexCore
import Posix

/// `task create --description D` without `--type` (issue 17 part 5): picks the type on the client
/// with `Router` and the `"routing"` rules of the directory's `config.json` (the built-in rules when
/// it has none or cannot be read; the daemon reports a bad config itself). No history of past
/// tasks is consulted here yet: the keyword rules decide, then the default type.
enum SubmitRouting {
  static func route(_ description: String, _ ctx: Context) -> RouteDecision {
    var rules = RoutingRules()
    if let bytes = try? FileSystem.read(ctx.paths.config), let v = try? JSON.parse(bytes),
      let c = try? Config.decode(v), let r = c.routing
    {
      rules = r
    }
    return Router(rules: rules).route(description)
  }

  /// The line printed on stderr, so the choice is visible and can be overridden with `--type`.
  static func line(_ d: RouteDecision) -> String {
    "routed to \(d.type) (confidence \(Router.fixed2(d.confidence)); \(d.reason)); give --type to choose\n"
  }
}
