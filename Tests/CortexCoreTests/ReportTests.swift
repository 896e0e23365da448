import CortexCore
import XCTest

/// The evidence tools: SHA-256, gates, the SVG chart writer.
final class ReportTests: XCTestCase {
  func testSHA256KnownVectors() {
    XCTAssertEqual(SHA256.hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    XCTAssertEqual(SHA256.hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    XCTAssertEqual(
      SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    XCTAssertEqual(
      SHA256.hex(Array(repeating: UInt8(ascii: "a"), count: 1_000_000)),
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  }

  let summary = try! JSON.parse(
    #"{"completion_pct":99.5,"tasks":{"lost":0},"latency_ms":{"submit_ack":{"p95":1.2}},"ok":true}"#)

  func testGatesPassFailAndMissing() throws {
    let gates = try Gate.parse(
      try JSON.parse(
        #"{"gates":[{"metric":"completion_pct","op":">=","value":100},{"metric":"tasks.lost","op":"<=","value":0},{"metric":"latency_ms.submit_ack.p95","op":"<=","value":5},{"metric":"latency_ms.dispatch.p95","op":"<=","value":5},{"metric":"ok","op":"==","value":1}]}"#
      ))
    let v = Gate.evaluate(summary, gates)
    XCTAssertEqual(v.passed.count, 3)
    XCTAssertEqual(v.failed.count, 1)
    XCTAssertTrue(v.failed[0].contains("observed 99.5") && v.failed[0].contains("off by 0.5"), v.failed[0])
    XCTAssertEqual(v.missing.count, 1, "a missing metric is never a pass")
    XCTAssertTrue(v.missing[0].hasPrefix("latency_ms.dispatch.p95"))
  }

  func testBadGatesNameTheField() {
    for (text, field) in [
      (#"{"gates":[{"metric":"x","op":"~","value":1}]}"#, "gates[0].op"), (#"{"gates":[{"op":"<=","value":1}]}"#, "gates[0].metric"),
      (#"{"gates":[{"metric":"x","op":"<=","value":"one"}]}"#, "gates[0].value"), (#"{"rules":[]}"#, "gates"),
    ] {
      XCTAssertThrowsError(try Gate.parse(try JSON.parse(text))) { e in XCTAssertEqual((e as? SpecError)?.field, field, text) }
    }
  }

  func testChartFromAFixedCSV() {
    let csv = """
      t_s,step,throughput_per_s,in_flight,e2e_p50_ms,e2e_p99_ms
      1,a,100,8,10,20
      2,a,150,8,11,25
      3,b,,16,12,
      4,b,300,16,13,60

      """
    let rows = SVGChart.parseCSV(csv)
    XCTAssertEqual(rows.count, 4)
    XCTAssertNil(rows[2]["throughput_per_s"], "an empty cell is no value, not 0")
    let svg = SVGChart.render(
      title: "run <1> & co", rows: rows, x: "t_s", xLabel: "seconds",
      panels: [
        SVGChart.Panel(
          "Throughput", unit: "tasks/s",
          [SVGChart.Series("throughput_per_s", "done/s", "#00f"), SVGChart.Series("in_flight", "in flight", "#f00")]),
        SVGChart.Panel("Latency", unit: "ms", [SVGChart.Series("e2e_p99_ms", "p99", "#0a0")]),
      ])
    XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
    XCTAssertTrue(svg.hasSuffix("</svg>\n"))
    XCTAssertTrue(svg.contains("run &lt;1&gt; &amp; co"), "the title is escaped")
    XCTAssertEqual(svg.components("<g class=\"panel\""), 2)
    XCTAssertEqual(svg.components("class=\"axis\""), 4, "an x and a y axis per panel")
    XCTAssertEqual(svg.components("<polyline"), 3)
    // Each series has one point per row that has a value.
    for (key, n) in [("throughput_per_s", 3), ("in_flight", 4), ("e2e_p99_ms", 3)] {
      guard let r = svg.range(of: "data-key=\"\(key)\"") else { return XCTFail("no series \(key)") }
      let rest = svg[r.upperBound...]
      let pts = rest[rest.range(of: "points=\"")!.upperBound...].prefix { $0 != "\"" }
      XCTAssertEqual(pts.split(separator: " ").count, n, key)
    }
    XCTAssertTrue(svg.contains(">done/s<") && svg.contains(">p99<"), "legend")
    // Balanced tags: every element opened is closed.
    XCTAssertEqual(svg.components("<g "), svg.components("</g>"))
    XCTAssertEqual(svg.components("<text"), svg.components("</text>"))
  }
}

extension String {
  func components(_ s: String) -> Int {
    var n = 0
    var r = startIndex..<endIndex
    while let f = range(of: s, range: r) {
      n += 1
      r = f.upperBound..<endIndex
    }
    return n
  }
}
