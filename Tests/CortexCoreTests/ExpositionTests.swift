import CortexCore
import XCTest

/// `Exposition`: the text `metrics.prom` and `/metrics` share (docs/web.md, "/metrics").
final class ExpositionTests: XCTestCase {
  func testEverySampleGetsTheNodeAsItsFirstLabelAndCommentsStayAsTheyAre() {
    let text = "# HELP cortex_x X.\n# TYPE cortex_x gauge\ncortex_x 3\ncortex_y{state=\"idle\"} 2\ncortex_h_bucket{le=\"+Inf\"} 1\n"
    XCTAssertEqual(
      Exposition.labelled(text, node: "a"),
      "# HELP cortex_x X.\n# TYPE cortex_x gauge\ncortex_x{node=\"a\"} 3\ncortex_y{node=\"a\",state=\"idle\"} 2\n"
        + "cortex_h_bucket{node=\"a\",le=\"+Inf\"} 1\n")
    XCTAssertEqual(Exposition.labelled("", node: "a"), "")
    // A node name is a label value: quoted as the text format says.
    XCTAssertEqual(Exposition.labelled("cortex_x 1\n", node: "b\"\\\n"), "cortex_x{node=\"b\\\"\\\\\\n\"} 1\n")
  }

  func testGroupGaugesComeFromTheGroupsRowsWithRatesOnlyForRateLimitedGroups() {
    let rows: [JSON] = [
      .object([
        ("name", .string("api")), ("parallel", .int(3)), ("running", .int(1)), ("queued", .int(2)), ("paused", .bool(false)),
        ("started", .int(7)), ("rate", .object([("starts_per_min_allowed", .double(31.25)), ("rate_limited", .int(4))])),
      ]),
      .object([
        ("name", .string("default")), ("parallel", .int(0)), ("running", .int(0)), ("queued", .int(0)), ("paused", .bool(true)),
        ("started", .int(0)),
      ]),
    ]
    let lines = Exposition.groups(rows, queuePaused: true).split(separator: "\n").filter { !$0.hasPrefix("#") }
    XCTAssertEqual(
      lines,
      [
        "cortex_queue_paused 1", "cortex_group_running{group=\"api\"} 1", "cortex_group_running{group=\"default\"} 0",
        "cortex_group_queued{group=\"api\"} 2", "cortex_group_queued{group=\"default\"} 0", "cortex_group_parallel{group=\"api\"} 3",
        "cortex_group_parallel{group=\"default\"} 0", "cortex_group_paused{group=\"api\"} 0", "cortex_group_paused{group=\"default\"} 1",
        "cortex_group_started_total{group=\"api\"} 7", "cortex_group_started_total{group=\"default\"} 0",
        "cortex_group_rate_allowed_per_min{group=\"api\"} 31.25", "cortex_group_rate_limited_total{group=\"api\"} 4",
      ])
  }
}
