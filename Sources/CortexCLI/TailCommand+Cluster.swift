import CortexCore

/// `cortex tail --task ID` on a node of a cluster: the node's log holds only the decisions it
/// made, and the cluster gives the ids. The check that an id was given out read this node's hot
/// state, which knows only the tasks it claimed, so a task another node ran (and, after a
/// restart, one it ran itself) was "unknown task … (the newest is none yet)".
extension TailCommand {
  /// 65 when the cluster does not know `id`; a note naming the node that runs or ran it when
  /// that is another node; nil when this node ran it or no daemon answers (the log is read anyway).
  static func clusterNote(_ id: String, node me: String, _ ctx: Context) throws(CLIError) -> String? {
    guard let c = try? Client(ctx), let v = try? c.request(.object([("op", .string("show")), ("id", .string(id))])) else {
      return nil
    }
    if v["ok"]?.bool != true {
      // The cluster's answer to an id it does not know (65), or why it could not be read (75).
      guard v["code"]?.int == Int64(ExitCode.invalidSpec) else { return nil }
      _ = try Client.check(v)
    }
    guard let node = v["task"]?["node"]?.string, node != me else { return nil }
    let runs = v["task"]?["state"]?.string == "running"
    return
      "cortex: \(id) \(runs ? "runs" : "ran") on node \(node): this node's log has only the decisions this node made (cortex tail --task \(id) on node \(node), or the task's page in this node's web view, which reads that node's events)\n"
  }
}
