import CortexCore
import Posix
import XCTest

/// The packaged `cortex` is the statically linked client (Sources/CortexCLI/StaticClient.swift):
/// it runs the commands that only talk to the daemon and hands every other one to cortexd,
/// installed at `../lib/cortex/cortexd`. Here the client is linked the way `scripts/package` links
/// it, with `swiftc -static-executable`, from this build's own objects, and laid out beside a
/// copy of the debug binary as cortexd.
final class StaticClientTests: XCTestCase {
  func testTheStaticClientRunsTheDaemonsCommandsAndHandsTheRestToCortexd() throws {
    let c = try Cortex()
    defer { c.finish() }
    let (client, daemon) = try layOutStaticClient(in: c.scratch)
    func cortex(_ args: [String], timeoutS: Int64 = 60) throws -> (Int32, String) {
      try sh([client, "--dir", c.root] + args, environment: ["PATH=/usr/bin:/bin"], timeoutS: timeoutS)
    }
    let (v, version) = try sh([client, "--version"], environment: [])
    XCTAssertEqual(v, 0, version)
    XCTAssertEqual(version, c.run(raw: ["--version"]).out)

    // init and start are cortexd's: the daemon runs from it, not from the client.
    XCTAssertEqual(try cortex(["init", "--workers", "2", "--no-start"]).0, 0)
    let (started, startOut) = try cortex(["start"])
    XCTAssertEqual(started, 0, startOut)
    let pid = Int32(String(decoding: (try FileSystem.read(c.paths.root + "/daemon.pid")) ?? [], as: UTF8.self).trimmed) ?? 0
    XCTAssertGreaterThan(pid, 0)
    XCTAssertEqual(FileSystem.readLink("/proc/\(pid)/exe"), daemon)

    // The client's own commands work with cortexd gone; the others say where it should be.
    try FileSystem.rename(daemon, daemon + ".away")
    let (submitted, id) = try cortex(["submit", "-p", "--wait", "--", "/bin/true"])
    XCTAssertEqual(submitted, 0, id)
    XCTAssertTrue(id.hasPrefix("task-"), id)
    let (s, status) = try cortex(["status"])
    XCTAssertEqual(s, 0, status)
    XCTAssertTrue(status.contains("running, pid \(pid)"), status)
    let (l, list) = try cortex(["list"])
    XCTAssertEqual(l, 0, list)
    let task = String(id.prefix { !$0.isWhitespace })
    XCTAssertTrue(list.contains(task + "  succeeded"), "\(task) is not in the list as succeeded:\n\(list)")
    let (missing, why) = try cortex(["doctor"])
    XCTAssertEqual(missing, 1, why)
    XCTAssertTrue(
      why.contains("cortex doctor runs in cortexd") && why.contains(daemon) && why.contains("reinstall the package"), why)
    try FileSystem.rename(daemon + ".away", daemon)

    // A command that needs libpq reaches cortexd, which loads it and tries the server; the
    // static client alone would refuse to load it at all.
    let (cl, clusterOut) = try cortex(["cluster", "status", "--postgres", "postgresql://127.0.0.1:1/none?connect_timeout=2"])
    XCTAssertNotEqual(cl, 0, clusterOut)
    XCTAssertFalse(clusterOut.contains("statically linked client"), clusterOut)
    XCTAssertTrue(clusterOut.contains("127.0.0.1"), clusterOut)

    let (stopped, stopOut) = try cortex(["stop"])
    XCTAssertEqual(stopped, 0, stopOut)
  }

  /// Where there is no /proc (a chroot, a minimal sandbox) the static Swift runtime cannot find
  /// its own path and used to abort at start ("Unable to obtain Swift runtime path"); the C shim
  /// spares it that lookup there. As root only (chroot(2)); CI runs as root.
  func testTheStaticClientStartsWhereThereIsNoProc() throws {
    guard Processes.effectiveUserID == 0 else { throw XCTSkip("chroot needs root") }
    let scratch = try FileSystem.makeTemporaryDirectory(prefix: "cortex-static-")
    defer { FileSystem.removeTree(scratch) }
    let (client, _) = try layOutStaticClient(in: scratch)
    let root = scratch + "/root"
    for d in ["", "/usr", "/usr/bin", "/tmp"] { try FileSystem.makeDirectory(root + d) }
    let (_, copied) = try sh(["/bin/cp", client, root + "/usr/bin/cortex"], environment: [])
    XCTAssertEqual(copied, "")
    XCTAssertFalse(FileSystem.exists(root + "/proc/self/exe"))
    let (code, out) = try sh(["/usr/sbin/chroot", root, "/usr/bin/cortex", "--version"], environment: [])
    XCTAssertEqual(code, 0, out)
    XCTAssertEqual(out, try sh([Cortex.binary, "--version"], environment: []).1)
    // A command that reads its directory answers as it would anywhere (no daemon here).
    let (s, status) = try sh(["/usr/sbin/chroot", root, "/usr/bin/cortex", "--dir", "/tmp/c", "status"], environment: [])
    XCTAssertEqual(s, 69, status)
  }
}

extension XCTestCase {
  /// `INSTALL/bin/cortex` (static) and `INSTALL/lib/cortex/cortexd` (this build's binary).
  func layOutStaticClient(in scratch: String) throws -> (client: String, daemon: String) {
    let install = scratch + "/install"
    for d in ["", "/bin", "/lib", "/lib/cortex"] { try FileSystem.makeDirectory(install + d) }
    let client = install + "/bin/cortex", daemon = install + "/lib/cortex/cortexd"
    let objects = FileSystem.dirname(Cortex.binary) + "/cortex.product/Objects.LinkFileList"
    XCTAssertTrue(FileSystem.exists(objects), "no \(objects): `swift build` writes it")
    let path = Environment.get("PATH") ?? "/usr/bin:/bin"
    let (linked, out) = try sh(
      [
        "/usr/bin/env", "swiftc", "-static-executable", "-emit-executable", "-o", client, "@" + objects,
        "-Xlinker", "--defsym", "-Xlinker", "main=cortex_main",
      ], environment: ["PATH=" + path], timeoutS: 300)
    XCTAssertEqual(linked, 0, out)
    let (_, copied) = try sh(["/bin/cp", Cortex.binary, daemon], environment: [])
    XCTAssertEqual(copied, "")
    // No program interpreter: nothing but the kernel loads it.
    let (_, headers) = try sh(["/usr/bin/readelf", "-l", "-W", client], environment: ["PATH=/usr/bin:/bin"])
    XCTAssertFalse(headers.contains("INTERP"), "the client has a program interpreter:\n\(headers)")
    XCTAssertTrue(headers.contains("LOAD"), headers)
    return (client, daemon)
  }
}

/// In cluster mode the static client's own commands must not need libpq (it cannot load it):
/// each one, run by it against a node, works and never says it cannot load a library.
final class StaticClientClusterTests: ClusterTestCase {
  func testEveryCommandTheStaticClientRunsWorksAgainstAClusterNode() throws {
    let node = try startNode("solo", workers: 2)
    let (client, _) = try layOutStaticClient(in: node.scratch)
    func cortex(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
      let (code, out) = try sh([client, "--dir", node.root] + args, environment: ["PATH=/usr/bin:/bin"], file: file, line: line)
      XCTAssertEqual(code, 0, "cortex \(args.joined(separator: " ")): \(out)", file: file, line: line)
      XCTAssertFalse(out.contains("statically linked client"), "cortex \(args.joined(separator: " ")): \(out)", file: file, line: line)
      return out
    }
    let done = String(try cortex(["submit", "-p", "--wait", "--", "/bin/echo", "hello"]).prefix { !$0.isWhitespace })
    XCTAssertTrue(done.hasPrefix("task-"), done)
    let long = try cortex(["submit", "-p", "--", "/bin/sleep", "30"]).trimmed
    let held = try cortex(["submit", "-p", "--after", long, "--", "/bin/true"]).trimmed
    // Every command the static client runs itself (found by asking it with cortexd away: the
    // test fails when one is added and not run here).
    let runs: [(name: String, args: [String])] = [
      ("list", ["list"]), ("show", ["show", done]), ("wait", ["wait", done]), ("log", ["log", done]),
      ("tail", ["tail", "--task", done]), ("status", ["status"]), ("top", ["top", "--once"]), ("workers", ["workers"]),
      ("scale", ["scale", "3"]), ("edit", ["edit", held, "--priority", "high"]), ("cancel", ["cancel", held]),
      ("retry", ["retry", held]), ("kill", ["kill", long]), ("help", ["help", "submit"]),
      ("completions", ["completions", "bash"]), ("__complete", ["__complete", "task-ids"]),
    ]
    XCTAssertEqual(Set(runs.map(\.name) + ["submit"]), try staticCommands(client))
    for (name, args) in runs {
      let out = try cortex(args)
      if name == "log" { XCTAssertTrue(out.contains("hello"), out) }
      if name == "show" { XCTAssertTrue(out.contains(done), out) }
      if name == "__complete" { XCTAssertTrue(out.contains(done), out) }
    }
  }

  /// The commands `client` runs without cortexd: of those `cortex --help` lists and the hidden
  /// ones, each whose `--help` answers while cortexd is not where the client looks for it.
  func staticCommands(_ client: String) throws -> Set<String> {
    let daemon = FileSystem.dirname(FileSystem.dirname(client)) + "/lib/cortex/cortexd"
    try FileSystem.rename(daemon, daemon + ".away")
    defer { try? FileSystem.rename(daemon + ".away", daemon) }
    let (_, usage) = try sh([client, "--help"], environment: [])
    let listed = usage.split(separator: "\n").compactMap { l -> String? in
      guard l.hasPrefix("  "), let w = l.split(separator: " ").first else { return nil }
      return String(w)
    }
    XCTAssertTrue(listed.contains("submit") && listed.contains("cluster"), usage)
    var found = Set<String>()
    for name in listed + ["__complete", "daemon", "worker", "agent-run"] {
      let (code, out) = try sh([client, name, "--help"], environment: [])
      if code == 0 { found.insert(name) } else { XCTAssertTrue(out.contains("runs in cortexd"), "\(name): \(out)") }
    }
    return found
  }
}
