/// Another node's web view as the cluster's database knows it (docs/web.md, "Cluster mode"):
/// the cluster link reads it, the web view fetches from it. `token` is the read-only token the
/// node accepts from its peers; it never appears in a page or an API answer.
public struct ClusterPeer: Sendable, Equatable {
  public var name: String
  public var state: String
  public var host: String
  public var url: String
  public var token: String
  public init(name: String, state: String, host: String, url: String, token: String) {
    self.name = name
    self.state = state
    self.host = host
    self.url = url
    self.token = token
  }
}
