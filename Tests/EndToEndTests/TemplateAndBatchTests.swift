import CortexCore
import Posix
import XCTest

/// Issue 10, items 4, 8 and 12: template values never become shell syntax; `list` still knows
/// finished tasks after a restart; a batch member may depend on an earlier one.
final class TemplateAndBatchTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testHostileDescriptionsStayOneWordInShellAndArgvTemplates() throws {
    let out = c.scratch + "/said"
    let pwned = c.scratch + "/pwned"
    try c.initialize([
      (
        "worker_types",
        .object([
          ("say", .object([("shell", .string("printf '%s\\n' {description} >> \(out)"))])),
          (
            "argv",
            .object([
              (
                "command",
                .array([.string("sh"), .string("-c"), .string("printf '%s\\n' \"$1\" >> \(out)"), .string("x"), .string("{description}")])
              )
            ])
          ),
        ])
      )
    ])
    c.ok(["start", "--workers", "1"])
    let hostile = [
      "README; touch \(pwned)", "$(touch \(pwned))", "`touch \(pwned)`", "'; touch \(pwned); '", "\"; touch \(pwned); \"",
      "a\nb; touch \(pwned)", "it's \\'quoted\\' $HOME",
    ]
    for d in hostile {
      for type in ["say", "argv"] {
        let r = c.run(["submit", "--wait", "--type", type, "--description", d], timeoutS: 30)
        XCTAssertEqual(r.code, 0, "\(type) '\(d)': \(r.err)")
      }
    }
    XCTAssertFalse(FileSystem.exists(pwned), "a description ran as a command")
    let said = String(decoding: try FileSystem.read(out) ?? [], as: UTF8.self)
    XCTAssertEqual(said, hostile.flatMap { [$0, $0] }.joined(separator: "\n") + "\n")
  }

  func testAShellTemplateWithAQuotedPlaceholderIsRefused() throws {
    try c.initialize([("worker_types", .object([("bad", .object([("shell", .string("echo '{description}'"))]))]))])
    let r = c.run(["start", "--workers", "1"])
    XCTAssertNotEqual(r.code, 0)
    XCTAssertTrue(r.err.contains("worker_types.bad.shell") && r.err.contains("inside quotes"), r.err)
  }

  /// Found by a new user: a template's own braces (a shell's `${f}`, awk's `'{print $1}'`, a
  /// JavaScript object) were taken for placeholders, so such a type was refused at every submit,
  /// or refused at load when quoted, with no way to write it. Only {description} and {task_id}
  /// are filled; a misspelt one is still refused when the config is read.
  func testBracesOtherThanThePlaceholdersStayAsWritten() throws {
    let out = c.scratch + "/lines"
    try c.initialize([
      (
        "worker_types",
        .object([
          ("awk", .object([("shell", .string("for f in {description}; do echo ${f} {task_id} | awk '{print $2, $1}' >> \(out); done"))])),
          (
            "argv",
            .object([
              (
                "command",
                .array([.string("sh"), .string("-c"), .string("echo \"$0 $1\" >> \(out)"), .string("{a:1}"), .string("{description}")])
              )
            ])
          ),
        ])
      )
    ])
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--wait", "--type", "awk", "--description", "one"]).out.trimmed
    c.ok(["submit", "--wait", "--type", "argv", "--description", "two"])
    let lines = String(decoding: try FileSystem.read(out) ?? [], as: UTF8.self)
    XCTAssertEqual(lines, "\(id) one\n{a:1} two\n")
    c.ok(["stop"])
    try c.configure([("worker_types", .object([("typo", .object([("command", .array([.string("echo"), .string("{descripton}")]))]))]))])
    let r = c.run(["start", "--workers", "1"])
    XCTAssertNotEqual(r.code, 0)
    XCTAssertTrue(r.err.contains("worker_types.typo.command: {descripton} is not a placeholder; did you mean {description}?"), r.err)
  }

  /// A command that must hold the text `{description}` or `{task_id}` (a tool's own template
  /// syntax) writes it in doubled braces; before, both were always filled. Other doubled braces
  /// (a Go template's `{{.Name}}`) stay as written, in argv and shell templates alike.
  func testDoubledBracesAroundAPlaceholderAreItsText() throws {
    let out = c.scratch + "/lines"
    try c.initialize([
      (
        "worker_types",
        .object([
          (
            "argv",
            .object([
              (
                "command",
                .array([
                  .string("sh"), .string("-c"), .string("echo \"$0|$1|$2\" >> \(out)"), .string("{{description}}"),
                  .string("{description}"), .string("{{.Name}} {{task_id}}"),
                ])
              )
            ])
          ),
          ("sh", .object([("shell", .string("echo '{{description}}' {description} \"{{task_id}}\" >> \(out)"))])),
        ])
      )
    ])
    c.ok(["start", "--workers", "1"])
    c.ok(["submit", "--wait", "--type", "argv", "--description", "one"])
    c.ok(["submit", "--wait", "--type", "sh", "--description", "two"])
    let lines = String(decoding: try FileSystem.read(out) ?? [], as: UTF8.self)
    XCTAssertEqual(lines, "{description}|one|{{.Name}} {task_id}\n{description} two {task_id}\n")
  }

  func testListStillShowsFinishedTasksAfterARestart() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    for _ in 0..<3 { c.ok(["submit", "--wait", "--", "true"]) }
    c.ok(["submit", "--wait", "--", "false"], code: 1)
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])
    let v = try JSON.parse(Array(c.ok(["--json", "list", "--state", "succeeded"]).out.utf8))
    XCTAssertEqual(v.array?.count, 3, "\(v.encoded())")
    let all = try JSON.parse(Array(c.ok(["--json", "list"]).out.utf8))
    XCTAssertEqual(all.array?.compactMap { $0["state"]?.string }.sorted(), ["failed", "succeeded", "succeeded", "succeeded"])
    XCTAssertTrue(c.ok(["list"]).out.contains("task-000004"))
  }

  func testStopSaysWhatItWaitsForAndHowLong() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--shell", "sleep 30"]).out.trimmed
    c.eventually("the task runs") { c.events().contains { $0.type == "task.started" && $0.taskID == id } }
    let r = c.ok(["stop", "--timeout", "3"], timeoutS: 60)
    XCTAssertTrue(r.err.contains("waiting for 1 running task (\(id))"), r.err)
    XCTAssertTrue(r.err.contains("requeued in at most"), r.err)
    XCTAssertTrue(r.err.contains("daemon stopped"), r.err)
  }

  /// Past the timeout, a task that ignores SIGTERM is still there for kill_grace_s: the progress
  /// says it is being stopped, once, not "requeued in at most 0ms" every second.
  func testStopPastItsTimeoutSaysTheTasksAreBeingStopped() throws {
    try c.initialize([("kill_grace_s", .int(3))])
    c.ok(["start", "--workers", "1"])
    let id = c.ok(["submit", "-p", "--shell", "trap '' TERM; sleep 30"]).out.trimmed
    c.eventually("the task runs") { c.events().contains { $0.type == "task.started" && $0.taskID == id } }
    let r = c.ok(["stop", "--timeout", "1"], timeoutS: 60)
    XCTAssertFalse(r.err.contains("at most 0ms"), r.err)
    let past = r.err.components(separatedBy: "the timeout has passed; 1 task is being stopped and requeued (\(id))").count - 1
    XCTAssertEqual(past, 1, r.err)
  }

  func testABatchMemberMayDependOnAnEarlierOne() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    let flag = c.scratch + "/first-done"
    let batch = """
      {"shell": "sleep 0.3; touch \(flag)"}
      {"shell": "test -f \(flag)", "depends_on": ["#1"]}
      """
    let ids = c.ok(["submit", "--from", "-"], input: batch + "\n").out.split(separator: "\n").map(String.init)
    XCTAssertEqual(ids.count, 2)
    c.ok(["wait"] + ids, timeoutS: 30)
    let submitted = c.events().first { $0.type == "task.submitted" && $0.taskID == ids[1] }
    XCTAssertEqual(submitted?["spec"]?["depends_on"]?.array?.first?.string, ids[0])
    // Only earlier members: a forward reference is refused naming the field, and nothing is accepted.
    let r = c.run(["submit", "--from", "-"], input: "{\"shell\":\"true\",\"depends_on\":[\"#2\"]}\n{\"shell\":\"true\"}\n")
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("depends_on") && r.err.contains("#2"), r.err)
    XCTAssertEqual(c.events().filter { $0.type == "task.submitted" }.count, 2)
  }
}
