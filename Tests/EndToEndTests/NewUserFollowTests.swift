import CortexCore
import Posix
import XCTest

/// `cortex tail -f | head -1` (or `| grep -m1 …`) never ended: the follower kept going after its
/// reader left, waiting forever in a script. tail -f and log -f end once stdout's reader is gone.
final class NewUserFollowTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testFollowersEndWhenTheirReaderLeaves() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--", "sh", "-c", "echo started; sleep 30"]).out.trimmed
    c.eventually("the task runs") { c.ok(["list", "--state", "running"]).out.contains(id) }
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"]
    for args in [["tail", "-f", "-n", "1"], ["log", "-f", id]] {
      let (r, w) = try makePipe()
      let pid = try Processes.spawn(
        [Cortex.binary, "--dir", c.root] + args, environment: env, stdin: nil, stdout: w, stderr: nil, newProcessGroup: false)
      w.close()
      var first: [UInt8] = []
      XCTAssertTrue(r.waitReadable(timeoutMs: 10_000), "\(args) printed nothing")
      _ = try r.read(appendingTo: &first, max: 4096)
      XCTAssertFalse(first.isEmpty, "\(args)")
      r.close()  // the reader leaves, as head -1 does
      var status: ExitStatus? = nil
      c.eventually("\(args) ends once its reader is gone", timeoutS: 10) {
        status = Processes.reap(pid)?.status
        return status != nil
      }
      if status == nil {
        _ = Processes.signal(pid, Signal.kill)
        _ = Processes.wait(pid)
      }
      XCTAssertEqual(status, .exited(0), "\(args)")
    }
    c.ok(["cancel", id])
  }
}
