import CortexCore
import Posix
import XCTest

/// The Debian package's layout, made by `scripts/make-deb` from the debug binary (the release
/// build `scripts/package` uses takes minutes; it runs the same layout through a chroot itself):
/// extracted with `dpkg -x`, the binary runs with an empty environment, and the man page,
/// completions and systemd units are where Debian looks for them.
final class PackageTests: XCTestCase {
  func testDebianPackageLayoutAndTheExtractedBinaryInAnEmptyEnvironment() throws {
    let c = try Cortex()
    defer { c.finish() }
    let path = ["PATH=/usr/bin:/bin"]
    // Uncompressed: xz on a debug binary costs most of a minute on a busy machine. The client is
    // the static one scripts/package makes (StaticClientTests), cortexd the test's binary.
    let (client, _) = try layOutStaticClient(in: c.scratch)
    let (made, deb) = try sh(
      ["/bin/bash", HelpTests.repo + "/scripts/make-deb", Cortex.binary, c.scratch + "/dist", client],
      environment: path + ["CORTEX_DEB_COMPRESSION=none"])
    XCTAssertEqual(made, 0, deb)
    let debPath = deb.trimmed
    let version = c.run(raw: ["--version"]).out.trimmed.split(separator: " ").last.map(String.init) ?? "?"
    XCTAssertEqual(debPath, c.scratch + "/dist/cortex_\(version)_amd64.deb")

    let (infoCode, info) = try sh(["/usr/bin/dpkg-deb", "--field", debPath, "Package", "Version", "Architecture"], environment: path)
    XCTAssertEqual(infoCode, 0, info)
    XCTAssertEqual(info, "Package: cortex\nVersion: \(version)\nArchitecture: amd64\n")
    // The units' ExecReload= runs /bin/kill (procps), postinst useradd (passwd): neither is Essential.
    let (_, depends) = try sh(["/usr/bin/dpkg-deb", "--field", debPath, "Depends"], environment: path)
    let needs = Set(depends.split(separator: ",").map { $0.split(separator: " ").first.map(String.init) ?? "" })
    XCTAssertTrue(needs.isSuperset(of: ["libc6", "procps", "passwd"]), "Depends: \(depends)")

    let root = c.scratch + "/root"
    let (x, xOut) = try sh(["/usr/bin/dpkg", "-x", debPath, root], environment: path)
    XCTAssertEqual(x, 0, xOut)
    for f in [
      "/usr/bin/cortex", "/usr/lib/cortex/cortexd", "/usr/share/man/man1/cortex.1.gz", "/usr/share/bash-completion/completions/cortex",
      "/usr/share/zsh/vendor-completions/_cortex", "/usr/share/fish/vendor_completions.d/cortex.fish",
      "/lib/systemd/system/cortex.service", "/usr/lib/systemd/user/cortex.service", "/usr/share/doc/cortex/README.md",
      // Debian Policy 12.5 and 12.7 (lintian: no-copyright-file, no-changelog).
      "/usr/share/doc/cortex/copyright", "/usr/share/doc/cortex/changelog.gz", "/usr/share/lintian/overrides/cortex",
    ] {
      XCTAssertTrue(FileSystem.exists(root + f), "the package has no \(f)")
    }
    // The binaries go in without their debug sections (the symbols stay, for backtraces).
    for binary in ["/usr/bin/cortex", "/usr/lib/cortex/cortexd"] {
      let (_, sections) = try sh(["/usr/bin/readelf", "-S", "-W", root + binary], environment: path)
      XCTAssertTrue(sections.contains(".symtab"), sections)
      XCTAssertFalse(sections.contains(".debug_info"), "the packaged \(binary) keeps its debug sections")
    }
    let (_, man) = try sh(["/bin/sh", "-c", "gzip -dc \(root)/usr/share/man/man1/cortex.1.gz"], environment: path)
    XCTAssertTrue(man.contains(".TH CORTEX 1"), "not a man page")
    XCTAssertTrue(man.contains(".SS submit"), "the man page has no submit section")
    let (_, changelog) = try sh(["/bin/sh", "-c", "gzip -dc \(root)/usr/share/doc/cortex/changelog.gz"], environment: path)
    XCTAssertTrue(changelog.hasPrefix("cortex (\(version)) unstable; urgency=medium\n"), "not a changelog of this version: \(changelog)")

    let unit = String(decoding: (try FileSystem.read(root + "/lib/systemd/system/cortex.service")) ?? [], as: UTF8.self)
    for line in [
      // KillMode=process: with mixed, systemd SIGKILLs every worker and task when the daemon
      // dies, before Restart= starts the one that would re-adopt them.
      "Type=notify", "KillMode=process", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/cortex",
      "ExecStart=/usr/bin/cortex --dir /var/lib/cortex daemon", "WatchdogSec=",
    ] {
      XCTAssertTrue(unit.split(separator: "\n").contains { $0.hasPrefix(line) }, "cortex.service lacks \(line)")
    }
    let user = String(decoding: (try FileSystem.read(root + "/usr/lib/systemd/user/cortex.service")) ?? [], as: UTF8.self)
    XCTAssertTrue(user.contains("Type=notify") && user.contains("ExecStart=/usr/bin/cortex --dir %h/.local/state/cortex daemon"), user)
    XCTAssertTrue(user.split(separator: "\n").contains("KillMode=process"), user)

    try assertSystemdAnalyzeVerifies(root: root, scratch: c.scratch)

    // The extracted binary, with nothing in its environment: a whole round trip.
    let bin = root + "/usr/bin/cortex"
    let (v, vOut) = try sh(["/usr/bin/env", "-i", bin, "--version"], environment: [])
    XCTAssertEqual(v, 0, vOut)
    XCTAssertEqual(vOut, "cortex \(version)\n")
    for args in [["init", "--workers", "2", "--no-start"], ["start"], ["submit", "--wait", "--", "/bin/true"], ["stop"]] {
      let (code, out) = try sh(["/usr/bin/env", "-i", bin, "--dir", c.root] + args, environment: [])
      XCTAssertEqual(code, 0, "cortex \(args.joined(separator: " ")) from the package: \(out)")
      if args == ["start"] {
        let pid = String(decoding: (try FileSystem.read(c.root + "/daemon.pid")) ?? [], as: UTF8.self).trimmed
        XCTAssertEqual(FileSystem.readLink("/proc/\(pid)/exe"), root + "/usr/lib/cortex/cortexd", "the daemon is not cortexd")
      }
    }
  }

  /// `systemd-analyze verify` (Debian's `systemd` package; it needs no running systemd) on both
  /// units as the package holds them, and fails on any message: an unknown key or a bad value is
  /// only a warning to systemd (exit 0), and the unit would start without it. The units name
  /// /usr/bin/cortex, which verify requires to exist; a copy of each names the extracted binary
  /// instead, and `Documentation=man:cortex(1)` is looked up in the extracted man pages.
  func assertSystemdAnalyzeVerifies(root: String, scratch: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let analyze = "/usr/bin/systemd-analyze"
    guard FileSystem.exists(analyze) else {
      XCTFail("\(analyze) is missing: apt-get install systemd (.ci/run does); the units are not verified", file: file, line: line)
      return
    }
    let runtime = scratch + "/xdg-runtime"  // the user manager's verify needs $XDG_RUNTIME_DIR
    try FileSystem.makeDirectory(runtime, mode: 0o700)
    for (unit, user) in [("/lib/systemd/system/cortex.service", false), ("/usr/lib/systemd/user/cortex.service", true)] {
      let text = String(decoding: (try FileSystem.read(root + unit)) ?? [], as: UTF8.self)
      let binary = "ExecStart=/usr/bin/cortex "
      XCTAssertTrue(text.contains(binary), "\(unit) does not start /usr/bin/cortex", file: file, line: line)
      let copy = text.split(separator: "\n", omittingEmptySubsequences: false).map { l in
        l.hasPrefix(binary) ? "ExecStart=\(root)/usr/bin/cortex " + l.dropFirst(binary.count) : String(l)
      }
      let dir = scratch + (user ? "/verify-user" : "/verify-system")
      try FileSystem.makeDirectory(dir)
      try FileSystem.writeAtomically(dir + "/cortex.service", Array(copy.joined(separator: "\n").utf8), durable: false, mode: 0o644)
      let (code, out) = try sh(
        [analyze] + (user ? ["--user"] : []) + ["verify", dir + "/cortex.service"],
        environment: ["PATH=/usr/bin:/bin", "MANPATH=\(root)/usr/share/man", "XDG_RUNTIME_DIR=\(runtime)", "SYSTEMD_LOG_COLOR=0"])
      XCTAssertEqual(code, 0, "systemd-analyze verify \(unit): \(out)", file: file, line: line)
      XCTAssertEqual(out, "", "systemd-analyze verify \(unit) has something to say", file: file, line: line)
    }
  }
}
