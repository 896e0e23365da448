import CortexCore
import XCTest

/// JSON, task specs, the worker protocol and the log reader: the encodings everything else trusts.
final class EncodingTests: XCTestCase {
  func testJSONRoundTripKeepsOrderAndEscapes() throws {
    let v = JSON.object([
      ("z", .int(-3)), ("a", .string("tab\tquote\"nl\n\u{1}é")), ("arr", .array([.bool(true), .null, .double(1.5)])),
    ])
    let text = v.encoded()
    XCTAssertTrue(text.hasPrefix("{\"z\":-3,\"a\":"), text)
    XCTAssertEqual(try JSON.parse(text), v)
  }

  /// Bytes from environ go straight into `cortex submit`'s request: the text must be what a
  /// String made from them (invalid UTF-8 repaired to U+FFFD) encodes to.
  func testWriterEncodesRawBytesAsTheirStringWould() {
    let samples: [[UInt8]] = [
      [], Array("plain".utf8), Array("tab\tq\"b\\nl\n\u{1}é→".utf8), [0x61, 0xFF, 0xFE, 0x62], [0xE2, 0x82], [0xC3, 0xA9, 0x80],
    ]
    for bytes in samples {
      var raw = JSONWriter()
      var viaString = JSONWriter()
      raw.beginObject()
      viaString.beginObject()
      bytes.withUnsafeBufferPointer { b in
        raw.key(utf8: b)
        raw.string(utf8: b)
        raw.key(utf8: b)
        raw.string(utf8: b)
      }
      let s = String(decoding: bytes, as: UTF8.self)
      viaString.field(s, s)
      viaString.field(s, s)
      raw.endObject()
      viaString.endObject()
      XCTAssertEqual(raw.bytes, viaString.bytes, "\(bytes)")
      XCTAssertNotNil(try? JSON.parse(raw.bytes), "\(bytes)")
    }
  }

  func testJSONParserRejectsWhatJqRejects() {
    for bad in ["", "{", "{\"a\":}", "[1,]", "tru", "\"unterminated", "{\"a\":1}x", "01", "{'a':1}", "nan"] {
      XCTAssertThrowsError(try JSON.parse(bad), "accepted \(bad)")
    }
    // Depth is bounded: no stack overflow on hostile input.
    XCTAssertThrowsError(try JSON.parse(String(repeating: "[", count: 10_000)))
  }

  func testTaskSpecDecodeNamesTheBadField() {
    func field(_ text: String) -> String? {
      do {
        _ = try TaskSpec.decode(try JSON.parse(text))
        return nil
      } catch let e as SpecError {
        return e.field
      } catch {
        return "parse"
      }
    }
    XCTAssertEqual(field(#"{"command":"true"}"#), "command")
    XCTAssertEqual(field(#"{"command":["true"],"priority":"urgent"}"#), "priority")
    XCTAssertEqual(field(#"{"command":["true"],"token_budget":-5}"#), "token_budget")
    XCTAssertEqual(field(#"{"command":["true"],"token_budget":"lots"}"#), "token_budget")
    XCTAssertEqual(field(#"{"command":["true"],"colour":"red"}"#), "colour")
    XCTAssertEqual(field(#"{"synthetic":{"duration_ms":-1}}"#), "synthetic.duration_ms")
    XCTAssertNil(field(#"{"command":["true"],"priority":"critical","labels":{"a":"b"}}"#))
    // Environment names: not empty, no `=`, no control character, no digit first (any script's).
    for bad in ["", "A=B", "1A", "A\\u007fB", "A\\nB", "\\u0663X"] {
      XCTAssertEqual(field(#"{"command":["true"],"env":{""# + bad + #"":"v"}}"#), "env.\(try! JSON.parse("\"\(bad)\"").string!)", bad)
    }
    for good in ["A", "_a1", "Ä", "NAME_2", "x\\u00e9"] {
      XCTAssertNil(field(#"{"command":["true"],"env":{""# + good + #"":"v"}}"#), good)
    }
    XCTAssertEqual(field(#"{"command":["true"],"env":{"A":"x\u0000y"}}"#), "env.A", "a NUL in a value")
    XCTAssertNil(field(#"{"command":["true"],"env":{"A":"x\u0001y"},"labels":{"1=\u0000":"v\u0000"}}"#), "labels are not names")
  }

  /// `write(to:)` is the one list of a spec's fields: every field decode accepts comes back out,
  /// in one order, with the same bytes as text already in that order, and `json()` is that text.
  func testEveryFieldOfASpecIsWrittenInItsOrder() throws {
    let texts = [
      ##"{"type":"scan","description":"d \"q\"","priority":"high","command":["a","b c"],"cwd":"/tmp","env":{"A":"1","B":"é"},"token_budget":500,"timeout_s":1.5,"max_attempts":3,"depends_on":["task-000002","#1"],"idempotency_key":"k","sla_deadline":"2026-12-01T10:00:00.000Z","labels":{"team":"x"},"group":"g","retry_of":"task-000001","agent":"claude","routed":{"reason":"r","confidence":0.5,"fell_back":false}}"##,
      #"{"priority":"low","shell":"echo hi","timeout_s":60}"#,
      #"{"priority":"medium","synthetic":{"duration_ms":5,"tokens":7,"error_rate":0.25}}"#,
    ]
    for text in texts {
      let spec = try TaskSpec.decode(try JSON.parse(text))
      XCTAssertEqual(String(decoding: spec.encodedBytes(), as: UTF8.self), text)
      XCTAssertEqual(spec.json().encoded(), text)
      var w = JSONWriter()
      w.beginObject()
      w.key("spec")
      spec.write(to: &w)
      w.field("after", 1)
      w.endObject()
      XCTAssertEqual(w.string, #"{"spec":"# + text + #","after":1}"#, "a spec written as a field")
    }
  }

  func testTaskSpecRoundTripAndRedaction() throws {
    let spec = try TaskSpec.decode(
      try JSON.parse(#"{"shell":"echo hi","env":{"API_TOKEN":"s3cret","MODE":"x"},"priority":"high","depends_on":["task-000002"]}"#))
    XCTAssertEqual(spec.priority, .high)
    XCTAssertEqual(spec.dependsOn, [2])
    XCTAssertEqual(try TaskSpec.decode(spec.json()), spec)
    let redacted = spec.redactedJSON().encoded()
    XCTAssertFalse(redacted.contains("s3cret"), redacted)
    XCTAssertTrue(redacted.contains("MODE"))
  }

  func testWorkerProtocolRoundTripAndGarbage() throws {
    let msgs: [WorkerToDaemon] = [
      .ready(pid: 42), .heartbeat, .started(task: 7, pid: 99, atMs: 1234),
      .progress(task: 7, tokensUsed: 10, progress: 0.5, message: "half"),
      .done(TaskOutcome(task: 7, exitCode: 0, signal: nil, tokensUsed: 10, startedMs: 1, endedMs: 2)),
    ]
    for m in msgs {
      var line = m.encodedLine()
      XCTAssertEqual(line.last, 10)
      line.removeLast()
      XCTAssertEqual(try WorkerToDaemon.decode(line[...]), m)
    }
    for bad in ["", "{}", "{\"op\":\"nope\"}", "not json", "{\"op\":\"done\",\"task\":\"x\"}", "{\"op\":\"ready\",\"pid\":-1}"] {
      XCTAssertThrowsError(try WorkerToDaemon.decode(Array(bad.utf8)[...]), bad)
    }
  }

  func testLineBufferSplitsAndBoundsLines() {
    var b = LineBuffer(maxLine: 8)
    b.append(Array("ab\ncd".utf8))
    guard case .line(let l) = b.next() else { return XCTFail("no line") }
    XCTAssertEqual(Array(l), Array("ab".utf8))
    XCTAssertTrue({ if case .none = b.next() { return true } else { return false } }())
    b.append(Array("efghijklmnop".utf8))
    XCTAssertTrue({ if case .tooLong = b.next() { return true } else { return false } }())
  }

  func testTaskAndWorkerIDsParseFromTextAndFromBytes() {
    for (text, task, worker) in [
      ("task-000012", 12, nil), ("task-1", 1, nil), ("task-" + String(repeating: "9", count: 18), 999_999_999_999_999_999, nil),
      ("worker-003", nil, 3), ("worker-1024", nil, 1024),
    ] as [(String, Int?, Int?)] {
      XCTAssertEqual(TaskID.parse(text), task, text)
      XCTAssertEqual(WorkerID.parse(text), worker, text)
      let line = Array(("{\"id\":\"" + text + "\"}").utf8)
      let value = line[7..<(line.count - 2)]
      XCTAssertEqual(TaskID.parse(utf8: value), task, text)
      XCTAssertEqual(WorkerID.parse(utf8: value), worker, text)
    }
    let refused = [
      "task-", "task-0", "task-000000", "task-12a", "task--3", "task-+3", "Task-1", "task-" + String(repeating: "9", count: 19), "worker-",
      "worker-+5", "worker-0", "worker-x", "",
    ]
    for text in refused {
      XCTAssertNil(TaskID.parse(text), text)
      XCTAssertNil(WorkerID.parse(text), text)
      XCTAssertNil(TaskID.parse(utf8: Array(text.utf8)[...]), text)
    }
  }

  func testTimestampsAndDurations() {
    let ms: Int64 = 1_795_000_000_123
    XCTAssertEqual(Timestamp.parse(Timestamp.rfc3339(ms: ms)), ms)
    // Written as bytes for years 0–9999, by interpolation beyond: the same text either way.
    XCTAssertEqual(Timestamp.rfc3339(ms: 0), "1970-01-01T00:00:00.000Z")
    XCTAssertEqual(Timestamp.rfc3339(ms: -1), "1969-12-31T23:59:59.999Z")
    XCTAssertEqual(Timestamp.rfc3339(ms: 951_782_400_000), "2000-02-29T00:00:00.000Z")
    XCTAssertEqual(Timestamp.rfc3339(ms: ms), "2026-11-18T11:06:40.123Z")
    XCTAssertEqual(Timestamp.rfc3339(ms: 253_402_300_800_000), "10000-01-01T00:00:00.000Z")
    // Parsed from a slice of a longer line (its indexes do not start at 0), with 1–9 digits of
    // fraction; more digits than fit, or none after the dot, are not a timestamp (and no crash).
    let line = Array(#"{"ts":"2026-11-18T11:06:40.123Z"}"#.utf8)
    XCTAssertEqual(Timestamp.parse(utf8: line[7..<31]), ms)
    XCTAssertEqual(Timestamp.parse("2026-11-18T11:06:40.1Z"), ms - 23)
    XCTAssertEqual(Timestamp.parse("2026-11-18T11:06:40.123456789Z"), ms)
    XCTAssertEqual(Timestamp.parse("2026-11-18T11:06:40Z"), ms - 123)
    XCTAssertNil(Timestamp.parse("2026-11-18T11:06:40." + String(repeating: "9", count: 30) + "Z"))
    XCTAssertNil(Timestamp.parse("2026-11-18T11:06:40.Z"))
    // Only times that exist: hours 0-23, minutes and seconds 0-59, a day the month has.
    XCTAssertEqual(Timestamp.parse("2028-02-29T23:59:59Z"), 1_835_481_599_000)
    XCTAssertEqual(Timestamp.parse("2000-02-29T00:00:00Z"), 951_782_400_000)
    for bad in [
      "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-18T24:00:00Z", "2026-11-18T23:60:00Z",
      "2026-11-18T23:59:60Z", "2026-11-18T99:99:99Z", "2026-00-10T00:00:00Z", "2026-11-00T00:00:00Z",
    ] {
      XCTAssertNil(Timestamp.parse(bad), bad)
    }
    XCTAssertEqual(DurationText.parseMs("1.5s"), 1500)
    XCTAssertEqual(DurationText.parseMs("2m"), 120_000)
    XCTAssertEqual(DurationText.parseMs("250ms"), 250)
    XCTAssertNil(DurationText.parseMs("soon"))
    XCTAssertNil(DurationText.parseMs("-1s"))
  }

  // MARK: the log reader

  func line(_ seq: Int) -> String { #"{"seq":\#(seq),"ts":"2026-11-24T00:00:00.000Z","type":"x"}"# + "\n" }

  func testScanAcceptsAWellFormedLog() {
    let text = (1...5).map(line).joined()
    var seen = 0
    let s = LogSegments.scan(Array(text.utf8)) { _ in seen += 1 }
    XCTAssertEqual(s.lines, 5)
    XCTAssertEqual(seen, 5)
    XCTAssertEqual(s.lastSeq, 5)
    XCTAssertEqual(s.validEnd, text.utf8.count)
    XCTAssertFalse(s.tornTail)
    XCTAssertNil(s.corruptAt)
  }

  func testScanTreatsEveryCutOfTheLastLineAsATornTail() {
    let good = (1...3).map(line).joined()
    let last = line(4)
    for cut in 1..<last.utf8.count {
      let bytes = Array(good.utf8) + Array(last.utf8.prefix(cut))
      let s = LogSegments.scan(bytes)
      XCTAssertTrue(s.tornTail, "cut at \(cut)")
      XCTAssertNil(s.corruptAt, "cut at \(cut)")
      XCTAssertEqual(s.validEnd, good.utf8.count, "cut at \(cut)")
      XCTAssertEqual(s.lastSeq, 3)
    }
  }

  func testScanReportsCorruptionBeforeTheLastLine() {
    var bytes = Array(((1...5).map(line)).joined().utf8)
    let second = line(1).utf8.count + 3
    bytes[second] = UInt8(ascii: "#")
    let s = LogSegments.scan(bytes)
    XCTAssertEqual(s.corruptAt, line(1).utf8.count)
    XCTAssertEqual(s.validEnd, line(1).utf8.count)
    // A seq that goes backwards is corruption too.
    let back = Array((line(1) + line(3) + line(2) + line(4)).utf8)
    XCTAssertNotNil(LogSegments.scan(back).corruptAt)
  }

  func testScanSkipsParsingWhatASnapshotCoversButStillChecksOrder() {
    let text = (1...5).map(line).joined()
    var visited: [Int64] = []
    let s = LogSegments.scan(Array(text.utf8), parseAfter: 3) { visited.append($0["seq"]!.int!) }
    XCTAssertEqual(visited, [4, 5])
    XCTAssertEqual(s.lastSeq, 5)
    XCTAssertEqual(s.lines, 5)
    let backwards = Array((line(1) + line(3) + line(2) + line(4)).utf8)
    XCTAssertNotNil(LogSegments.scan(backwards, parseAfter: 3).corruptAt)
    // Covered lines are still validated: a broken one is corruption.
    let odd = Array((line(1) + "{\"seq\":2,garbage}\n" + line(3)).utf8)
    XCTAssertNotNil(LogSegments.scan(odd, parseAfter: 3).corruptAt)
    var nul = Array((1...5).map(line).joined().utf8)
    nul[line(1).utf8.count + 20] = 0
    XCTAssertEqual(LogSegments.scan(nul, parseAfter: 5).corruptAt, line(1).utf8.count)
  }

  /// Found by scripts/fuzz (log target): the validator accepted a lone low surrogate escape.
  func testValidatorAndParserAgreeOnSurrogateEscapes() {
    for (text, valid) in [
      (#""\udeed""#, false), (#""\ud83d""#, false), (#""\ud83d\u0041""#, false), (#""\ud83d\ude00""#, true),
      (#""\u00e9""#, true), (#"{"skq\udeed"}"#, false),
    ] {
      XCTAssertEqual((try? JSON.parse(text)) != nil, valid, "parser: \(text)")
      XCTAssertEqual(JSONValidator.isValid(Array(text.utf8)[...]), valid, "validator: \(text)")
    }
  }

  func testValidatorAgreesWithTheParserOnMutatedEvents() {
    var rng = SplitMix64(seed: 5)
    let samples = [
      line(7), #"{"a":[1,-2.5e3,true,false,null,{"b":"\u00e9\n"}],"c":{}}"#, "[]", "0", #""x""#,
      #"{"seq":1,"ts":"2026-11-24T00:00:00.000Z","type":"task.submitted","spec":{"command":["sh","-c","echo \"hi\""]}}"#,
    ]
    for bad in ["", "{", "[1,]", "01", "{'a':1}", "nan", "\"a", "{\"a\":1}x", "1.", "-", "1e", "\"\\x\""] {
      XCTAssertFalse(JSONValidator.isValid(Array(bad.utf8)[...]), bad)
    }
    var disagreements = 0
    for _ in 0..<20_000 {
      var bytes = Array(samples[Int(rng.below(Int64(samples.count)))].utf8)
      if bytes.last == 10 { bytes.removeLast() }
      for _ in 0..<(1 + rng.below(3)) where !bytes.isEmpty {
        let at = Int(rng.below(Int64(bytes.count)))
        switch rng.below(3) {
        case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
        case 1: bytes.remove(at: at)
        default:
          let structural = Array(#"{}[]":,0-e."#.utf8)
          bytes.insert(structural[Int(rng.below(Int64(structural.count)))], at: at)
        }
      }
      let parsed = (try? JSON.parse(bytes)) != nil
      if parsed != JSONValidator.isValid(bytes[...]) {
        disagreements += 1
        if disagreements < 4 { print("DISAGREE parsed=\(parsed) \(bytes)") }
      }
    }
    XCTAssertEqual(disagreements, 0)
  }

  func testSegmentNamesSortNumerically() {
    XCTAssertEqual(LogSegments.name(12), "00000012.jsonl")
    XCTAssertEqual(LogSegments.indexes(["00000010.jsonl", "junk", "00000002.jsonl", "1.jsonl"]), [2, 10])
  }
}
