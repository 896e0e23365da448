import CortexCore
import Posix
import XCTest

/// A working directory whose name is not UTF-8 (byte 0xff): read as text it became U+FFFD, so
/// `cortex --dir coordination start` made a second directory, `bad\u{FFFD}dir`, beside the one
/// the user was in and started a daemon there, and `status` pointed at that one. Every command
/// that finds its directory from the working directory now refuses, naming the directory and
/// what to do; with an absolute `--dir` the commands work, and a task is not given the working
/// directory as its cwd (it named a directory that does not exist).
final class NonUTF8DirectoryTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() {
    // Removed by name through a shell (read back as text its name no longer names it), once no
    // run goes through the shell that makes it.
    c?.launcher = []
    if let c { _ = try? sh(["/bin/sh", "-c", #"rm -rf -- "$1"/bad*"#, "sh", c.scratch], environment: []) }
    c?.finish()
  }

  func testARelativeDirectoryFromANonUTF8WorkingDirectoryIsRefusedNamingIt() throws {
    // Every run goes through a shell that makes the directory and enters it.
    c.launcher = ["/bin/sh", "-c", #"d="$(printf '%s/bad\377dir' "$NONUTF8_BASE")" && mkdir -p "$d" && cd "$d" && exec "$@""#, "sh"]
    c.environment = ["NONUTF8_BASE=\(c.scratch)"]
    let named = #"the working directory \#(c.scratch)/bad\xffdir is not valid UTF-8"#
    let cases: [([String], String)] = [
      (["--dir", "coordination", "status"], "so --dir 'coordination', a relative path, cannot be found from it"),
      (["--dir", "coordination", "start"], "so --dir 'coordination', a relative path, cannot be found from it"),
      (["--dir", "coordination", "init"], "so --dir 'coordination', a relative path, cannot be found from it"),
      (["status"], "so the coordination directory cannot be found from it"),
      (["init", "--no-start"], "so the coordination directory cannot be found from it"),
      (["--json", "submit", "--", "true"], "so the coordination directory cannot be found from it"),
    ]
    for (args, what) in cases {
      let r = c.run(raw: args)
      XCTAssertEqual(r.code, 64, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains(named) && r.err.contains(what), "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("give --dir (or CORTEX_DIR) an absolute UTF-8 path"), "\(args): \(r.err)")
    }
    let relativeEnv = c.run(raw: ["list"], environment: ["CORTEX_DIR=coordination"])
    XCTAssertEqual(relativeEnv.code, 64, relativeEnv.err)
    XCTAssertTrue(relativeEnv.err.contains("so CORTEX_DIR 'coordination', a relative path, cannot be found"), relativeEnv.err)
    // Nothing was made beside the directory (read back as text, its name has a U+FFFD too).
    let made = try FileSystem.list(c.scratch).filter { $0.hasPrefix("bad") }
    XCTAssertEqual(made.count, 1, "a second directory was made: \(made)")
    // Commands that need no directory still run there.
    XCTAssertEqual(c.run(raw: ["help"]).code, 0)

    // With an absolute --dir the daemon runs; a task that would get the working directory as
    // its cwd is refused naming it, one given an absolute --cwd (or running nothing) is not.
    c.ok(["init", "--no-start"])
    c.ok(["start", "--workers", "1"])
    let task = c.run(["submit", "--", "true"])
    XCTAssertEqual(task.code, 65, task.err)
    XCTAssertTrue(task.err.contains("cwd: \(named)") && task.err.contains("give --cwd an absolute UTF-8 path"), task.err)
    let batch = c.run(["submit", "--from", "-"], input: #"{"shell":"pwd"}"# + "\n")
    XCTAssertEqual(batch.code, 65, batch.err)
    let relative = c.run(["submit", "--cwd", ".", "--", "true"])
    XCTAssertEqual(relative.code, 65, relative.err)
    XCTAssertTrue(relative.err.contains("the relative cwd '.'"), relative.err)
    c.ok(["submit", "--wait", "--cwd", c.scratch, "--", "true"], timeoutS: 30)
    c.ok(["submit", "--wait", "--synthetic", "1"], timeoutS: 30)
    c.ok(["submit", "--from", "-"], input: #"{"synthetic":{"duration_ms":1}}"# + "\n")
    XCTAssertEqual(c.events().filter { $0.type == "task.submitted" }.count, 3)
  }
}
