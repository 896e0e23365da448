import CortexCore
import Posix
import XCTest

/// Bad input gets a clear error naming the problem and the SPEC §8 exit code; nothing else changes.
final class BadInputTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func testUsageErrorsExit64WithTheUsageLine() {
    for args in [["submit", "--bogus"], ["frobnicate"], ["list", "--limit"], ["scale", "0"], ["start", "--workers", "2000"]] {
      let r = c.run(args)
      XCTAssertEqual(r.code, 64, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("usage:"), "\(args): \(r.err)")
    }
  }

  func testDaemonNotRunningExits69WithTheStartCommand() {
    for args in [["submit", "--", "true"], ["list"], ["wait", "task-000001"]] {
      let r = c.run(args)
      XCTAssertEqual(r.code, 69, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains("cortex start"), r.err)
    }
  }

  func testInvalidSpecsExit65NamingTheFieldAndAcceptNothing() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let cases: [([String], String?, String)] = [
      (["submit", "--priority", "urgent", "--", "true"], nil, "priority"),
      (["submit", "--tokens", "-5", "--", "true"], nil, "token_budget"),
      (["submit", "--tokens", "many", "--", "true"], nil, "token_budget"),
      (["submit", "--type", "wizard", "--", "true"], nil, "type"),
      (["submit", "--type", "implementation"], nil, "implementation"),
      (["submit", "--after", "task-000999", "--", "true"], nil, "depends_on"),
      (["submit", "--from", "-"], "{\"command\":[\"true\"]}\n{\"command\":\"oops\"}\n", "stdin line 2: task 2 of 2: command"),
      (["submit", "--from", "-"], "not json\n", "line 1"),
      // A byte order mark (Windows editors write one) was "unexpected character 'ï'".
      (["submit", "--from", "-"], "\u{FEFF}{\"command\":[\"true\"]}\n", "line 1: task 1: not JSON: invalid JSON at byte 0: a UTF-8 byte"),
      // A batch of one task named no line when the daemon refused it.
      (["submit", "--from", "-"], "\n{\"command\":[\"true\"],\"depends_on\":[\"#1\"]}\n", "stdin line 2: depends_on"),
      // More fraction digits than a number holds: this one used to crash the daemon.
      (["submit", "--sla-deadline", "2026-11-18T11:06:40." + String(repeating: "9", count: 30) + "Z", "--", "true"], nil, "sla_deadline"),
      (["submit", "--sla-deadline", "2026-02-30T12:00:00Z", "--", "true"], nil, "sla_deadline"),
      (["submit", "--sla-deadline", "2026-11-18T99:99:99Z", "--", "true"], nil, "sla_deadline"),
      // retry_of must name a task that exists; a timeout under 1 ms would round to an instant one.
      (["submit", "--from", "-"], "{\"command\":[\"true\"],\"retry_of\":\"task-000999\"}\n", "retry_of: unknown task task-000999"),
      (["submit", "--from", "-"], "{\"command\":[\"true\"],\"retry_of\":\"yesterday\"}\n", "retry_of"),
      (["submit", "--from", "-"], "{\"command\":[\"true\"],\"timeout_s\":1e-7}\n", "timeout_s: must be at least 0.001"),
    ]
    for (args, input, field) in cases {
      let r = c.run(args, input: input)
      XCTAssertEqual(r.code, 65, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains(field), "\(args): error does not name \(field): \(r.err)")
    }
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" }, "a refused submit accepted something")
    // The daemon that refused them still serves.
    c.ok(["submit", "--synthetic", "0", "--wait"])
  }

  /// A daemon with one worker, paused, and one task submitted with `flags` (queued): its pid and the task's id.
  func pausedWithOneTask(_ flags: [String]) throws -> (Int32, String) {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    c.ok(["pause"])
    let id = c.ok(["submit", "-p"] + flags + ["--", "true"]).out.split(separator: "\n").first.map(String.init) ?? ""
    return (pid, id)
  }

  /// Input a script produces by mistake (`--dir "$UNSET"`, `--after "$UNSET"`, `scale -1`, bytes
  /// that are not UTF-8) used to be taken silently with a guessed meaning: the working directory,
  /// no dependency, an unknown option, U+FFFD. (An option given twice keeps its last value, as
  /// with most Unix tools, so that an alias's options can be overridden.)
  /// Each is refused naming the problem, with the SPEC §8 code, and nothing is accepted or changed.
  func testInputAScriptGotWrongIsRefusedNotGuessed() throws {
    let (pid, id) = try pausedWithOneTask(["--priority", "low"])
    let cases: [([String], Int32, String)] = [
      (["--json", "--dir"], 64, "--dir needs a value"),
      (["--json", "--color"], 64, "--color needs a value"),
      (["--json", "--dir", "", "status"], 64, "--dir needs a directory, not an empty string"),
      (["--json", "--dir", c.root, "submit", "--after", "", "--", "true"], 65, "depends_on: --after '' names no task"),
      (["--json", "--dir", c.root, "submit", "--after", " , ", "--", "true"], 65, "depends_on: --after ' , ' names no task"),
      (["--json", "--dir", c.root, "scale", "-1"], 64, "the pool size must be a whole number from 1 to 1024, not '-1'"),
      (["--json", "--dir", c.root, "scale", "abc"], 64, "not 'abc'"),
      // A malformed id is named (log said "give one task id" when one was given).
      (["--json", "--dir", c.root, "log", "TASK-1"], 65, "id: 'TASK-1' is not a task id like task-000012"),
      (["--json", "--dir", c.root, "tail", "--task", "task-0"], 65, "--task: 'task-0' is not a task id like task-000012"),
      // A task number not given out yet: tail printed nothing (0), and tail -f waited for ever.
      (["--json", "--dir", c.root, "tail", "--task", "task-999999"], 65, "id: unknown task task-999999 (the newest is task-000001)"),
      (["--json", "--dir", c.root, "tail", "-f", "--task", "task-999999"], 65, "id: unknown task task-999999"),
      (["--json", "--dir", c.root, "show", "task-99999999999999999999"], 65, "id: 'task-99999999999999999999' is not a task id"),
      (["--json", "--dir", c.root, "edit", "TASK-1", "--priority", "high"], 65, "id: 'TASK-1' is not a task id"),
      // A list filter no task can match was an empty list.
      (["--json", "--dir", c.root, "list", "--group", "my group"], 64, "--group 'my group' is not a group name"),
      (["--json", "--dir", c.root, "list", "--type", ""], 64, "--type needs a worker type, not an empty string"),
      // An empty description was routed to the default type, and an agent got an empty prompt.
      (["--json", "--dir", c.root, "submit", "--description", " "], 64, "--description needs text that says what the task is"),
      (["--json", "--dir", c.root, "task", "create", "--type", "dev", "-d", ""], 64, "--description needs text"),
    ]
    for (args, code, message) in cases {
      let r = c.run(raw: args)
      XCTAssertEqual(r.code, code, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains(message), "\(args): the error does not say \(message): \(r.err)")
      // Under --json the error is also a JSON object on stdout (cortex help).
      let out = try? JSON.parse(Array(r.out.utf8)[...])
      XCTAssertEqual(out?["code"]?.int, Int64(code), "\(args): no JSON error on stdout: \(r.out)")
    }
    // The global --dir keeps its last value, after the command too (an alias's --dir overridden),
    c.ok(["status", "--dir", c.scratch + "/elsewhere", "--dir", c.root])
    // A word that is not UTF-8 (here from a shell's printf) is refused, not run as U+FFFD.
    let sh = ["/bin/sh", "-c", #"exec "$0" --dir "$1" submit -- ls "$(printf 'caf\351.png')""#, Cortex.binary, c.root]
    let r = try runRaw(sh)
    XCTAssertEqual(r.code, 64, r.err)
    XCTAssertTrue(r.err.contains("argument 6") && r.err.contains("is not valid UTF-8"), r.err)
    // Nothing was accepted or changed, and the daemon serves.
    XCTAssertEqual(c.events().filter { $0.type == "task.submitted" }.count, 1)
    XCTAssertFalse(c.events().contains { $0.type == "task.edited" }, "a refused edit changed the task")
    XCTAssertTrue(c.ok(["show", id]).out.contains("low"))
    XCTAssertTrue(c.ok(["workers"]).out.contains("worker-001"))
    XCTAssertTrue(Processes.isAlive(pid))
    // A command's option given twice keeps its last value too.
    c.ok(["edit", id, "--priority", "high", "--priority", "critical"])
    XCTAssertEqual(try JSON.parse(Array(c.ok(["--json", "show", id]).out.utf8))["priority"]?.string, "critical")
    c.ok(["resume"])
    c.ok(["wait", id], timeoutS: 30)
  }

  /// Requests straight to cortex.sock that the daemon used to take with a guessed meaning: an `op`
  /// that is not a string was "no op"; `"more": 5` was taken as false (the part admitted as a whole
  /// batch); a label named "" was accepted by submit and edit; `"ids"` of the wrong kind was only
  /// "needs ids". Each is refused naming the field.
  func testMalformedRequestsOnTheSocketNameTheFieldAndChangeNothing() throws {
    let (pid, id) = try pausedWithOneTask(["--label", "k=v"])
    let cases: [(String, Int64, String)] = [
      (#"{"op":5}"#, 64, #""op" must be a string naming the operation, not a number"#),
      (#"{"op":["submit"]}"#, 64, #""op" must be a string naming the operation, not an array"#),
      (#"{"op":"submit","tasks":[{"shell":"true"}],"more":5}"#, 65, "more: must be true or false, not a number"),
      (#"{"op":"retry","all_failed":"yes"}"#, 65, "all_failed: must be true or false, not a string"),
      (#"{"op":"submit","tasks":[{"shell":"true","labels":{"":"v"}}]}"#, 65, "labels: every label needs a name"),
      (#"{"op":"edit","id":"\#(id)","set":{"labels":{"":"v"}}}"#, 65, "labels: every label needs a name"),
      // An id no task has had: 65 for edit too (show, wait and retry said 65, edit 1).
      (#"{"op":"edit","id":"task-999999","set":{"priority":"high"}}"#, 65, "id: unknown task task-999999 (the newest is task-000001)"),
      (#"{"op":"cancel","ids":"\#(id)"}"#, 64, #""ids" must be an array of task ids like task-000012, not a string"#),
      (#"{"op":"wait","ids":[]}"#, 64, #""ids" is empty"#),
      // A NUL or a non-ASCII byte where a value starts was printed raw: nothing, or another character.
      ("\u{0}", 64, "invalid JSON at byte 0: unexpected byte 0x00"),
      ("é", 64, "invalid JSON at byte 0: unexpected byte 0xC3"),
    ]
    for (line, code, message) in cases {
      let reply = try c.rawRequest(line)
      XCTAssertEqual(reply["code"]?.int, code, "\(line) → \(reply.encoded())")
      XCTAssertTrue((reply["error"]?.string ?? "").contains(message), "\(line) → \(reply.encoded())")
      XCTAssertTrue(Processes.isAlive(pid), "the daemon died on \(line)")
    }
    // A request whose sender stops sending before its newline was met with a silent close.
    let fd = try UnixSocket.connect(path: c.paths.socket)
    defer { fd.close() }
    try fd.writeAll(Array(#"{"op":"submit","tasks":[{"shell":"true"}]}"#.utf8))
    UnixSocket.shutdownWrite(fd)
    var buf: [UInt8] = []
    let deadline = Clock.monotonicMs() + 10_000
    while Clock.monotonicMs() < deadline {
      if !fd.waitReadable(timeoutMs: 200) { continue }
      if try fd.read(appendingTo: &buf) == 0 { break }
    }
    let unended = String(decoding: buf, as: UTF8.self)
    XCTAssertTrue(unended.contains(#""code":64"#) && unended.contains("request not ended by a newline"), "answer: '\(unended)'")
    let edit = c.run(["edit", "task-999999", "--priority", "high"])
    XCTAssertEqual(edit.code, 65, edit.err)
    XCTAssertEqual(c.events().filter { $0.type == "task.submitted" }.count, 1, "a refused request accepted a task")
    XCTAssertFalse(c.events().contains { $0.type == "task.edited" }, "a refused edit changed the task")
    c.ok(["resume"])
    c.ok(["wait", id], timeoutS: 30)
  }

  /// A field given twice in a spec (`{"command":["a"],"command":["b"]}`) ran the last one without
  /// a word (and `show`'s reader took the first): it is refused, 65, naming the field, and nothing
  /// of the batch is accepted. Through `submit --from`, `task create --from`, the socket (submit
  /// and edit); the inbox is in InboxTests.
  func testAFieldGivenTwiceInASpecIsRefusedNamingItAndNothingIsAccepted() throws {
    let (pid, id) = try pausedWithOneTask([])
    let file = c.scratch + "/twice.jsonl"
    try FileSystem.writeAtomically(
      file, Array("{\"command\":[\"true\"]}\n{\"command\":[\"echo\",\"a\"],\"command\":[\"echo\",\"b\"]}\n".utf8), durable: false)
    for args in [["submit", "--from", file], ["task", "create", "--from", file]] {
      let r = c.ok(args, code: 65)
      XCTAssertTrue(r.err.contains("line 2: task 2 of 2: command: is given twice"), "\(args): \(r.err)")
    }
    let synthetic = c.ok(["submit", "--from", "-"], input: #"{"synthetic":{"duration_ms":1,"duration_ms":900000}}"# + "\n", code: 65)
    XCTAssertTrue(synthetic.err.contains("synthetic.duration_ms: is given twice"), synthetic.err)
    let cases = [
      #"{"op":"submit","tasks":[{"shell":"true","priority":"low","priority":"critical"}]}"#,
      #"{"op":"edit","id":"\#(id)","set":{"priority":"low","priority":"critical"}}"#,
    ]
    for line in cases {
      let reply = try c.rawRequest(line)
      XCTAssertEqual(reply["code"]?.int, 65, "\(line) → \(reply.encoded())")
      XCTAssertTrue((reply["error"]?.string ?? "").contains("priority: is given twice"), "\(line) → \(reply.encoded())")
    }
    XCTAssertEqual(c.events().filter { $0.type == "task.submitted" }.count, 1, "a refused spec accepted a task")
    XCTAssertFalse(c.events().contains { $0.type == "task.edited" }, "a refused edit changed the task")
    XCTAssertTrue(Processes.isAlive(pid))
    c.ok(["resume"])
    c.ok(["wait", id], timeoutS: 30)
  }

  /// A value with a newline or an escape sequence was quoted raw into its error: `--type
  /// $'a\nb\e[31m'` printed "unknown worker type 'a", then a second line "b" in red, so input
  /// could forge lines of output (or of an inbox `.error` file) and send terminal sequences.
  /// Values are now quoted with their control characters written out, from the CLI, the daemon's
  /// answers and the inbox alike.
  func testAValueWithANewlineOrAnEscapeIsQuotedOnOneLineWithoutTheEscape() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let forged = "a\nb\u{1B}[31m"
    let shown = #"'a\nb\x1b[31m'"#
    let cases: [([String], String?, Int32, String)] = [
      (["submit", "--type", forged, "--", "true"], nil, 65, "type: unknown worker type \(shown)"),
      (["submit", "--group", forged, "--", "true"], nil, 65, "group: \(shown) is not a group name"),
      (["pause", forged], nil, 65, "\(shown) is not a group name"),
      (["list", "--state", forged], nil, 64, "not \(shown)"),
      (["show", forged], nil, 65, "\(shown) is not a task id"),
      (["submit", "--from", "-"], #"{"shell":"true","type":"a\nb\u001b[31m"}"# + "\n", 65, "unknown worker type \(shown)"),
      // A key the spec does not know is the field the error names.
      (["submit", "--from", "-"], #"{"shell":"true","a\nb\u001b[31m":1}"# + "\n", 65, #"a\nb\x1b[31m: unknown field"#),
      // An environment variable's name with a control character is refused, not passed on.
      (["submit", "--env", forged + "=1", "--", "true"], nil, 65, #"env.a\nb\x1b[31m: is not a valid environment variable name"#),
    ]
    for (args, input, code, message) in cases {
      let r = c.ok(args, input: input, code: code)
      let first = r.err.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
      XCTAssertTrue(first.contains(message), "\(args): the first line of stderr is \(first.debugDescription), not one with \(message)")
      XCTAssertFalse(r.err.contains("\u{1B}"), "\(args): an escape reached the terminal: \(r.err.debugDescription)")
      XCTAssertFalse(r.err.contains("\nb"), "\(args): the value's newline started a line: \(r.err.debugDescription)")
    }
    let reply = try c.rawRequest(#"{"op":"submit","tasks":[{"shell":"true","group":"a\nb\u001b[31m"}]}"#)
    XCTAssertEqual(reply["error"]?.string, #"group: 'a\nb\x1b[31m' is not a group name (1 to 64 of letters, digits, '.', '_' and '-')"#)
    try FileSystem.writeAtomically(c.paths.inbox + "/forged.json", Array(#"{"shell":"true","type":"a\nb\u001b[31m"}"#.utf8), durable: false)
    var error: String?
    c.eventually("forged.json rejected", timeoutS: 15) {
      error = ((try? FileSystem.read(c.paths.inboxRejected + "/forged.json.error")) ?? nil).map { String(decoding: $0, as: UTF8.self) }
      return error != nil
    }
    XCTAssertTrue(error?.hasPrefix("type: unknown worker type \(shown)") == true, error ?? "no .error")
    let raw = error.map { $0.trimmed.contains("\n") || $0.contains("\u{1B}") } ?? true
    XCTAssertFalse(raw, "the .error file holds the raw value: \((error ?? "").debugDescription)")
    XCTAssertFalse(c.events().contains { $0.type == "task.submitted" }, "a refused spec was accepted")
  }

  /// A task named twice in one request is one task: `retry X X` made two retries of X, and
  /// `cancel X X` answered a JSON object with the key twice. `cluster` checked its database before
  /// its command: `cluster bogus` and `--postgres ""` were about the connection.
  func testATaskNamedTwiceIsOneTaskAndClusterNamesItsCommand() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let failed = c.run(["submit", "-p", "--wait", "--shell", "exit 3"]).out.split(separator: "\n").first.map(String.init) ?? ""
    let retried = c.ok(["retry", "-p", failed, failed]).out.split(separator: "\n")
    XCTAssertEqual(retried.count, 1, "retry of one task named twice: \(retried)")
    c.ok(["wait"] + retried.map(String.init), code: 3, timeoutS: 30)
    let cancelled = c.run(["--json", "cancel", failed, failed])
    XCTAssertEqual(cancelled.out.components(separatedBy: "\"\(failed)\"").count - 1, 1, cancelled.out)
    XCTAssertEqual(cancelled.err.split(separator: "\n").count, 0, cancelled.err)
    XCTAssertEqual(c.events().filter { $0.type == "task.submitted" }.count, 2)
    for (args, says) in [
      (["cluster", "bogus"], "unknown cluster command 'bogus': give migrate, status or budget"),
      (["cluster", "status", "--postgres", ""], "--postgres needs a connection string, not an empty one"),
    ] {
      let r = c.run(args)
      XCTAssertEqual(r.code, 64, "\(args): \(r.err)")
      XCTAssertTrue(r.err.contains(says), "\(args): \(r.err)")
    }
  }

  /// Runs `argv` (no `cortex --dir` added) with stdout and stderr captured, bounded by 30 s.
  func runRaw(_ argv: [String]) throws -> (code: Int32, err: String) {
    let errPath = c.scratch + "/raw-err"
    let e = try FileDescriptor.open(errPath, [.writeOnly, .create, .truncate])
    let pid = try Processes.spawn(
      argv, environment: Environment.all(), directory: nil, stdin: nil, stdout: e, stderr: e, newProcessGroup: false)
    e.close()
    let deadline = Clock.monotonicMs() + 30_000
    while Clock.monotonicMs() < deadline {
      if let (_, s) = Processes.reap(pid) {
        let err = String(decoding: (try FileSystem.read(errPath)) ?? [], as: UTF8.self)
        if case .exited(let code) = s { return (code, err) }
        return (-1, err)
      }
      sleepMs(2)
    }
    _ = Processes.signal(pid, Signal.kill)
    _ = Processes.wait(pid)
    throw HarnessError(message: "\(argv) did not finish within 30 s")
  }

  func testAFullQueueRefusesWith75AtOnce() throws {
    try c.initialize([("max_queue", .int(2))])
    c.ok(["start", "--workers", "1"])
    for _ in 0..<3 { c.ok(["submit", "--shell", "sleep 30"]) }
    let r = c.run(["submit", "--", "true"])
    XCTAssertEqual(r.code, 75, r.err)
    XCTAssertTrue(r.err.contains("queue_full") || r.err.contains("queued"), r.err)
    XCTAssertEqual(c.events().filter { $0.type == "task.rejected" }.last?["reason"]?.string, "queue_full")
    c.ok(["stop", "--timeout", "0"], timeoutS: 30)
  }

  func testGarbageFromAWorkerRestartsOnlyThatWorker() throws {
    try c.initialize()
    c.ok(["start", "--workers", "2"])
    let before = c.leftovers.filter { $0.commandLine.contains("--slot") && $0.commandLine.contains("1") }
    let fd = try FileDescriptor.open(c.paths.fifoOut(1), [.writeOnly])
    try fd.writeAll(Array("this is not json\n".utf8))
    fd.close()
    c.eventually("worker-001 unhealthy and restarted") {
      let ev = c.events()
      return ev.contains {
        $0.type == "worker.unhealthy" && $0["worker_id"]?.string == "worker-001" && $0["reason"]?.string == "bad_message"
      }
        && ev.contains { $0.type == "worker.restarted" && $0["worker_id"]?.string == "worker-001" }
    }
    XCTAssertFalse(c.events().contains { $0.type == "worker.unhealthy" && $0["worker_id"]?.string == "worker-002" })
    XCTAssertFalse(before.isEmpty)
    let r = c.run(["submit", "--wait", "--", "true"], timeoutS: 30)
    XCTAssertEqual(r.code, 0, r.err)
  }

  /// Secret masking scanned the text again from every position: a 35 KB description of
  /// `-----BEGIN ` repeated took the daemon's loop 6 s, 8 KB of `-_` then `=abcd` 22 s (debug
  /// build), and a request of a few hundred KB would have held it for hours, answering nothing. Each is
  /// now read once: the oversized spec is refused naming `spec` at once.
  func testTextThatLooksAlmostSecretIsMaskedInLinearTimeAndTheDaemonServes() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    let texts = [
      String(repeating: "-_", count: 150_000) + "=abcd", String(repeating: "-----BEGIN ", count: 30_000),
      String(repeating: "a=", count: 150_000),
    ]
    for text in texts {
      try assertRefusedAtOnce(submitting: ("description", .string(text)), fields: ["spec"], daemon: pid)
    }
    c.ok(["submit", "--wait", "--synthetic", "1"], timeoutS: 30)
  }

  /// Submits one synthetic task with `field` added, over the socket: the answer (within
  /// `rawRequest`'s 10 s) is a 65 naming one of `fields`, and the daemon is still alive.
  func assertRefusedAtOnce(submitting field: (String, JSON), fields: [String], daemon pid: Int32) throws {
    let spec = JSON.object([("synthetic", .object([("duration_ms", .int(1))])), field])
    let reply = try c.rawRequest(JSON.object([("op", .string("submit")), ("tasks", .array([spec]))]).encoded())
    XCTAssertEqual(reply["code"]?.int, 65, reply.encoded())
    XCTAssertTrue(fields.contains(reply["field"]?.string ?? ""), reply.encoded())
    XCTAssertTrue(Processes.isAlive(pid))
  }

  /// Repeated ids were dropped by searching the list for each one: 20,000 ids in `depends_on`
  /// took the daemon's loop 14 s (debug build), and the few MB a request may hold, hours.
  func testAHugeDependsOnListIsRefusedAtOnceAndTheDaemonServes() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    for ids in [(1...60_000).map { TaskID.format($0) }, (1...60_000).map { "#\($0)" }] {
      try assertRefusedAtOnce(submitting: ("depends_on", .array(ids.map { .string($0) })), fields: ["spec", "depends_on"], daemon: pid)
    }
    c.ok(["submit", "--wait", "--synthetic", "1"], timeoutS: 30)
  }

  /// An edit replaced each env key or label with a search of the whole list: 20,000 keys held
  /// the daemon's loop 26 s (debug build), and the few MB a request may hold, hours.
  func testAnEditWithAHugeEnvIsRefusedAtOnceAndTheDaemonServes() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let pid = try XCTUnwrap(c.daemonPID)
    c.ok(["pause"])
    let submitted = try c.rawRequest(#"{"op":"submit","tasks":[{"synthetic":{"duration_ms":1},"env":{"A":"0","C":"c"}}]}"#)
    let id = try XCTUnwrap(submitted["ids"]?.array?.first?.string, submitted.encoded())
    for field in ["env", "labels"] {
      let set = JSON.object([(field, .object((1...60_000).map { ("K\($0)", .string("v")) }))])
      let reply = try c.rawRequest(JSON.object([("op", .string("edit")), ("id", .string(id)), ("set", set)]).encoded())
      XCTAssertEqual(reply["field"]?.string, "spec", reply.encoded())
      XCTAssertTrue(Processes.isAlive(pid))
    }
    // A small edit still merges as before: the last value of a repeated key, an empty label removes it.
    let set = #"{"env":{"A":"1","B":"2","A":"3"},"labels":{"x":"1","x":""}}"#
    let reply = try c.rawRequest(#"{"op":"edit","id":"\#(id)","set":\#(set)}"#)
    XCTAssertEqual(reply["ok"]?.bool, true, reply.encoded())
    let spec = reply["task"]?["spec"]
    XCTAssertEqual(spec?["env"]?.encoded(), #"{"C":"c","B":"2","A":"3"}"#, reply.encoded())
    XCTAssertNil(spec?["labels"], reply.encoded())
    c.ok(["resume"])
    c.ok(["wait", id], timeoutS: 30)
  }
}
