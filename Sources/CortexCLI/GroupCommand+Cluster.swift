import CortexCluster
import CortexCore
import CortexDaemon

extension GroupCommand {
  /// In cluster mode: the groups the cluster pauses or limits, with what runs and waits in the
  /// whole cluster (read from PostgreSQL, as `cortex cluster status` does); nil on a single host.
  static func clusterGroups(_ ctx: Context) -> Result<[ClusterStatus.GroupLoad], ClusterError>? {
    guard let settings = (try? Daemon.loadConfig(paths: ctx.paths))?.cluster else { return nil }
    do throws(ClusterError) {
      return .success(try ClusterStatus.groups(PGConnection(settings.postgres)))
    } catch {
      return .failure(error)
    }
  }

  /// In cluster mode: whether the cluster knows `group` (lists it, or a task is or was in it),
  /// though this node may not; nil on a single host or when PostgreSQL cannot be read.
  static func clusterKnows(_ ctx: Context, group: String) -> Bool? {
    guard let settings = (try? Daemon.loadConfig(paths: ctx.paths))?.cluster else { return nil }
    return try? ClusterStatus.knows(PGConnection(settings.postgres), group: group)
  }
}
