/// `"cluster"` in `config.json` (SPEC §11): when present, this daemon is one node of a cluster
/// sharing a PostgreSQL database. Absent, Cortex is the single-host daemon.
public struct ClusterSettings: Equatable, Sendable {
  /// A libpq connection string: `postgresql://user@host/db` or `host=… dbname=…`.
  public var postgres: String
  /// This node's name, unique among live nodes; nil: the host name.
  public var node: String?
  /// How long a node's lease lasts without renewal, in seconds (database time).
  public var leaseS: Double = 10
  /// How long a finished task's record stays in `cortex_task_done` (for `show`, `wait` and
  /// dependencies), in seconds; older records are deleted by the leader. Default 7 days.
  public var historyS: Double = 7 * 86_400

  public init(postgres: String, node: String? = nil, leaseS: Double = 10, historyS: Double = 7 * 86_400) {
    self.postgres = postgres
    self.node = node
    self.leaseS = leaseS
    self.historyS = historyS
  }

  public func json() -> JSON {
    .object(
      [("postgres", .string(postgres))] + (node.map { [("node", JSON.string($0))] } ?? []) + [
        ("lease_s", .double(leaseS)), ("history_s", .double(historyS)),
      ])
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
      case "history_s":
        s.historyS = try Numbers.seconds("cluster.history_s", val, min: 1, max: 10 * 365 * 86_400, exclusiveMin: false)
      default: throw SpecError("cluster.\(k)", "unknown setting")
      }
    }
    guard let dsn else { throw SpecError("cluster.postgres", "is required: a connection string like postgresql://cortex@db/cortex") }
    try checkScheme(dsn)
    s.postgres = dsn
    return s
  }

  /// libpq reads a string that is not a `postgresql://` or `postgres://` URI as `key=value`
  /// pairs; a URI of another scheme (`postgresl://`, `mysql://`) was taken as a database name
  /// and the node tried the default local socket, and said only that nothing listened there.
  static func checkScheme(_ dsn: String) throws(SpecError) {
    let b = Array(dsn.utf8)
    guard let i = b.indices.first(where: { b[$0...].starts(with: Array("://".utf8)) }) else { return }
    let scheme = String(decoding: b[..<i], as: UTF8.self)
    guard scheme != "postgresql" && scheme != "postgres" else { return }
    // A value of a key=value string may hold "://" (e.g. a password); a scheme has no '=' or space.
    guard !b[..<i].contains(UInt8(ascii: "=")) && !b[..<i].contains(UInt8(ascii: " ")) else { return }
    throw SpecError(
      "cluster.postgres",
      "must be a postgresql:// (or postgres://) URI or key=value pairs like host=db dbname=cortex, not a \(scheme):// address")
  }
}
