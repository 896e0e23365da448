import CortexCore
import XCTest

/// Range checks on every number that enters from outside (issue 10, item 1).
final class NumberTests: XCTestCase {
  func testTheParserRefusesNumbersThatOverflowToInfinity() {
    for text in ["1e400", "-1e400", "[1e309]", #"{"a":-1e99999}"#] {
      XCTAssertThrowsError(try JSON.parse(Array(text.utf8)), text)
    }
    XCTAssertEqual(try JSON.parse(Array("1e308".utf8)), .double(1e308))
  }

  func testRequestsWithOutOfRangeNumbersNameTheField() {
    let cases: [(String, String)] = [
      (#"{"op":"stop","timeout_s":-1e308}"#, "timeout_s"), (#"{"op":"stop","timeout_s":1e16}"#, "timeout_s"),
      (#"{"op":"stop","timeout_s":"soon"}"#, "timeout_s"), (#"{"op":"scale","workers":2.5}"#, "workers"),
      (#"{"op":"scale","workers":4096}"#, "workers"), (#"{"op":"list","limit":-3}"#, "limit"),
      (#"{"op":"list","state":7}"#, "state"), (#"{"op":"submit","tasks":[{"shell":"x","max_attempts":1e300}]}"#, "max_attempts"),
    ]
    for (text, field) in cases {
      let v = try! JSON.parse(Array(text.utf8))
      do {
        let r = try Request.decode(v)
        XCTFail("\(text) decoded as \(r)")
      } catch {
        XCTAssertTrue((error.reply["error"]?.string ?? "").contains(field), "\(text): \(error.reply.encoded())")
      }
    }
    XCTAssertEqual(try Request.decode(try JSON.parse(Array(#"{"op":"stop","timeout_s":2.5}"#.utf8))), .stop(timeoutMs: 2500))
    XCTAssertEqual(try Request.decode(try JSON.parse(Array(#"{"op":"stop"}"#.utf8))), .stop(timeoutMs: 30_000))
  }

  func testDurationsOnTheCommandLineAreBounded() {
    XCTAssertNil(DurationText.parseMs("1e300d"))
    XCTAssertNil(DurationText.parseMs("9300000000000000"))
    XCTAssertNil(DurationText.parseMs("nan"))
    XCTAssertNil(DurationText.parseMs("-1s"))
    XCTAssertEqual(DurationText.parseMs("1.5s"), 1500)
    XCTAssertEqual(DurationText.parseMs("2h"), 7_200_000)
    // Several units, largest first, and weeks.
    XCTAssertEqual(DurationText.parseMs("2h30m"), 9_000_000)
    XCTAssertEqual(DurationText.parseMs("1d12h"), 129_600_000)
    XCTAssertEqual(DurationText.parseMs("1m30s500ms"), 90_500)
    XCTAssertEqual(DurationText.parseMs("1w"), 604_800_000)
    XCTAssertEqual(DurationText.parseMs("90"), 90_000)
    for bad in ["", "s", "5m30", "1h1h", "30m2h", "2x", "1.5.5s", "h2", "2 h", "-1m30s"] {
      XCTAssertNil(DurationText.parseMs(bad), bad)
    }
    XCTAssertEqual(Numbers.ms(fromSeconds: .infinity), Numbers.maxDurationMs)
    XCTAssertEqual(Numbers.ms(fromSeconds: -.infinity), 0)
    XCTAssertEqual(Numbers.ms(.nan), 0)
  }

  /// Task timeouts are kept in whole milliseconds: a positive `timeout_s` under 1 ms would round
  /// to 0 ms (a timeout at the moment the task starts), so admission refuses it naming the field
  /// and the smallest accepted value — in a submit, an edit and a worker type's default.
  func testATimeoutThatWouldRoundToZeroMillisecondsIsRefused() throws {
    var sim = Sim(workers: 1)
    let busy = sim.submitOne(#"{"command":["sleep","9"]}"#)
    let queued = sim.submitOne(#"{"command":["true"],"timeout_s":5}"#)
    for tiny in ["1e-7", "0.0009", "5e-324"] {
      let r = sim.submit([#"{"command":["true"],"timeout_s":\#(tiny)}"#])
      XCTAssertEqual(r["code"]?.int, 65, "\(tiny): \(r.encoded())")
      XCTAssertEqual(r["field"]?.string, "timeout_s", "\(tiny): \(r.encoded())")
      XCTAssertEqual(r["error"]?.string?.contains("at least 0.001"), true, "\(tiny): \(r.encoded())")
      var change = TaskSpec()
      change.timeoutS = Double(tiny)
      let c = sim.nextClient
      sim.nextClient += 1
      sim.feed(.control(c, .edit(queued, change, fields: ["timeout_s"])))
      let e = sim.replies.last { $0.0 == c }!.1
      XCTAssertEqual(e["field"]?.string, "timeout_s", "edit to \(tiny): \(e.encoded())")
      XCTAssertEqual(sim.s.tasks[queued]?.timeoutMs, 5000, "a refused edit changed the task")
      let config = #"{"worker_types":{"quick":{"timeout_s":\#(tiny)}}}"#
      XCTAssertThrowsError(try Config.decode(try JSON.parse(config)), config) {
        XCTAssertEqual(($0 as? SpecError)?.field, "worker_types.quick.timeout_s", config)
      }
      // Decoding alone still reads it: a spec an earlier version logged recovers.
      XCTAssertEqual(try TaskSpec.decode(try JSON.parse(#"{"command":["true"],"timeout_s":\#(tiny)}"#)).timeoutS, Double(tiny))
    }
    XCTAssertEqual(sim.events("task.submitted").count, 2, "a refused submit accepted something")
    // The smallest accepted value is kept as 1 ms, not 0.
    let n = sim.submitOne(#"{"command":["true"],"timeout_s":0.001}"#)
    XCTAssertEqual(sim.s.tasks[n]?.timeoutMs, 1)
    XCTAssertEqual(sim.events("task.submitted", task: n).first?.fields.first { $0.0 == "timeout_ms" }?.1, .int(1))
    sim.finish(busy)
  }

  func testWorkerMessagesAndReportLinesOutOfRangeAreRefused() {
    for text in [
      #"{"op":"done","task":1,"tokens":-5}"#, #"{"op":"done","task":1,"ended":9223372036854775807}"#,
      #"{"op":"progress","task":1,"progress":7}"#, #"{"op":"started","task":-1,"pid":4}"#,
      #"{"op":"progress","task":1e300}"#,
    ] {
      XCTAssertThrowsError(try WorkerToDaemon.decode(Array(text.utf8)[...]), text)
    }
    let r = ReportLine.parse(Array(#"{"tokens_used":1e300,"progress":0.25,"message":"ok"}"#.utf8)[...])
    XCTAssertNil(r.tokensUsed)
    XCTAssertEqual(r.progress, 0.25)
    XCTAssertEqual(r.message, "ok")
    XCTAssertEqual(r.refused.count, 1)
    XCTAssertTrue(r.refused[0].hasPrefix("tokens_used"), r.refused[0])
    XCTAssertEqual(ReportLine.parse(Array("junk".utf8)[...]).refused.count, 1)
  }
}
