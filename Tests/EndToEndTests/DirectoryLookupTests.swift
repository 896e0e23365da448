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

extension DirectoryLookupTests {
  /// A working directory that was deleted: getcwd(3) fails, and the walk up from it (and, for
  /// init and start, the directory check's) spun forever at 100 % CPU: the parent of "." is ".".
  /// Every command now ends, saying so.
  func testADeletedWorkingDirectoryEndsTheWalk() throws {
    let c = try Cortex()
    defer { c.finish() }
    let gone = c.scratch + "/gone"
    try FileSystem.makeDirectories(gone, mode: 0o700)
    for (args, code) in [(["status"], Int32(69)), (["submit", "--", "true"], 69), (["tail"], 1), (["init", "--no-start"], 1)] {
      let out = c.scratch + "/out"
      let o = try FileDescriptor.open(out, [.writeOnly, .create, .truncate])
      let pid = try Processes.spawn(
        ["/bin/sh", "-c", "cd \(gone) && rmdir \(gone) && exec \(Cortex.binary) \(args.joined(separator: " "))"],
        environment: Environment.all().filter { !$0.hasPrefix("CORTEX_") }, stdin: nil, stdout: o, stderr: o, newProcessGroup: false)
      o.close()
      var status: ExitStatus?
      let deadline = Clock.monotonicMs() + 20_000
      while status == nil && Clock.monotonicMs() < deadline {
        status = Processes.reap(pid)?.status
        sleepMs(10)
      }
      if status == nil {
        _ = Processes.signal(pid, Signal.kill)
        _ = Processes.wait(pid)
      }
      let text = String(decoding: (try FileSystem.read(out)) ?? [], as: UTF8.self)
      XCTAssertEqual(status, .exited(code), "cortex \(args.joined(separator: " ")) in a deleted directory: \(text)")
      // init makes ./coordination, which cannot be: mkdir says why.
      XCTAssertTrue(text.contains(args[0] == "init" ? "No such file or directory" : "the working directory cannot be read"), text)
      try FileSystem.makeDirectories(gone, mode: 0o700)
    }
  }
}

/// A directory named by `$CORTEX_DIR` or `--dir` that holds no config.json, while the working
/// directory's project has its own: a CORTEX_DIR exported for another project, a relative one
/// read from a subdirectory, `--dir ../..`. Advice names the project's directory, never "start
/// it with" the named one, and `start` with such a CORTEX_DIR makes no second directory.
final class NamedDirectoryLookupTests: XCTestCase {
  func testANamedDirectoryWithoutConfigPointsAtTheWorkingDirectorysProject() throws {
    let c = try Cortex(rootName: "proj/coordination")
    defer { c.finish() }
    let project = c.scratch + "/proj"
    let deep = project + "/src"
    try FileSystem.makeDirectories(deep, mode: 0o700)
    XCTAssertEqual(c.run(raw: ["init", "--workers", "1", "--no-start"], directory: project).code, 0)

    // A relative CORTEX_DIR, read from a subdirectory: deep/coordination, which does not exist.
    let relative = c.run(raw: ["status"], directory: deep, environment: ["CORTEX_DIR=coordination"])
    XCTAssertEqual(relative.code, 69, relative.err)
    XCTAssertTrue(relative.err.contains("unset CORTEX_DIR (or set it to \(c.root))"), relative.err)
    XCTAssertFalse(relative.err.contains("start it with"), relative.err)
    let start = c.run(raw: ["start"], directory: deep, environment: ["CORTEX_DIR=coordination"])
    XCTAssertEqual(start.code, 64, start.err)
    XCTAssertTrue(start.err.contains("found from the working directory"), start.err)
    XCTAssertFalse(FileSystem.exists(deep + "/coordination"), "start made a second directory below the project")
    XCTAssertFalse(FileSystem.exists(c.paths.socket), "start started a daemon after all")

    // A CORTEX_DIR exported for somewhere else, which exists but is no Cortex directory.
    let other = c.scratch + "/other"
    try FileSystem.makeDirectories(other, mode: 0o700)
    let elsewhere = c.run(raw: ["submit", "--", "true"], directory: deep, environment: ["CORTEX_DIR=\(other)"])
    XCTAssertEqual(elsewhere.code, 69, elsewhere.err)
    XCTAssertTrue(elsewhere.err.contains("not running for \(other)"), elsewhere.err)
    XCTAssertTrue(elsewhere.err.contains("CORTEX_DIR=\(other) holds no config.json, but \(c.root)"), elsewhere.err)
    XCTAssertFalse(elsewhere.err.contains("start it with"), elsewhere.err)
    let tail = c.run(raw: ["tail"], directory: deep, environment: ["CORTEX_DIR=\(other)"])
    XCTAssertTrue(tail.err.contains("set it to \(c.root)"), tail.err)

    // --dir naming a parent of the project: the advice names the project's directory.
    let parent = c.run(raw: ["--dir", "../..", "status"], directory: deep)
    XCTAssertEqual(parent.code, 69, parent.err)
    XCTAssertTrue(parent.err.contains("use --dir \(c.root)"), parent.err)
    XCTAssertFalse(parent.err.contains("start it with"), parent.err)

    // A file is no directory: say so, and never suggest starting a daemon "in" it.
    let file = c.scratch + "/afile"
    try FileSystem.writeAtomically(file, Array("x".utf8), durable: false)
    let notDir = c.run(raw: ["status"], directory: deep, environment: ["CORTEX_DIR=\(file)"])
    XCTAssertEqual(notDir.code, 69, notDir.err)
    XCTAssertTrue(notDir.err.contains("\(file) ($CORTEX_DIR) is not a directory"), notDir.err)
    XCTAssertTrue(notDir.err.contains("CORTEX_DIR=\(c.root)"), notDir.err)
    XCTAssertFalse(notDir.err.contains("start it with"), notDir.err)

    // Outside any project, a named directory that does not exist: starting makes it; said so.
    let lonely = c.scratch + "/lonely"
    try FileSystem.makeDirectories(lonely, mode: 0o700)
    let missing = c.run(raw: ["status"], directory: lonely, environment: ["CORTEX_DIR=\(c.scratch)/nope"])
    XCTAssertEqual(missing.code, 69, missing.err)
    let nope = c.scratch + "/nope"
    XCTAssertTrue(
      missing.err.contains("CORTEX_DIR=\(nope) does not exist yet; start it with: cortex start --dir \(nope) (which makes it)"), missing.err
    )

    // The project's own directory still starts from below it, with CORTEX_DIR unset.
    XCTAssertEqual(c.run(raw: ["start"], directory: deep).code, 0)
    XCTAssertTrue(FileSystem.exists(c.paths.socket))
    c.ok(["stop"])
  }
}
