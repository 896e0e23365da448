/// `"cluster"` in `config.json` (SPEC §11): when present, this daemon is one node of a cluster
/// sharing a PostgreSQL database. Absent, Cortex is the single-host daemon.
public struct ClusterSettings: Equatable, Sendable {
  /// A libpq connection string: `postgresql://user@host/db` or `host=… dbname=…`.
  public var postgres: String
  /// This node's name, unique among live nodes; nil: the host name.
  public var node: String?
  /// How long a node's lease lasts without renewal, in seconds (database time).
  public var leaseS: Double = 10

  public init(postgres: String, node: String? = nil, leaseS: Double = 10) {
    self.postgres = postgres
    self.node = node
    self.leaseS = leaseS
  }

  public func json() -> JSON {
    .object([("postgres", .string(postgres))] + (node.map { [("node", JSON.string($0))] } ?? []) + [("lease_s", .double(leaseS))])
  }

  public static func decode(_ v: JSON) throws(SpecError) -> ClusterSettings {
    guard let o = v.object else { throw SpecError("cluster", "must be an object like {\"postgres\": \"postgresql://…\"}") }
    var dsn: String? = nil
    var s = ClusterSettings(postgres: "")
    for (k, val) in o {
      switch k {
      case "postgres": dsn = try TaskSpec.nonEmptyString("cluster.postgres", val)
      case "node":
        let n = try TaskSpec.nonEmptyString("cluster.node", val)
        guard n.utf8.count <= 63, n.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
          throw SpecError("cluster.node", "must be 1 to 63 printable characters without spaces")
        }
        s.node = n
      case "lease_s": s.leaseS = try Numbers.seconds("cluster.lease_s", val, min: 1, max: 300, exclusiveMin: false)
      default: throw SpecError("cluster.\(k)", "unknown setting")
      }
    }
    guard let dsn else { throw SpecError("cluster.postgres", "is required: a connection string like postgresql://cortex@db/cortex") }
    s.postgres = dsn
    return s
  }
}
