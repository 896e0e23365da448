import CortexCore
import XCTest

/// The request framing and the settings behind the per-client limits (docs/security.md, "Limits per client").
final class RequestFramingTests: XCTestCase {
  func next(_ b: inout LineBuffer) -> String {
    switch b.next() {
    case .line(let l): return "line:" + String(decoding: l, as: UTF8.self)
    case .none: return "none"
    case .tooLong: return "tooLong"
    case .dropped: return "dropped"
    }
  }

  func testATooLongLineIsDroppedAsItArrivesAndReportedInItsPlace() {
    var b = LineBuffer(maxLine: 8)
    b.append(Array("ok1\n0123".utf8))
    b.append(Array("456789abc".utf8))  // past 8 bytes: dropped now, not when its newline comes
    XCTAssertLessThanOrEqual(b.bufferedCount, 4, "the dropped line is not held")
    XCTAssertTrue(b.skipping)
    for _ in 0..<100 { b.append(Array("zzzzzzzzzz".utf8)) }
    XCTAssertLessThanOrEqual(b.bufferedCount, 4, "the rest of it is skipped")
    b.append(Array("zz\nok2\n".utf8))
    XCTAssertEqual(next(&b), "line:ok1")
    XCTAssertEqual(next(&b), "tooLong")
    XCTAssertEqual(next(&b), "line:ok2")
    XCTAssertEqual(next(&b), "none")
    XCTAssertEqual(b.bufferedCount, 0)
  }

  func testTwoTooLongLinesInOneReadAreBothReported() {
    var b = LineBuffer(maxLine: 4)
    b.append(Array("aaaaaaaa\nbbbbbbbbb\nc\n".utf8))
    XCTAssertEqual(next(&b), "tooLong")
    XCTAssertEqual(next(&b), "tooLong")
    XCTAssertEqual(next(&b), "line:c")
    b.append(Array("dddddd".utf8))
    XCTAssertEqual(next(&b), "tooLong")
    XCTAssertEqual(next(&b), "none")
  }

  func testDropPartialAnswersInPlaceAndKeepsCompleteLines() {
    var b = LineBuffer(maxLine: 1 << 20)
    b.append(Array("a\nb\nunfinis".utf8))
    XCTAssertEqual(b.partialCount, 7)
    b.dropPartial()
    b.append(Array("hed\nc\n".utf8))
    XCTAssertEqual(next(&b), "line:a")
    XCTAssertEqual(next(&b), "line:b")
    XCTAssertEqual(next(&b), "dropped")
    XCTAssertEqual(next(&b), "line:c")
    XCTAssertEqual(next(&b), "none")
    b.dropPartial()  // nothing unfinished: nothing to report
    XCTAssertEqual(next(&b), "none")
  }

  func testLinesSplitAcrossManySmallReads() {
    var b = LineBuffer(maxLine: 64)
    for ch in "one\ntwo\nthree\n".utf8 { b.append([ch]) }
    XCTAssertEqual(next(&b), "line:one")
    XCTAssertEqual(next(&b), "line:two")
    XCTAssertEqual(next(&b), "line:three")
    XCTAssertEqual(next(&b), "none")
  }

  func testALargeLineGivesItsMemoryBack() {
    var b = LineBuffer(maxLine: 32 << 20)
    b.append([UInt8](repeating: 120, count: 8 << 20) + [10])
    guard case .line = b.next() else { return XCTFail("no line") }
    XCTAssertEqual(next(&b), "none")
    XCTAssertLessThan(b.bytes.capacity, 1 << 20, "an 8 MiB line's buffer is kept after it was handled")
  }

  func testClientSettingsAreRangeChecked() throws {
    let c = try Config.decode(
      try JSON.parse(
        #"{"max_clients":50,"client_idle_timeout_s":1,"max_request_bytes":1048576,"max_client_input_bytes":4194304}"#))
    XCTAssertEqual(c.maxClients, 50)
    XCTAssertEqual(c.clientIdleTimeoutS, 1)
    XCTAssertEqual(c.requestLineLimit, 1 << 20)
    XCTAssertEqual(c.clientInputLimit, 4 << 20)
    for bad in [
      #"{"max_clients":0}"#, #"{"max_clients":100000000}"#, #"{"client_idle_timeout_s":0}"#,
      #"{"client_idle_timeout_s":1e9}"#, #"{"max_request_bytes":10}"#, #"{"max_request_bytes":1e12}"#,
      #"{"max_client_input_bytes":1}"#, #"{"max_client_input_bytes":1e15}"#,
    ] {
      XCTAssertThrowsError(try Config.decode(try JSON.parse(bad)), bad)
    }
    // The defaults round-trip through config.json.
    XCTAssertEqual(try Config.decode(Config().json()), Config())
  }

  func testTheLineLimitAlwaysHoldsOneSpecAndTheTotalOneLine() throws {
    let c = try Config.decode(try JSON.parse(#"{"max_spec_bytes":16777216,"max_request_bytes":65536,"max_client_input_bytes":1048576}"#))
    XCTAssertGreaterThan(c.requestLineLimit, 16 << 20)
    XCTAssertGreaterThanOrEqual(c.clientInputLimit, c.requestLineLimit)
    // With the defaults, the largest batch (max_queue specs of max_spec_bytes) fits in the total.
    let d = Config()
    XCTAssertGreaterThan(d.clientInputLimit, d.maxQueue * d.maxSpecBytes + 4096)
  }
}
