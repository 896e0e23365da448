import CortexCore
import Posix
import XCTest

/// What the tests of cluster mode share: a real PostgreSQL per test with the schema migrated,
/// daemons started as nodes on it, and every node stopped and the server gone at the end.
class ClusterTestCase: XCTestCase {
  var pg: Postgres!
  var nodes: [Cortex] = []

  override func setUpWithError() throws {
    pg = try Postgres()
    try Postgres.tool([Cortex.binary, "cluster", "migrate", "--postgres", pg.dsn])
  }

  override func tearDown() {
    for n in nodes { n.finish() }
    pg?.stop()
  }

  /// Starts a node named `name` with `workers` workers and a short lease (`config`: more keys
  /// of its config.json; `dsn`: another way to the server than its socket; `launcher`: what to
  /// run the node's commands through, e.g. `NetworkNamespace.launcher`).
  @discardableResult
  func startNode(
    _ name: String, workers: Int = 4, leaseS: Double = 2, budget: Int = 10_000_000, config: [(String, JSON)] = [],
    dsn: String? = nil, launcher: [String] = []
  ) throws -> Cortex {
    let c = try Cortex()
    c.launcher = launcher
    nodes.append(c)
    try c.initialize(
      [
        ("token_budget_total", .int(Int64(budget))),
        ("max_queue", .int(100_000)),
        ("cluster", .object([("postgres", .string(dsn ?? pg.dsn)), ("node", .string(name)), ("lease_s", .double(leaseS))])),
      ] + config)
    c.ok(["start", "--workers", String(workers)])
    return c
  }

  /// `n` spec lines for `submit --from -`.
  func batch(_ n: Int, _ line: (Int) -> String) -> String { (0..<n).map(line).joined(separator: "\n") + "\n" }

  func sql(_ q: String) -> String { ((try? pg.psql(q)) ?? "").trimmed }

  /// Waits until `count` tasks have a terminal state in the cluster.
  func waitDone(_ count: Int, timeoutS: Int64 = 90) {
    let deadline = Clock.monotonicMs() + timeoutS * 1000
    var done = 0
    while Clock.monotonicMs() < deadline {
      done = Int(sql("SELECT count(*) FROM cortex_task_done")) ?? 0
      if done >= count { return }
      sleepMs(100)
    }
    XCTFail(
      "only \(done) of \(count) tasks finished within \(timeoutS) s; still live: \(sql("SELECT state || ' ' || coalesce(node, '-') || ' ' || count(*) FROM cortex_task GROUP BY state, node"))"
    )
  }
}
