import CortexCore
import Foundation
import Posix
import XCTest

/// Issue 10, items 2 and 7: secret values never reach the log, snapshots, task files or answers,
/// and every attempt still gets them intact, also after `kill -9` and a restart; the submitter's
/// environment is passed on with the same care.
final class SecretsTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  static let byName = "s3cr3t-by-name-0042"
  static let inURL = "hunter2pass"
  static let bearer = "abcdefghijklmnop123456"
  static let skKey = "sk-proj-ZYXWVUTSRQPONMLK9876"

  func testSecretsStayOutOfEveryFileAndAnswerAndSurviveKill9() throws {
    try c.initialize([("orphan_timeout_s", .double(0.05))])  // no re-adoption: the tasks run again
    c.ok(["start", "--workers", "2"])
    let out = c.scratch + "/seen"
    try FileSystem.makeDirectory(out)
    // By name (API_KEY), by content in an env value (a URL's password), in argv (a bearer token),
    // and in a shell string (a well-known key prefix).
    let a = c.ok([
      "submit", "-p", "--env", "API_KEY=\(Self.byName)", "--env", "DATABASE_URL=postgres://u:\(Self.inURL)@db.internal/x",
      "--", "sh", "-c", "printf '%s|%s|%s' \"$API_KEY\" \"$DATABASE_URL\" \"$1\" > \(out)/a.$CORTEX_ATTEMPT; sleep 30", "x",
      "Authorization: Bearer \(Self.bearer)",
    ]).out.trimmed
    let b = c.ok(["submit", "-p", "--shell", "echo \(Self.skKey) > \(out)/b.$CORTEX_ATTEMPT; sleep 30"]).out.trimmed
    c.eventually("both tasks ran once") { FileSystem.exists(out + "/a.1") && FileSystem.exists(out + "/b.1") }

    // kill -9; the workers stop their tasks at once (orphan_timeout_s is tiny here, so nothing is
    // re-adopted); the restarted daemon re-runs both.
    let pid = try XCTUnwrap(c.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the old daemon's processes are gone") { c.leftovers.allSatisfy { $0.isZombie } }
    c.ok(["start", "--workers", "2"])
    // The shell creates each file before it writes to it: wait for what was written, not the name.
    func written(_ name: String) -> Bool { ((try? FileSystem.read(out + "/" + name))?.count ?? 0) > 0 }
    c.eventually("both tasks ran again after the restart") { written("a.2") && written("b.2") }
    let seenA = String(decoding: try FileSystem.read(out + "/a.2") ?? [], as: UTF8.self)
    XCTAssertEqual(seenA, "\(Self.byName)|postgres://u:\(Self.inURL)@db.internal/x|Authorization: Bearer \(Self.bearer)")
    XCTAssertEqual(String(decoding: try FileSystem.read(out + "/b.2") ?? [], as: UTF8.self), Self.skKey + "\n")

    // Every answer is redacted.
    var answers = c.ok(["--json", "show", a]).out + c.ok(["--json", "show", b]).out + c.ok(["--json", "list"]).out
    answers += c.ok(["tail", "--json"]).out
    XCTAssertTrue(answers.contains("[redacted]"), answers)
    c.ok(["cancel", a, b])
    c.ok(["stop", "--timeout", "5"], timeoutS: 60)
    answers += try allFiles(except: ["secrets.jsonl"])
    for secret in [Self.byName, Self.inURL, Self.bearer, Self.skKey] {
      XCTAssertFalse(answers.contains(secret), "\(secret) leaked into a file or an answer")
    }
    // The store is owner-only, and after the tasks ended it is emptied at the next start.
    let mode = try FileManager.default.attributesOfItem(atPath: c.paths.secrets)[.posixPermissions] as? Int
    XCTAssertEqual(mode, 0o600)
    c.ok(["start", "--workers", "1"])
    XCTAssertEqual(try FileSystem.read(c.paths.secrets)?.count ?? -1, 0, "finished tasks' secrets were kept")
  }

  func testATaskWhoseSecretsAreLostFailsRatherThanRunWithRedactedValues() throws {
    try c.initialize([("orphan_timeout_s", .double(0.05))])  // no re-adoption: the tasks run again
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--shell", "sleep 30"])
    let id = c.ok(["submit", "-p", "--env", "GITHUB_TOKEN=ghp_abcdefghijklmnopqrstuvwx", "--", "true"]).out.trimmed
    let pid = try XCTUnwrap(c.daemonPID)
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the old daemon's processes are gone") { c.leftovers.allSatisfy { $0.isZombie } }
    try FileSystem.remove(c.paths.secrets)
    c.ok(["start", "--workers", "1"])
    let r = c.run(["wait", id], timeoutS: 30)
    XCTAssertNotEqual(r.code, 0)
    let failed = c.events().last { $0.taskID == id && $0.type == "task.failed" }
    XCTAssertEqual(failed?["reason"]?.string, "secret_unavailable", "\(c.events().filter { $0.taskID == id })")
  }

  func testTheSubmittersEnvironmentIsPassedOnUnlessNoEnv() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let out = c.scratch + "/env"
    let script = "printf '%s|%s' \"$FROM_SUBMITTER\" \"$OVERRIDDEN\" > \(out).$CORTEX_TASK_ID"
    let env = ["FROM_SUBMITTER=hello world", "OVERRIDDEN=from-env", "DEPLOY_PASSWORD=pa55word-xyz"]
    let a = try runWith(env, ["submit", "-p", "--wait", "--env", "OVERRIDDEN=from-flag", "--shell", script])
    XCTAssertEqual(a.code, 0, a.err)
    let b = try runWith(env, ["submit", "-p", "--wait", "--no-env", "--shell", script])
    XCTAssertEqual(b.code, 0, b.err)
    XCTAssertEqual(String(decoding: try FileSystem.read("\(out).\(a.out.trimmed)") ?? [], as: UTF8.self), "hello world|from-flag")
    XCTAssertEqual(String(decoding: try FileSystem.read("\(out).\(b.out.trimmed)") ?? [], as: UTF8.self), "|")
    XCTAssertFalse(try allFiles(except: ["secrets.jsonl"]).contains("pa55word-xyz"))
  }

  func testBadCwdAndNULBytesAreRefusedAtSubmitNamingTheField() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    var r = c.run(["submit", "--cwd", c.scratch + "/nowhere", "--", "true"])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("cwd") && r.err.contains("does not exist"), r.err)
    r = c.run(["submit", "--from", "-"], input: "{\"command\":[\"true\"],\"cwd\":\"/nonexistent-dir-xyz\"}\n")
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("cwd"), r.err)
    for (line, field) in [
      (#"{"op":"submit","tasks":[{"command":["echo","a\u0000b"]}]}"#, "command[1]"),
      (#"{"op":"submit","tasks":[{"shell":"echo a\u0000b"}]}"#, "shell"),
      (#"{"op":"submit","tasks":[{"command":["true"],"env":{"K":"v\u0000w"}}]}"#, "env.K"),
      (#"{"op":"submit","tasks":[{"command":["true"],"cwd":"/tmp\u0000x"}]}"#, "cwd"),
    ] {
      let reply = try c.rawRequest(line)
      XCTAssertEqual(reply["code"]?.int, 65, reply.encoded())
      XCTAssertTrue((reply["error"]?.string ?? "").contains(field), "\(line): \(reply.encoded())")
    }
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" })
  }

  // MARK: helpers

  /// The text of every file under the directory (but `except`), plus the daemon's own log.
  func allFiles(except: Set<String>) throws -> String {
    var text = ""
    func walk(_ dir: String) {
      for name in (try? FileSystem.list(dir)) ?? [] where !except.contains(name) {
        let p = dir + "/" + name
        if FileSystem.isDirectory(p) {
          walk(p)
        } else if !name.hasSuffix(".sock") && !name.hasPrefix("worker-") && name != "hot-state.mmap" {
          text += String(decoding: ((try? FileSystem.read(p)) ?? nil) ?? [], as: UTF8.self)
        }
      }
    }
    walk(c.root)
    return text
  }

  /// Runs `cortex --dir ROOT ARGS` with extra environment variables.
  func runWith(_ extra: [String], _ args: [String]) throws -> Cortex.Run {
    let outPath = c.scratch + "/o-\(Clock.monotonicNs())"
    let errPath = outPath + ".err"
    let o = try FileDescriptor.open(outPath, [.writeOnly, .create, .truncate])
    let e = try FileDescriptor.open(errPath, [.writeOnly, .create, .truncate])
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_") } + ["NO_COLOR=1"] + extra
    let pid = try Processes.spawn(
      [Cortex.binary, "--dir", c.root] + args, environment: env, stdin: nil, stdout: o, stderr: e, newProcessGroup: false)
    o.close()
    e.close()
    guard let status = Processes.wait(pid) else { throw HarnessError(message: "cannot wait for cortex") }
    let code: Int32
    switch status {
    case .exited(let x): code = x
    case .signaled(let s): code = 128 + s
    }
    return Cortex.Run(
      code: code, out: String(decoding: try FileSystem.read(outPath) ?? [], as: UTF8.self),
      err: String(decoding: try FileSystem.read(errPath) ?? [], as: UTF8.self))
  }
}
