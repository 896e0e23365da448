import CortexCore
import XCTest

/// A worker type's template: `{description}` and `{task_id}` are filled, `{{description}}` and
/// `{{task_id}}` are those words in braces, every other brace stays as written.
final class TemplateTests: XCTestCase {
  /// The text a template gives with `d` as description and 7 as the task number.
  func filled(_ template: String, _ d: String = "DESC") -> String {
    Template.pieces(template).map { p -> String in
      switch p {
      case .text(let t): String(t)
      case .description: d
      case .taskID: TaskID.format(7)
      }
    }.joined()
  }

  /// Before, a command could not hold the text `{description}` or `{task_id}`: both were always
  /// filled, and doubled braces gave the value in braces.
  func testDoubledBracesAroundAPlaceholderAreItsLiteralText() {
    XCTAssertEqual(filled("{{description}}"), "{description}")
    XCTAssertEqual(filled("{{task_id}}"), "{task_id}")
    XCTAssertEqual(filled("--doc={{description}} --task {task_id} {description}"), "--doc={description} --task task-000007 DESC")
    XCTAssertEqual(
      Template.pieces("a{{description}}b"), [.text("a"), .text("{description}"), .text("b")], "literal text, not a placeholder")
    // A third brace is the template's own.
    XCTAssertEqual(filled("{{{description}}}"), "{{description}}")
    XCTAssertEqual(filled("{{{description}}"), "{{description}")
    XCTAssertEqual(filled("{{description}"), "{DESC")
    XCTAssertEqual(filled("{description}}"), "DESC}")
  }

  /// Doubled braces around anything but a placeholder stay as written: templates that worked
  /// before (Go templates, Jinja, awk blocks, JSON) give the same command.
  func testOtherDoubledBracesStayAsWritten() {
    for t in [
      "docker inspect -f '{{.State.Running}}'", "msg={{ name }}", "awk '{if($1){print}}'", #"{"a":{"b":1}}"#, "{{}}", "{{description }}",
    ] {
      XCTAssertEqual(filled(t), t)
    }
    XCTAssertEqual(filled("{{.Name}} {description}"), "{{.Name}} DESC")
  }

  /// The config: an escaped placeholder inside a shell template's own quotes is allowed (it is
  /// text, which quotes cannot change), a real one still is not; a misspelt one in doubled braces
  /// is still named.
  func testTheConfigAcceptsEscapesInQuotesAndStillRefusesQuotedPlaceholders() throws {
    func decode(_ shell: String) throws -> Config {
      try Config.decode(.object([("worker_types", .object([("t", .object([("shell", .string(shell))]))]))]))
    }
    XCTAssertEqual(
      try decode("echo '{{description}}' \"{{task_id}}\" {description}").workerType("t")?.shell,
      "echo '{{description}}' \"{{task_id}}\" {description}")
    XCTAssertThrowsError(try decode("echo '{{description}} {description}'")) { e in
      XCTAssertEqual((e as? SpecError)?.field, "worker_types.t.shell")
      XCTAssertTrue((e as? SpecError)?.message.contains("{description} is inside quotes") == true, "\(e)")
    }
    XCTAssertThrowsError(try decode("echo {{descripton}}")) { e in
      XCTAssertTrue((e as? SpecError)?.message.contains("did you mean {description}?") == true, "\(e)")
    }
  }

  /// Submitted through a type: the argv keeps the literal words, and in a shell template the
  /// literal is not quoted as a value would be.
  func testASubmittedTaskGetsTheLiteralText() {
    var sim = Sim(workers: 1) {
      var wt = $0.workerType("implementation")!
      wt.command = ["agent", "--template={{description}}", "{description}", "{{task_id}}"]
      $0.workerTypes = [
        ("implementation", wt),
        ("sh", Config.WorkerType(tokenBudget: 0, timeoutS: 60, memoryMB: 0, cpu: 0, shell: "echo {{description}} {description}")),
      ]
    }
    let a = sim.submitOne(#"{"type":"implementation","description":"Add README.md"}"#)
    XCTAssertEqual(sim.s.tasks[a]?.spec.command ?? [], ["agent", "--template={description}", "Add README.md", "{task_id}"])
    let b = sim.submitOne(#"{"type":"sh","description":"it's"}"#)
    XCTAssertEqual(sim.s.tasks[b]?.spec.shell, #"echo {description} 'it'\''s'"#)
  }
}
