import CortexCore
import Posix

/// `cortex completions bash|zsh|fish`: a completion script made from the help tables (commands,
/// flags, flag values), which asks `cortex __complete task-ids|worker-types` for the words that
/// depend on the directory: task ids from the hot state, worker types from config.json, groups
/// from config.json and the daemon's groups.json.
enum CompletionsCommand {
  static let shells = ["bash", "zsh", "fish"]

  static let help = CommandHelp(
    "completions", abstract: "print a shell completion script (bash, zsh or fish)", usage: "cortex completions bash|zsh|fish",
    details: """
      Completes commands, flags, flag values, task ids (the unfinished ones and the newest 100, from \
      the hot state), worker types (from config.json) and group names (from config.json and the \
      groups the daemon has, as it last wrote them to groups.json: those made live too). A command's own words \
      (group list|set, cluster migrate|status|budget, a command after help) complete only its first \
      operand. The Debian package installs all three.
      """,
    operandWords: shells,
    examples: [
      ("source <(cortex completions bash)", "in this bash"),
      ("cortex completions fish > ~/.config/fish/completions/cortex.fish", "for fish"),
    ])

  static let completeHelp = CommandHelp(
    "__complete", abstract: "words for shell completion", usage: "cortex __complete task-ids|worker-types|groups", hidden: true)

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let words = try args.positionals()
    guard words.count == 1, let shell = words.first, shells.contains(shell) else {
      throw CLIError.usage("name one shell: bash, zsh or fish", help.usage)
    }
    let commands = CortexMain.commands.map(\.help).filter { !$0.hidden }
    switch shell {
    case "bash": ctx.out(ShellScripts.bash(commands))
    case "zsh": ctx.out(ShellScripts.zsh(commands))
    default: ctx.out(ShellScripts.fish(commands))
    }
    return 0
  }

  /// How many of the newest task ids `__complete task-ids` offers beside the unfinished ones.
  static let recentTaskIDs = 100

  /// Prints candidates one per line; prints nothing (exit 0) when there are none to find, so a
  /// shell never shows an error while completing.
  static func complete(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let words = try args.positionals()
    switch words.first {
    case "task-ids":
      // The unfinished tasks, and the newest ones whatever their state: `show`, `log`, `wait` and
      // `retry` are mostly asked about a task that just ended (the hot state lists only active
      // tasks, so those were never offered). Ids are given in order, so the newest are these.
      guard let v = try? DaemonControl.readHotState(ctx.paths) else { return 0 }
      let newest = max(1, v.nextTask - recentTaskIDs)..<max(1, v.nextTask)
      let ids = Set(v.tasks.map(\.number)).union(newest).sorted()
      ctx.out(ids.map { TaskID.format($0) + "\n" }.joined())
    case "worker-types":
      let bytes = ((try? FileSystem.read(ctx.paths.config)) ?? nil) ?? []
      let names = (try? JSON.parse(bytes))?["worker_types"]?.object?.map(\.0) ?? Config.defaultWorkerTypes.map(\.0)
      ctx.out(names.map { $0 + "\n" }.joined())
    case "groups":
      ctx.out(groupNames(ctx.paths).map { $0 + "\n" }.joined())
    default:
      throw CLIError.usage("give task-ids, worker-types or groups", completeHelp.usage)
    }
    return 0
  }

  /// The groups to offer, sorted: those of config.json and those the daemon last wrote to
  /// `groups.json`, which has every group it holds (made live by `group set`, `pause`, `resume`
  /// or a task's `--group` too; in cluster mode also the groups the cluster pauses or limits).
  /// Two files: a completion never waits for the daemon, and offers the last known groups while
  /// none runs.
  static func groupNames(_ paths: Paths) -> [String] {
    let config = ((try? FileSystem.read(paths.config)) ?? nil).flatMap { try? JSON.parse($0) }
    var names = Set(config?["groups"]?.object?.map(\.0) ?? [])
    let live = GroupsFile.read(paths)
    for g in (live?["groups"]?.array ?? []) + (live?["cluster_groups"]?.array ?? []) {
      if let name = g["name"]?.string { names.insert(name) }
    }
    return names.sorted()
  }
}
