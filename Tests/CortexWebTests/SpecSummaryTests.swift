import CortexCore
import XCTest

@testable import CortexWeb

/// The web model reads the frequent events, `task.submitted` and `task.edited` included, with the
/// scanner (`LogLine`, `SpecSummary`); whatever it reads must be what the full parse reads.
final class SpecSummaryTests: XCTestCase {
  func line(_ seq: Int, _ ms: Int64, _ type: String, task: Int? = nil, worker: Int? = nil, _ extra: String = "") -> ArraySlice<UInt8> {
    logLine(seq, ms, type, task: task, worker: worker, extra)
  }

  /// Everything the pages and the API read of a model, as JSON.
  func picture(_ m: FleetModel) -> [JSON] {
    var out: [JSON] = m.rows.map { r in
      .array([
        r.detailJSON(), .string(String(decoding: r.search, as: UTF8.self)), .string(r.title),
        .array(r.labels.map { .array([.string($0.0), .string($0.1)]) }),
        r.specBytes.map { (try? JSON.parse($0)) ?? .string("unparsable") } ?? .null,
        .int(r.queuedMs ?? -1), r.progress.map(JSON.double) ?? .null,
      ])
    }
    out.append(
      .array(
        m.events(after: 0).map {
          .array([.int(Int64($0.seq)), .string($0.type), .int(Int64($0.task ?? -1)), .string(String(decoding: $0.line, as: UTF8.self))])
        }))
    out.append(.object(m.metrics.finishedTotal.sorted { $0.key < $1.key }.map { ($0.key, .int(Int64($0.value))) }))
    out.append(.string(m.metrics.queueWait.exposition("w", "") + m.metrics.run.exposition("r", "")))
    out.append(m.metrics.series.json(nowSec: 1_800_000_100))
    out.append(.array([.int(Int64(m.lastSeq)), .int(Int64(m.linesRead)), .int(Int64(m.taskCount))]))
    return out
  }

  func testTheFastPathAndTheFullParseBuildTheSameModel() {
    let t0: Int64 = 1_800_000_000_000
    let lines: [ArraySlice<UInt8>] = [
      // A spec with escapes: a description with quotes, a backslash, a tab and unicode (raw and escaped).
      line(
        1, t0, "task.submitted", task: 1,
        #","priority":"high","token_budget":5000,"max_attempts":3,"spec":{"type":"review","description":"Say \"hi\" to na\u00efve caf\u00e9 — ✓ \\ and\ttab","labels":{"team":"web","quote":"a\"b","emoji":"🚀"},"priority":"high"}"#
      ),
      // Plain: unicode without escapes, labels, a top-level array before the spec.
      line(
        2, t0 + 1, "task.submitted", task: 2,
        #","priority":"low","token_budget":0,"max_attempts":1,"secrets":["env/API_KEY"],"spec":{"description":"Überprüfe die Änderung ✓","labels":{"team":"data","k":"v,}:{"},"priority":"low","env":{"API_KEY":"[redacted]"}}"#
      ),
      line(3, t0 + 2, "task.submitted", task: 3, #","priority":"medium","spec":{"synthetic":{"duration_ms":5,"tokens":120}}"#),
      line(4, t0 + 3, "task.submitted", task: 4, #","priority":"medium","spec":{"synthetic":{"duration_ms":5.0,"tokens":1e2}}"#),
      line(5, t0 + 4, "task.submitted", task: 5, #","spec":{"command":["echo","a \"b\"",7,"c"],"labels":{}}"#),
      line(6, t0 + 5, "task.submitted", task: 6, #","spec":{"shell":"make -j2 test","labels":{"n":3,"ok":true,"s":"x"}}"#),
      line(7, t0 + 6, "task.submitted", task: 7, #","spec":{"description":"","shell":"ls","type":7,"labels":["not","an","object"]}"#),
      line(8, t0 + 7, "task.submitted", task: 8, #","spec":{"synthetic":null,"description":"brackets ] } [ { in a string"}"#),
      line(9, t0 + 8, "task.submitted", task: 9, #","priority":"low""#),
      line(10, t0 + 9, "task.assigned", task: 1, worker: 2, #","attempt":1"#),
      line(11, t0 + 10, "task.started", task: 1, worker: 2, #","attempt":1"#),
      line(12, t0 + 11, "task.progress", task: 1, worker: 2, #","progress":0.5,"tokens_used":17"#),
      line(13, t0 + 12, "task.succeeded", task: 1, worker: 2, #","reason":"exit_code","exit_code":0,"tokens_used":40,"duration_ms":2"#),
      line(
        14, t0 + 13, "task.edited", task: 2,
        #","reason":"cortex_edit","detail":"changed priority","before":{"priority":"low"},"after":{"priority":"high"},"spec":{"description":"Überprüfe die Änderung ✓","priority":"high","labels":{"team":"data"}}"#
      ),
      line(15, t0 + 14, "task.failed", task: 3, worker: 1, #","reason":"exit \"quoted\"","exit_code":2"#),
      line(16, t0 + 15, "task.retrying", task: 3, #","reason":"attempt 2 of 3","attempt":2"#),
      line(17, t0 + 16, "task.cancelled", task: 5, #","reason":"cancelled","detail":"by \u0027web\u0027""#),
      line(18, t0 + 17, "task.rejected", #","count":4,"reason":"queue_full""#),
      // Unusual events: a type the scanner leaves alone, with nested values; a task event of an unknown type.
      line(19, t0 + 18, "pool.scaled", #","from":{"workers":2},"to":{"workers":[1,2,{"x":"]"}]}"#),
      line(20, t0 + 19, "task.annotated", task: 6, #","note":{"text":"a \"b\" }","tags":["x"]}"#),
      line(21, t0 + 20, "budget.reserved", task: 6, #","tokens":100"#),
      // Broken lines: neither reads them.
      line(22, t0 + 21, "task.submitted", task: 10, #","spec":{"synthetic":{"duration_ms":1]}"#),
      line(23, t0 + 22, "task.submitted", task: 11, #","spec":{"command":["a",}"#),
      Array(#"{"seq":24,"type":"task.started","task_id":"task-000002""#.utf8)[...],
    ]
    // The fast path reads these without a full parse of the line: the first one's spec (escapes)
    // is parsed alone, the second one's not at all.
    for i in [0, 1, 2, 13] {
      let l = LogLine(bytes: lines[i])
      XCTAssertTrue(l.flat, "\(i)")
      XCTAssertEqual(l.value("spec").map { LogLine(bytes: $0).flat }, i != 0, "\(i)")
    }
    let fast = FleetModel()
    let full = FleetModel()
    for l in lines {
      let a = fast.apply(line: l)
      let b = full.apply(line: l, fullParse: true)
      XCTAssertEqual(a?.seq, b?.seq, String(decoding: l, as: UTF8.self))
      XCTAssertEqual(a?.type, b?.type, String(decoding: l, as: UTF8.self))
    }
    XCTAssertEqual(fast.taskCount, 9)
    let pf = picture(fast)
    let pp = picture(full)
    XCTAssertEqual(pf.count, pp.count)
    for (a, b) in zip(pf, pp) { XCTAssertEqual(a, b) }
    // What the rows say, so that two equally wrong models would not pass.
    XCTAssertEqual(fast.task(1)?.title, "Say \"hi\" to naïve café — ✓ \\ and\ttab")
    XCTAssertEqual(fast.task(1)?.labels.map { "\($0.0)=\($0.1)" }, ["team=web", "quote=a\"b", "emoji=🚀"])
    XCTAssertEqual(fast.task(1)?.state, .succeeded)
    XCTAssertEqual(fast.task(2)?.priority, "high")
    XCTAssertEqual(fast.task(2)?.labels.map { "\($0.0)=\($0.1)" }, ["team=data"])
    XCTAssertEqual(fast.task(3)?.title, "synthetic 5 ms, 120 tokens")
    XCTAssertEqual(fast.task(4)?.title, "synthetic 5 ms, 100 tokens")
    XCTAssertEqual(fast.task(5)?.title, #"echo a "b" c"#)
    XCTAssertEqual(fast.task(6)?.labels.map { "\($0.0)=\($0.1)" }, ["n=3", "ok=true", "s=x"])
    XCTAssertEqual(fast.task(7)?.type, "exec")
    XCTAssertEqual(fast.task(7)?.title, "ls")
    XCTAssertEqual(fast.task(8)?.type, "synthetic")
    XCTAssertNil(fast.task(9)?.type)
    XCTAssertNil(fast.task(10))
    XCTAssertNil(fast.task(11))
    XCTAssertEqual(fast.task(6)?.history.map(\.type), ["task.submitted", "task.annotated", "budget.reserved"])
  }

  /// Specs written by the daemon's encoder, with every kind of string in their fields: read from
  /// the bytes or parsed, the summary is the same; a plain one is read without a parse.
  func testASpecReadFromItsBytesIsTheParsedSpec() {
    let strings = ["", "plain", "a \"quoted\" word", "back\\slash", "tab\tnew\nline", "naïve ✓ 🚀", "ctl\u{1}", "}]{[,:", "\u{7f}"]
    var rng = SystemRandomNumberGenerator()
    var plain = 0
    for i in 0..<3000 {
      func pick() -> String { strings.randomElement(using: &rng)! }
      var o: [(String, JSON)] = []
      if Bool.random(using: &rng) { o.append(("type", Bool.random(using: &rng) ? .string(pick()) : .int(3))) }
      if Bool.random(using: &rng) { o.append(("description", .string(pick()))) }
      if Bool.random(using: &rng) { o.append(("command", .array([.string(pick()), .int(1), .string(pick())]))) }
      if Bool.random(using: &rng) { o.append(("shell", .string(pick()))) }
      if Bool.random(using: &rng) {
        let d: JSON = Bool.random(using: &rng) ? .int(Int64(i)) : .double(Double(i) + 0.5)
        o.append(("synthetic", Bool.random(using: &rng) ? .object([("duration_ms", d), ("tokens", .int(7))]) : .null))
      }
      if Bool.random(using: &rng) {
        o.append(
          (
            "labels",
            .object((0..<Int.random(in: 0...3, using: &rng)).map { _ in (pick(), Bool.random(using: &rng) ? .string(pick()) : .int(1)) })
          ))
      }
      if Bool.random(using: &rng) { o.append(("priority", .string(pick()))) }
      o.shuffle(using: &rng)
      let spec = JSON.object(o)
      let bytes = spec.encodedBytes()
      guard let read = SpecSummary.read(bytes[...]) else { return XCTFail("unread: \(String(decoding: bytes, as: UTF8.self))") }
      let parsed = SpecSummary(json: try! JSON.parse(bytes))
      let what = String(decoding: bytes, as: UTF8.self)
      XCTAssertEqual(read.type, parsed.type, what)
      XCTAssertEqual(read.title, parsed.title, what)
      XCTAssertEqual(read.labels.map { [$0.0, $0.1] }, parsed.labels.map { [$0.0, $0.1] }, what)
      XCTAssertEqual(read.priority, parsed.priority, what)
      XCTAssertEqual(read.bytes, parsed.bytes, what)
      if LogLine(bytes: bytes[...]).flat { plain += 1 }
    }
    XCTAssertGreaterThan(plain, 100, "some specs are read without a parse")
  }
}
