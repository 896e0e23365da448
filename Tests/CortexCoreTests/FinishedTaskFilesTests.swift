import CortexCore
import XCTest

/// A compact-record task's fields from its files, as `show` and `list` both read them.
final class FinishedTaskFilesTests: XCTestCase {
  func testResultFieldsThenTheSpecsAndTheGroupAsForAHeldTask() throws {
    var config = Config()
    var scan = Config.WorkerType(tokenBudget: 0, timeoutS: 60, memoryMB: 0, cpu: 0)
    scan.group = "scanners"
    config.workerTypes = [("scan", scan)]
    let result = try JSON.parse(
      #"{"id":"task-000007","state":"failed","type":"scan","attempt":2,"exit_code":3,"signal":null,"worker_id":"worker-004","priority":"low"}"#
    )
    let spec = try JSON.parse(#"{"type":"scan","priority":"high","description":"d","labels":{"k":"v"},"max_attempts":3}"#)
    let f = FinishedTaskFiles.fields(result: result, spec: spec, config: config)
    let keys = f.map(\.0)
    XCTAssertFalse(keys.contains("id") || keys.contains("state") || keys.contains("signal"), "\(keys)")
    XCTAssertEqual(Set(keys).count, keys.count, "a field twice: \(keys)")
    let o = JSON.object(f)
    XCTAssertEqual(o["priority"]?.string, "low", "result.json says it first")
    XCTAssertEqual(o["description"]?.string, "d")
    XCTAssertEqual(o["labels"]?["k"]?.string, "v")
    XCTAssertEqual(o["max_attempts"]?.int, 3)
    XCTAssertEqual(o["group"]?.string, "scanners", "a task without a group is in its worker type's")
    XCTAssertEqual(
      JSON.object(FinishedTaskFiles.fields(result: nil, spec: try JSON.parse(#"{"group":"g1"}"#), config: config))["group"]?.string, "g1")
    XCTAssertTrue(FinishedTaskFiles.fields(result: nil, spec: nil, config: config).isEmpty)
  }
}
