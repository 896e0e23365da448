import CortexCore
import Posix
import XCTest

/// A real PostgreSQL from Debian's `postgresql` package, started for one test in a temporary
/// directory (data and Unix socket there; TCP only on an address asked for), as the `postgres`
/// user when the tests run as root. `.ci/run` installs the package; a machine without it fails the test with the remedy
/// rather than skipping it.
final class Postgres {
  let dir: String
  let port: Int
  /// The address it also listens on over TCP (trusting `trustedNetwork`), if any.
  let tcpAddress: String?
  private(set) var pid: Int32 = 0
  /// The server's binaries; on a machine without them, as root, Debian's package is installed once
  /// (what `.ci/run` does first), so the README's test command needs only the Swift toolchain.
  static let bin: String? = {
    if find() == nil, Processes.effectiveUserID == 0, FileSystem.exists("/usr/bin/apt-get") {
      _ = try? tool(["sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql"])
    }
    return find()
  }()

  static func find() -> String? {
    guard let versions = try? FileSystem.list("/usr/lib/postgresql") else { return nil }
    for v in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) where FileSystem.exists("/usr/lib/postgresql/\(v)/bin/initdb") {
      return "/usr/lib/postgresql/\(v)/bin"
    }
    return nil
  }

  /// The DSN for the superuser `cortex` over the socket.
  var dsn: String { "postgresql:///postgres?host=\(dir)&port=\(port)&user=cortex" }
  /// The DSN for `cortex` over TCP (`init(tcpAddress:)`).
  var tcpDSN: String { "postgresql://cortex@\(tcpAddress ?? "127.0.0.1"):\(port)/postgres" }
  func dsn(user: String, password: String) -> String {
    "postgresql:///postgres?host=\(dir)&port=\(port)&user=\(user)&password=\(password)"
  }

  /// `tcpAddress`: also listen on this address over TCP, trusting clients from `trustedNetwork`
  /// (CIDR), e.g. the host's end of a network namespace's link (`NetworkNamespace`).
  init(tcpAddress: String? = nil, trustedNetwork: String? = nil) throws {
    self.tcpAddress = tcpAddress
    guard let bin = Self.bin else {
      throw HarnessError(message: "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql")
    }
    dir = try FileSystem.makeTemporaryDirectory(prefix: "cortex-pg-")
    port = try freeTCPPort()
    let asRoot = Processes.effectiveUserID == 0
    if asRoot { try Self.tool(["chown", "postgres", dir]) }
    let prefix = asRoot ? ["runuser", "-u", "postgres", "--"] : []
    try Self.tool(prefix + [bin + "/initdb", "-D", dir + "/data", "-A", "trust", "-U", "cortex", "--no-sync", "-E", "UTF8"])
    // One role that must give a password, for the wrong-password test; everyone else is trusted.
    let tcp = trustedNetwork.map { "host all all \($0) trust\n" } ?? ""
    try FileSystem.writeAtomically(
      dir + "/data/pg_hba.conf", Array("local all pwuser scram-sha-256\nlocal all all trust\n\(tcp)".utf8), durable: false)
    if asRoot { try Self.tool(["chown", "postgres", dir + "/data/pg_hba.conf"]) }
    try start()
  }

  /// Starts the server on the existing data directory and waits for its socket.
  func start() throws {
    let asRoot = Processes.effectiveUserID == 0
    let prefix = asRoot ? ["runuser", "-u", "postgres", "--"] : []
    let log = try FileDescriptor.open(dir + "/server.log", [.writeOnly, .create, .append], mode: 0o666)
    defer { log.close() }
    pid = try Processes.spawn(
      prefix + [Self.bin! + "/postgres", "-D", dir + "/data", "-k", dir, "-p", String(port), "-c", "listen_addresses=\(tcpAddress ?? "")"],
      environment: Environment.all(), stdin: nil, stdout: log, stderr: log, newProcessGroup: true)
    let deadline = Clock.monotonicMs() + 30_000
    while (try? Self.tool([Self.bin! + "/pg_isready", "-q", "-h", dir, "-p", String(port)])) == nil {
      if Clock.monotonicMs() > deadline || !Processes.isAlive(pid) {
        let text = String(decoding: ((try? FileSystem.read(dir + "/server.log")) ?? nil) ?? [], as: UTF8.self)
        stop()
        throw HarnessError(message: "PostgreSQL did not start within 30 s: \(text)")
      }
      sleepMs(50)
    }
  }

  /// Stops the server (fast shutdown) but keeps its data, for `start()` again.
  func pause() {
    guard Processes.isAlive(pid) else { return }
    _ = Processes.signalGroup(pid, Signal.int)
    let deadline = Clock.monotonicMs() + 20_000
    while Processes.reap(pid) == nil && Clock.monotonicMs() < deadline { sleepMs(20) }
    if Processes.isAlive(pid) {
      _ = Processes.signalGroup(pid, Signal.kill)
      _ = Processes.wait(pid)
    }
  }

  /// Runs SQL as the superuser with psql; returns its output (fails the test on an error).
  @discardableResult
  func psql(_ sql: String) throws -> String {
    try Self.tool([Self.bin! + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql])
  }

  /// Stops the server (fast shutdown) and removes its directory.
  func stop() {
    pause()
    FileSystem.removeTree(dir)
  }

  /// Runs a command to completion; throws with its output when it fails.
  @discardableResult
  static func tool(_ argv: [String]) throws -> String {
    let out = try FileSystem.makeTemporaryDirectory(prefix: "cortex-tool-")
    defer { FileSystem.removeTree(out) }
    let o = try FileDescriptor.open(out + "/out", [.writeOnly, .create, .truncate])
    let pid = try Processes.spawn(argv, environment: Environment.all(), stdin: nil, stdout: o, stderr: o, newProcessGroup: false)
    o.close()
    let status = Processes.wait(pid)
    let text = String(decoding: try FileSystem.read(out + "/out") ?? [], as: UTF8.self)
    guard case .exited(0) = status else {
      throw HarnessError(message: "\(argv.joined(separator: " ")) failed: \(text)")
    }
    return text
  }
}
