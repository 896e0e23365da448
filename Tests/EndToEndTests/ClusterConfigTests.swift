import CortexCore
import Posix
import XCTest

/// The `"cluster"` setting as a user writes it (no database needed).
final class ClusterConfigTests: XCTestCase {
  /// `cortex init --cluster postgresl://cortex@db:5433/cortex` (a typo) was accepted: libpq took
  /// the string for a database name, and the node said only that nothing listened on the default
  /// local socket, not that the connection string was not one.
  func testAConnectionStringOfAnotherSchemeIsRefusedNamingTheSetting() throws {
    let c = try Cortex()
    defer { c.finish() }
    let r = c.ok(["init", "--no-start", "--cluster", "postgresl://cortex@127.0.0.1:5433/cortex", "--node", "a"], code: 64)
    XCTAssertTrue(r.err.contains("cluster.postgres") && r.err.contains("not a postgresl:// address"), r.err)
    for good in ["postgresql://cortex@db/cortex", "postgres://cortex@db/cortex", "host=db dbname=cortex password=a://b"] {
      c.ok(["init", "--no-start", "--cluster", good, "--node", "a"])
    }
    try c.configure([("cluster", .object([("postgres", .string("mysql://cortex@db/cortex"))]))])
    let start = c.ok(["start"], code: 1)
    XCTAssertTrue(start.err.contains("cluster.postgres") && start.err.contains("not a mysql:// address"), start.err)
  }
}
