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
}
