public import CortexCore
public import Posix

/// The daemon's one entry point into the web view: binds the listening socket (so a port that is
/// taken fails the start with a clear message), writes `web.token` (0600, a fresh random token
/// each start) and `web.url`, and starts the server's thread.
public enum WebView {
  public struct Started: Sendable {
    /// The address without the token (also in `web.url`).
    public var url: String
    public var port: Int
  }

  public static func tokenPath(_ paths: Paths) -> String { paths.root + "/web.token" }
  public static func urlPath(_ paths: Paths) -> String { paths.root + "/web.url" }

  public static func start(
    paths: Paths, settings: WebSettings, fsync: TimingHistogram, cluster: ClusterFeed? = nil
  ) throws(PosixError)
    -> Started
  {
    let listener: FileDescriptor
    if settings.port == 0, let previous = previousPort(paths, bind: settings.bind),
      let again = try? TCPSocket.listen(address: settings.bind, port: previous, backlog: 4096)
    {
      // `port` 0: the port of the daemon before this one when it is free, so a page left open
      // across a stop and start (or a restart) reaches the new daemon and recovers once
      // someone signs in with its new token; on a new port it could only say "no answer".
      listener = again
    } else {
      listener = try TCPSocket.listen(address: settings.bind, port: settings.port, backlog: 4096)
    }
    let port = TCPSocket.localPort(listener)
    let token = try hexToken()
    try FileSystem.writeAtomically(tokenPath(paths), Array((token + "\n").utf8), mode: 0o600)
    let host = settings.bind == "0.0.0.0" ? "127.0.0.1" : settings.bind
    let url = "http://\(host):\(port)/"
    try FileSystem.writeAtomically(urlPath(paths), Array((url + "\n").utf8), mode: 0o644)
    // Cluster mode: a second token, read-only, that only the other nodes' web views receive
    // (through the database, with this address); it is written to no file.
    let peerToken = cluster == nil ? nil : try hexToken()
    let auth = Auth(token: token, peerToken: peerToken, bind: settings.bind, port: port)
    // A loopback address is published with the loopback it is on (`ClusterFeed.network`, as
    // `#net=…`, which no request carries): a node elsewhere then knows it cannot read it.
    if let cluster, let peerToken {
      let loopback = host.hasPrefix("127.") && !cluster.network.isEmpty
      cluster.publish(url + (loopback ? "#net=" + cluster.network : ""), peerToken)
    }
    let server = try WebServer(paths: paths, auth: auth, listener: listener, fsync: fsync, cluster: cluster)
    let box = ServerBox(server)
    try startThread {
      nameThisThread("cortex-web")
      // Watching must not slow what is watched: when the cores are busy, the daemon's loop (and
      // the workers) run before the dashboards' updates, which then come a little later or
      // skip ahead ("events streamed past"). Nothing here holds the loop back.
      lowerThisThreadPriority(nice: WebServer.threadNice)
      box.take().run()
    }
    return Started(url: url, port: port)
  }

  /// The port in `web.url` as the previous start wrote it, when it was on the same address.
  static func previousPort(_ paths: Paths, bind: String) -> Int? {
    guard let b = (try? FileSystem.read(urlPath(paths))) ?? nil else { return nil }
    let host = bind == "0.0.0.0" ? "127.0.0.1" : bind
    let url = String(decoding: b, as: UTF8.self)
    let prefix = "http://\(host):"
    guard url.hasPrefix(prefix) else { return nil }
    let digits = url.dropFirst(prefix.count).prefix { $0.isASCII && $0.isNumber }
    guard let port = Int(digits), (1...65_535).contains(port) else { return nil }
    return port
  }

  /// 48 hex characters from /dev/urandom.
  static func hexToken() throws(PosixError) -> String {
    try Random.bytes(24).map { b in
      let h = String(b, radix: 16)
      return h.count == 1 ? "0" + h : h
    }.joined()
  }

  /// Hands the server to its thread; nothing else touches it afterwards.
  private final class ServerBox: @unchecked Sendable {
    // @unchecked: written once before the thread starts, read once by that thread.
    private var server: WebServer?
    init(_ s: WebServer) { server = s }
    func take() -> WebServer {
      let s = server!
      server = nil
      return s
    }
  }
}
