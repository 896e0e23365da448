import CortexCore
import CortexWeb
import Posix

/// The web view (SPEC §12, docs/web.md) runs on its own thread; the loop only starts it. It reads
/// the log and the hot state the loop writes anyway, and acts through the control socket; in
/// cluster mode it also reads the cluster link's snapshot of every node.
extension Daemon {
  func startWeb() throws(StartupError) {
    guard config.web.enabled else {
      try? FileSystem.remove(WebView.urlPath(paths))
      return
    }
    do throws(PosixError) {
      // Cluster mode: the pages show every node from the snapshot the cluster link reads (the
      // web view never touches PostgreSQL itself).
      let feed = cluster.map { c in
        ClusterFeed(
          node: c.node, host: Host.name, network: Host.network, view: { [link = c.link] in link.clusterView() },
          peers: { [link = c.link] in link.webPeers() },
          publish: { [link = c.link] url, token in link.publishWeb(url: url, token: token) })
      }
      let started = try WebView.start(paths: paths, settings: config.web, fsync: log.fsyncTimings, cluster: feed)
      writeStderr("cortex: web view at \(started.url) (token in \(WebView.tokenPath(paths)))\n")
    } catch {
      throw StartupError(
        "cannot serve the web view on \(config.web.bind):\(config.web.port): \(error); choose another \"web\": {\"port\": …} in config.json (0 picks a free one)"
      )
    }
  }
}
