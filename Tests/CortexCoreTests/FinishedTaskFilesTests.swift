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

  /// A result.json written since it copies the spec's listed fields gives the same fields, in the
  /// same order, without the spec.json as an older result.json gives with it: `cortex list` reads
  /// one file per old task instead of two, and prints the same.
  func testAResultHoldingTheSpecsFieldsNeedsNoSpec() throws {
    var config = Config()
    var scan = Config.WorkerType(tokenBudget: 0, timeoutS: 60, memoryMB: 0, cpu: 0)
    scan.group = "scanners"
    config.workerTypes = [("scan", scan)]
    let older =
      #""id":"task-000009","state":"failed","type":"scan","attempt":1,"max_attempts":2,"exit_code":3,"signal":null,"reason":"exit_code","detail":"exited with code 3","worker_id":"worker-001","duration_ms":5"#
    let specs = [
      #"{"type":"scan","priority":"high","description":"d","labels":{"k":"v"},"max_attempts":2,"retry_of":"task-000002"}"#,
      #"{"type":"scan","priority":"low","group":"own","command":["x"]}"#,
      #"{"priority":"medium","shell":"true"}"#,
    ]
    for text in specs {
      let spec = try JSON.parse(text)
      let copied = FinishedTaskFiles.specCopied.compactMap { k in spec[k].map { ",\(JSON.string(k).encoded()):\($0.encoded())" } }.joined()
      let newer = try JSON.parse("{" + older + copied + "}")
      XCTAssertTrue(FinishedTaskFiles.holdsSpecFields(newer))
      XCTAssertFalse(FinishedTaskFiles.holdsSpecFields(try JSON.parse("{" + older + "}")))
      let before = JSON.object(FinishedTaskFiles.fields(result: try JSON.parse("{" + older + "}"), spec: spec, config: config))
      XCTAssertEqual(JSON.object(FinishedTaskFiles.fields(result: newer, spec: nil, config: config)).encoded(), before.encoded(), text)
      XCTAssertEqual(JSON.object(FinishedTaskFiles.fields(result: newer, spec: spec, config: config)).encoded(), before.encoded(), text)
    }
  }
  /// result.json's copy of the listed fields is spec.json's (redacted), whether the daemon takes
  /// them from the spec it holds (nothing redacted) or parses spec.json back (something was).
  func testCopiedFieldsAreTheRedactedSpecs() throws {
    let specs = [
      #"{"type":"scan","priority":"high","description":"d","labels":{"k":"v"},"retry_of":"task-000002","group":"g","env":{"A":"1"}}"#,
      #"{"priority":"low","command":["x"]}"#,
      #"{"description":"deploy","labels":{"API_TOKEN":"abc123def456","team":"x"},"shell":"true"}"#,
      #"{"description":"uses [redacted] literally","command":["x"]}"#,
    ]
    for text in specs {
      let spec = try TaskSpec.decode(try JSON.parse(text))
      let specJSON = spec.redacted().spec.json().encodedBytes()
      let parsed = try JSON.parse(specJSON)
      let expected = FinishedTaskFiles.specCopied.compactMap { k in parsed[k].flatMap { $0.isNull ? nil : (k, $0) } }
      let got = FinishedTaskFiles.copiedFields(spec: spec, specJSON: specJSON)
      XCTAssertEqual(JSON.object(got).encoded(), JSON.object(expected).encoded(), text)
    }
    let secret = try TaskSpec.decode(try JSON.parse(specs[2]))
    let copied = JSON.object(FinishedTaskFiles.copiedFields(spec: secret, specJSON: secret.redacted().spec.json().encodedBytes()))
    XCTAssertEqual(copied["labels"]?["API_TOKEN"]?.string, "[redacted]", "a secret label stays redacted in result.json")
  }
}
