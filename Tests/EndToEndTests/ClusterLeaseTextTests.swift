import CortexCore
import Posix
import XCTest

extension ClusterModeTests {
  /// `cortex cluster status` showed a stopped node's lease as a negative number that grew
  /// ("-37.4s"); it says how long ago it lapsed. The JSON keeps the signed seconds.
  func testAStoppedNodesLeaseShowsAsLapsedNotNegative() throws {
    let b = try startNode("b", workers: 1, leaseS: 1)
    b.ok(["stop"])
    b.eventually("b's lease lapses") {
      let s = try? JSON.parse(Array(b.ok(["--json", "cluster", "status"]).out.utf8))
      return (s?["nodes"]?.array?.first?["lease_left_s"]?.double ?? 0) < -1
    }
    let out = b.ok(["cluster", "status"]).out
    let row = out.split(separator: "\n").first { $0.hasPrefix("b ") }.map(String.init) ?? ""
    XCTAssertTrue(row.contains("stopped"), out)
    let lapsed = row.split(separator: " ").map(String.init)
    let i = lapsed.firstIndex(of: "lapsed") ?? lapsed.endIndex
    XCTAssertTrue(i + 2 < lapsed.count && lapsed[i + 1].dropLast().allSatisfy(\.isNumber) && lapsed[i + 2] == "ago", out)
    XCTAssertFalse(row.contains(" -"), out)
  }
}
