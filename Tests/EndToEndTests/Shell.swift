import Posix
import XCTest

extension XCTestCase {
  /// Runs argv with exactly `environment`, bounded by `timeoutS`; returns (exit code, stdout +
  /// stderr). A command that outlives the bound is killed and fails the test.
  func sh(
    _ argv: [String], environment: [String], timeoutS: Int64 = 120, file: StaticString = #filePath, line: UInt = #line
  ) throws -> (Int32, String) {
    let scratch = try FileSystem.makeTemporaryDirectory(prefix: "cortex-sh-out-")
    defer { FileSystem.removeTree(scratch) }
    let out = try FileDescriptor.open(scratch + "/out", [.writeOnly, .create, .truncate])
    let null = try FileDescriptor.open("/dev/null", .readOnly)
    let pid = try Processes.spawn(argv, environment: environment, stdin: null, stdout: out, stderr: out, newProcessGroup: false)
    out.close()
    null.close()
    let deadline = Clock.monotonicMs() + timeoutS * 1000
    while Clock.monotonicMs() < deadline {
      if let (_, status) = Processes.reap(pid) {
        let text = String(decoding: (try FileSystem.read(scratch + "/out")) ?? [], as: UTF8.self)
        if case .exited(let c) = status { return (c, text) }
        return (-1, text)
      }
      sleepMs(10)
    }
    _ = Processes.signal(pid, Signal.kill)
    _ = Processes.wait(pid)
    XCTFail("\(argv.joined(separator: " ")) did not finish within \(timeoutS) s", file: file, line: line)
    return (-1, "")
  }
}
