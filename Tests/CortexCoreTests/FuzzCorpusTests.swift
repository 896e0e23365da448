import CortexCore
import XCTest

/// Every input in the committed fuzz corpus (fuzz/corpus/<target>, grown by scripts/fuzz, with the
/// crashes it found) goes through the same checks as the fuzz targets in fuzz/Fuzz.swift.
final class FuzzCorpusTests: XCTestCase {
  func inputs(_ target: String) throws -> [[UInt8]] {
    let dir = FileSystemPath.repo + "/fuzz/corpus/" + target
    let names = try FileManagerLite.list(dir)
    XCTAssertFalse(names.isEmpty, "no corpus in \(dir)")
    return try names.map { try FileManagerLite.read(dir + "/" + $0) }
  }

  func testSpecCorpus() throws {
    for bytes in try inputs("spec") {
      guard let v = try? JSON.parse(bytes) else { continue }
      if let spec = try? TaskSpec.decode(v) {
        XCTAssertEqual(try TaskSpec.decode(spec.json()), spec)
      }
      _ = try? Config.decode(v)
    }
  }

  func testFramingCorpus() throws {
    for bytes in try inputs("framing") {
      var lines = LineBuffer(maxLine: 4096)
      lines.append(bytes)
      while case .line(let l) = lines.next() {
        if let m = try? WorkerToDaemon.decode(l) {
          var enc = m.encodedLine()
          enc.removeLast()
          XCTAssertEqual(try WorkerToDaemon.decode(enc[...]), m)
        }
        _ = try? DaemonToWorker.decode(l)
      }
    }
  }

  func testLogCorpus() throws {
    for bytes in try inputs("log") {
      let s = LogSegments.scan(bytes) { _ in }
      XCTAssertLessThanOrEqual(s.validEnd, bytes.count)
      for line in bytes.split(separator: 10, omittingEmptySubsequences: false) {
        XCTAssertEqual((try? JSON.parse(line)) != nil, JSONValidator.isValid(line))
      }
    }
  }
}

extension FuzzCorpusTests {
  func testRequestCorpus() throws {
    for bytes in try inputs("request") {
      guard let v = try? JSON.parse(bytes) else { continue }
      do {
        let r = try Request.decode(v)
        if case .submit(let specs, _, _) = r {
          var s = Scheduler(config: Config(), seed: 1)
          var out: [Action] = []
          s.handle(.submit(7, specs), now: 1_800_000_000_000, into: &out)
        }
      } catch {
        XCTAssertEqual(error.reply["ok"]?.bool, false)
      }
    }
  }

  func testReportCorpus() throws {
    for bytes in try inputs("report") {
      for line in bytes.split(separator: 10) {
        let r = ReportLine.parse(line)
        if let t = r.tokensUsed { XCTAssertTrue((0...Numbers.maxTokens).contains(t)) }
        if let p = r.progress { XCTAssertTrue((0...1).contains(p)) }
      }
    }
  }
}

/// The repository root, from this file's path.
enum FileSystemPath {
  static let repo: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/CortexCoreTests/FuzzCorpusTests.swift
    return parts.joined(separator: "/")
  }()
}

/// Directory listing and reading for tests without Posix (CortexCoreTests depends on CortexCore only).
enum FileManagerLite {
  static func list(_ dir: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted()
  }
  static func read(_ path: String) throws -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: path) else { throw CocoaError(.fileReadNoSuchFile) }
    return [UInt8](d)
  }
}
