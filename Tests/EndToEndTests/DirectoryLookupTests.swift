import CortexCore
import Posix
import XCTest

/// Without --dir or $CORTEX_DIR, commands find the project's coordination/ by walking up from the
/// working directory (as git finds .git), and the advice for a daemon that is not running never
/// points at a second directory below the project.
final class DirectoryLookupTests: XCTestCase {
  func testCommandsBelowTheProjectFindItsDirectory() throws {
    let c = try Cortex(rootName: "proj/coordination")
    defer { c.finish() }
    let project = c.scratch + "/proj"
    let deep = project + "/src/module"
    try FileSystem.makeDirectories(deep, mode: 0o700)

    let made = c.run(raw: ["--json", "init", "--workers", "2", "--no-start"], directory: project)
    XCTAssertEqual(made.code, 0, made.err)
    XCTAssertEqual(try JSON.parse(Array(made.out.utf8))["dir"]?.string, c.root)

    // Not running yet: the advice names the project's directory, found from two levels below.
    let down = c.run(raw: ["status"], directory: deep)
    XCTAssertEqual(down.code, 69, down.err)
    XCTAssertTrue(down.err.contains("start it with: cortex start --dir \(c.root)"), down.err)
    XCTAssertFalse(down.err.contains(deep + "/coordination"), down.err)

    XCTAssertEqual(c.run(raw: ["start"], directory: deep).code, 0)
    XCTAssertTrue(FileSystem.exists(c.paths.socket), "the daemon does not serve \(c.root)")
    XCTAssertFalse(FileSystem.exists(deep + "/coordination"), "start below the project made a second directory")
    let sub = c.run(raw: ["submit", "-p", "--wait", "--", "true"], directory: deep)
    XCTAssertEqual(sub.code, 0, sub.err)
    XCTAssertTrue(sub.out.hasPrefix("task-"), sub.out)

    // $CORTEX_DIR wins over the walk: an empty directory elsewhere has no daemon.
    let other = c.scratch + "/elsewhere"
    let env = c.run(raw: ["submit", "--", "true"], directory: deep, environment: ["CORTEX_DIR=\(other)"])
    XCTAssertEqual(env.code, 69, env.err)
    XCTAssertTrue(env.err.contains("not running for \(other)"), env.err)
  }

  func testNoDirectoryAnywhereSaysWhereItLooked() throws {
    let c = try Cortex()
    defer { c.finish() }
    let lonely = c.scratch + "/a/b"
    try FileSystem.makeDirectories(lonely, mode: 0o700)
    for args in [["status"], ["submit", "--", "true"], ["list"]] {
      let r = c.run(raw: args, directory: lonely)
      XCTAssertEqual(r.code, 69, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("none in \(lonely) or any parent directory"), "\(args): \(r.err)")
      XCTAssertFalse(r.err.contains("--dir \(lonely)"), "\(args) suggests a daemon in a directory that does not exist: \(r.err)")
    }
    XCTAssertFalse(FileSystem.exists(lonely + "/coordination"), "a read-only command created a directory")
  }
}
