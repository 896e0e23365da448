import CortexCore
import Posix
import XCTest

/// A second host on this machine: a network namespace joined to this one by a veth pair, each
/// end with an address of a /30 of its own. A process started through `launcher` sees only that
/// link (Unix sockets in the file system still work: `cortex` commands reach a daemon there).
/// `cut()` takes this side of the link down, so packets vanish without a reset, as in a network
/// partition; `heal()` brings it back. Needs root and iproute2 (installed as root if missing,
/// as `.ci/run` does); `remove()` deletes both.
final class NetworkNamespace {
  let name: String
  /// This namespace's end of the link, and its address.
  let hostInterface: String
  let hostAddress: String
  /// The address inside the namespace.
  let address: String
  /// The /30 both ends are in.
  let network: String

  static let ip: String? = {
    if find() == nil, Processes.effectiveUserID == 0, FileSystem.exists("/usr/bin/apt-get") {
      _ = try? Postgres.tool(["sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2"])
    }
    return find()
  }()

  static func find() -> String? { ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileSystem.exists($0) } }

  init() throws {
    guard Processes.effectiveUserID == 0 else {
      throw HarnessError(message: "a network namespace needs root (ip netns); CI runs as root")
    }
    guard Self.ip != nil else { throw HarnessError(message: "iproute2 is not installed (no ip): apt-get install iproute2") }
    // Unique per process and moment; interface names stay within 15 characters.
    let n = Int(Processes.currentID % 1000) * 100 + Int(Clock.monotonicNs() / 1_000_000 % 100)
    name = "cortex-test-\(n)"
    hostInterface = "cxh\(n)"
    let inside = "cxn\(n)"
    let third = n / 64 % 256, fourth = n % 64 * 4
    network = "10.213.\(third).\(fourth)/30"
    hostAddress = "10.213.\(third).\(fourth + 1)"
    address = "10.213.\(third).\(fourth + 2)"
    try ip(["netns", "add", name])
    do {
      try ip(["link", "add", hostInterface, "type", "veth", "peer", "name", inside])
      try ip(["link", "set", inside, "netns", name])
      try ip(["addr", "add", hostAddress + "/30", "dev", hostInterface])
      try ip(["link", "set", hostInterface, "up"])
      try ip(["netns", "exec", name, Self.ip!, "addr", "add", address + "/30", "dev", inside])
      try ip(["netns", "exec", name, Self.ip!, "link", "set", inside, "up"])
      try ip(["netns", "exec", name, Self.ip!, "link", "set", "lo", "up"])
    } catch {
      remove()
      throw error
    }
  }

  /// Runs a command inside the namespace.
  var launcher: [String] { [Self.ip!, "netns", "exec", name] }

  /// The first process of a process-id namespace of its own inside this network namespace
  /// (`otherHost`), and its `unshare`; killed by `remove()`, which ends every process in it.
  /// It reaps nothing: a process that ends in there stays a zombie until then.
  private var pidNamespaceInit: Int32 = 0
  private var unsharePid: Int32 = 0

  /// Runs a command as on another host: inside this network namespace and a process-id
  /// namespace of its own, where no pid of this side means anything (a daemon `cortex start`
  /// leaves behind stays in it). Needs util-linux's `unshare` and `nsenter`.
  func otherHost() throws -> [String] {
    if pidNamespaceInit == 0 {
      let null = try FileDescriptor.open("/dev/null", .writeOnly)
      defer { null.close() }
      unsharePid = try Processes.spawn(
        launcher + ["unshare", "--pid", "--fork", "sleep", "100000"], environment: Environment.all(), stdin: nil, stdout: null,
        stderr: null, newProcessGroup: true)
      let deadline = Clock.monotonicMs() + 5000
      while pidNamespaceInit == 0 && Clock.monotonicMs() < deadline {
        // `ip netns exec` becomes `unshare`, whose child is the namespace's first process.
        pidNamespaceInit = Processes.all().first { $0.parent == unsharePid && $0.commandLine.first == "sleep" }?.pid ?? 0
        if pidNamespaceInit == 0 { sleepMs(20) }
      }
      guard pidNamespaceInit != 0 else { throw HarnessError(message: "unshare --pid started no process within 5 s") }
    }
    return ["nsenter", "--target", String(pidNamespaceInit), "--pid", "--net"]
  }

  func cut() throws { try ip(["link", "set", hostInterface, "down"]) }
  func heal() throws { try ip(["link", "set", hostInterface, "up"]) }

  /// Deletes the namespace (and with it the link's inner end, which takes the outer one along).
  func remove() {
    if pidNamespaceInit != 0 { _ = Processes.signal(pidNamespaceInit, Signal.kill) }
    if unsharePid != 0 {
      _ = Processes.signalGroup(unsharePid, Signal.kill)
      _ = Processes.wait(unsharePid)
    }
    _ = try? ip(["netns", "del", name])
    _ = try? ip(["link", "del", hostInterface])
  }

  @discardableResult
  private func ip(_ args: [String]) throws -> String { try Postgres.tool([Self.ip!] + args) }
}

/// Cluster tests with a second host: PostgreSQL listens over TCP on this side of a
/// `NetworkNamespace`'s link (and on its socket); a node started with `dsn: pg.tcpDSN,
/// launcher: net.launcher` runs on the other side. The link is healed before the nodes stop, and
/// the namespace removed after.
class ClusterOverANetworkTestCase: ClusterTestCase {
  var net: NetworkNamespace!

  override func setUpWithError() throws {
    net = try NetworkNamespace()
    pg = try Postgres(tcpAddress: net.hostAddress, trustedNetwork: net.network)
    try Postgres.tool([Cortex.binary, "cluster", "migrate", "--postgres", pg.dsn])
  }

  override func tearDown() {
    try? net?.heal()
    super.tearDown()
    net?.remove()
  }
}
