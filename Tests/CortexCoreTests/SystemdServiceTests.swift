import CortexCore
import XCTest

/// Which systemd unit a process runs in, read from its `/proc/PID/cgroup` as Debian 12's
/// systemd writes it (cgroup v1 with the `name=systemd` hierarchy, a hybrid's `0::` line, or v2
/// alone), and the advice a stopped daemon's directory then gets.
final class SystemdServiceTests: XCTestCase {
  func testTheUnitComesFromTheSystemdHierarchy() {
    let system = SystemdService(unit: "cortex.service", user: false)
    let user = SystemdService(unit: "cortex.service", user: true)
    let cases: [(String, SystemdService?)] = [
      ("0::/system.slice/cortex.service\n", system),
      ("12:cpu:/\n1:name=systemd:/system.slice/cortex.service\n0::/system.slice/cortex.service\n", system),
      ("0::/user.slice/user-1001.slice/user@1001.service/app.slice/cortex.service\n", user),
      (
        "0::/user.slice/user-1001.slice/user@1001.service/app.slice/cortex-work.service\n",
        SystemdService(unit: "cortex-work.service", user: true)
      ),
      // A login shell, the user manager itself, a container's root, a test harness: no service.
      ("0::/user.slice/user-1000.slice/session-3.scope\n", nil),
      ("0::/user.slice/user-1001.slice/user@1001.service/init.scope\n", nil),
      ("0::/\n", nil),
      ("12:cpu:/system.slice/other.service\n", nil),
      ("", nil),
    ]
    for (text, want) in cases { XCTAssertEqual(SystemdService.parse(cgroup: text), want, text) }
  }

  func testTheRecordRoundTripsAndNamesTheCommandToRun() throws {
    let s = SystemdService(unit: "cortex.service", user: false)
    XCTAssertEqual(SystemdService.decode(try JSON.parse(s.json().encoded())), s)
    XCTAssertNil(SystemdService.decode(try JSON.parse(#"{"unit":"cortex","manager":"system"}"#)))
    XCTAssertTrue(s.startAdvice.hasSuffix("start it with: sudo systemctl start cortex"), s.startAdvice)
    let u = SystemdService(unit: "cortex.service", user: true)
    XCTAssertTrue(u.startAdvice.hasSuffix("start it with: systemctl --user start cortex"), u.startAdvice)
  }
}
