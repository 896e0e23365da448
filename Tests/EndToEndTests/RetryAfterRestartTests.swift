import CortexCore
import Posix
import XCTest

/// `cortex retry` of tasks that ended before the daemon was restarted: their specs come from
/// `tasks/<id>/spec.json`; one whose secret values are gone, or whose file is damaged, is refused
/// with 65 and the reason (SPEC §15, docs/fleet.md).
final class RetryAfterRestartTests: XCTestCase {
  var c: Cortex!

  override func setUpWithError() throws { c = try Cortex() }
  override func tearDown() { c?.finish() }

  func lines(_ r: Cortex.Run) -> [String] { r.out.split(separator: "\n").map { String($0).trimmed }.filter { !$0.isEmpty } }

  func show(_ id: String) throws -> JSON { try JSON.parse(Array(c.ok(["--json", "show", id]).out.utf8)) }

  func restart() {
    c.ok(["stop"])
    c.ok(["start", "--workers", "1"])
  }

  var submitted: Int { c.events().filter { $0.type == "task.submitted" }.count }

  /// A task that failed before a restart is retried by id: a new task with retry_of, running the
  /// same command (which now succeeds, since the file it tests for exists).
  func testATaskThatFailedBeforeARestartIsRetriedById() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let marker = c.scratch + "/marker"
    let shell = "test -e \(marker)"
    let failed = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", shell], code: 1).out.trimmed
    restart()
    try FileSystem.writeAtomically(marker, [], durable: false)
    let r = c.ok(["retry", failed])
    let new = try XCTUnwrap(lines(r).first?.split(separator: " ").first.map(String.init), r.out)
    XCTAssertNotEqual(new, failed)
    XCTAssertTrue(r.out.contains("(retry of \(failed))"), r.out)
    let shown = try show(new)
    XCTAssertEqual(shown["retry_of"]?.string, failed)
    XCTAssertEqual(shown["spec"]?["shell"]?.string, shell)
    c.ok(["wait", new])
    XCTAssertEqual(try show(new)["state"]?.string, "succeeded")
  }

  /// `--all-failed` after a restart retries each earlier failure once; after the retries ended
  /// (and another restart) it takes only the newest failure of each chain.
  func testAllFailedAfterARestartRetriesEachEarlierFailureOnce() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let marker = c.scratch + "/marker"
    let a = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "test -e \(marker)"], code: 1).out.trimmed
    let marker2 = c.scratch + "/marker2"
    let b = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "test -e \(marker2) || exit 2"], code: 2).out.trimmed
    c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "true"])
    restart()
    try FileSystem.writeAtomically(marker, [], durable: false)
    let first = lines(c.ok(["retry", "-p", "--all-failed"]))
    guard first.count == 2 else { return XCTFail("two retries, not \(first)") }
    XCTAssertEqual(try first.map { try show($0)["retry_of"]?.string }, [a, b])
    c.ok(["wait", first[0]])
    c.ok(["wait", first[1]], code: 2)
    restart()
    try FileSystem.writeAtomically(marker2, [], durable: false)
    let second = lines(c.ok(["retry", "-p", "--all-failed"]))
    guard second.count == 1 else { return XCTFail("one retry, not \(second)") }
    XCTAssertEqual(try show(second[0])["retry_of"]?.string, first[1], "the failed retry, not \(b) again")
    c.ok(["wait", second[0]])
    // Every chain ends in a success now.
    restart()
    let third = c.ok(["retry", "--all-failed"])
    XCTAssertEqual(lines(third), [])
    XCTAssertTrue(third.err.contains("nothing to retry"), third.err)
  }

  /// `--all-failed` reads the spec.json of each failure the daemon holds only as a compact
  /// record. It read them on the daemon's loop, so a slow read (thousands of failures, a slow
  /// disk) held every client and every start. Here one spec.json is a FIFO that nobody writes
  /// yet, a read that does not end by itself: the daemon answers other requests meanwhile, and
  /// once the FIFO gives the spec, the retry answers as it would have, every failure retried.
  func testAllFailedReadsTheSpecsOffTheLoop() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let failed = (1...3).map { i in c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "exit \(i)"], code: Int32(i)).out.trimmed }
    restart()
    let give = try c.holdBack(c.paths.taskDir(TaskID.parse(failed[1])!) + "/spec.json")
    defer { give() }  // a daemon blocked on it must not outlive a failed test
    let retry = try c.background(["retry", "--all-failed"])
    sleepMs(500)  // the request is read and the FIFO opened
    for _ in 0..<3 {
      let started = Clock.monotonicMs()
      c.ok(["workers"], timeoutS: 5)
      XCTAssertLessThan(Clock.monotonicMs() - started, 3000, "the daemon answered late while a spec was read")
    }
    XCTAssertNil(Processes.reap(retry.pid), "the retry answered before its spec.json could be read")
    give()
    let r = c.collect(retry)
    XCTAssertEqual(r.code, 0, r.err)
    let retried = lines(r).compactMap { l in l.split(separator: " ").last.map { String($0.dropLast()) } }
    XCTAssertEqual(retried, failed, r.out)
    for l in lines(r) { XCTAssertTrue(l.contains("(retry of task-"), l) }
    let logged = c.events().filter { $0.type == "task.submitted" }.compactMap { $0["spec"]?["retry_of"]?.string }
    XCTAssertEqual(logged, failed, "each retry is logged with the task it retries")
  }

  /// A task whose spec had a secret value cannot be retried after a restart: the value is no
  /// longer kept. Refused with 65 naming the task and why; nothing is submitted. `--all-failed`
  /// names it and retries the rest. The same after kill -9, when the task comes back from the log.
  func testATaskWithASecretIsRefusedAfterARestart() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let secret = c.ok(["submit", "-p", "--no-env", "--env", "API_TOKEN=abc123secretvalue", "--wait", "--shell", "exit 1"], code: 1)
      .out.trimmed
    let plain = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "exit 1"], code: 1).out.trimmed
    restart()
    let before = submitted
    let r = c.run(["retry", plain, secret])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains(secret) && r.err.contains("secret values") && r.err.contains("env.API_TOKEN"), r.err)
    XCTAssertTrue(r.err.contains("submit it again"), r.err)
    XCTAssertEqual(r.out, "")
    XCTAssertEqual(submitted, before, "a refused retry submitted something")
    let all = c.ok(["retry", "-p", "--all-failed"])
    let new = lines(all)
    guard new.count == 1 else { return XCTFail("one retry, not \(new): \(all.err)") }
    XCTAssertEqual(try show(new[0])["retry_of"]?.string, plain)
    XCTAssertTrue(all.err.contains("not retried: \(secret)") && all.err.contains("env.API_TOKEN"), all.err)
    c.ok(["wait", new[0]], code: 1)
    // kill -9: the task comes back from the log (redacted) rather than from the snapshot.
    let again = c.ok(["submit", "-p", "--no-env", "--env", "API_TOKEN=abc123secretvalue", "--wait", "--shell", "exit 1"], code: 1)
      .out.trimmed
    guard let pid = c.daemonPID else { return XCTFail("no daemon.pid") }
    XCTAssertTrue(Processes.signal(pid, Signal.kill))
    c.eventually("the daemon is gone") { !Processes.isAlive(pid) }
    c.ok(["start", "--workers", "1"])
    let k = c.run(["retry", again])
    XCTAssertEqual(k.code, 65, k.err)
    XCTAssertTrue(k.err.contains(again) && k.err.contains("env.API_TOKEN"), k.err)
  }

  /// The web page's retry button is the same request: after a restart it retries a plain task
  /// and refuses (400, the reason in the answer) one whose secrets are gone.
  func testTheWebRetryAfterARestartIsTheSame() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let plain = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "exit 1"], code: 1).out.trimmed
    let secret = c.ok(["submit", "-p", "--no-env", "--env", "API_TOKEN=abc123secretvalue", "--wait", "--shell", "exit 1"], code: 1)
      .out.trimmed
    restart()
    let web = RawHTTP(port: try XCTUnwrap(c.webPort))
    let auth = ["Authorization: Bearer \(c.webToken)"]
    let ok = try web.post("/api/tasks/\(plain)/retry", body: "{}", headers: auth)
    XCTAssertEqual(ok.status, 200, ok.body)
    let new = try XCTUnwrap(try JSON.parse(Array(ok.body.utf8))["ids"]?.array?.first?.string, ok.body)
    XCTAssertEqual(try show(new)["retry_of"]?.string, plain)
    c.ok(["wait", new], code: 1)
    let before = submitted
    let refused = try web.post("/api/tasks/\(secret)/retry", body: "{}", headers: auth)
    XCTAssertEqual(refused.status, 400, refused.body)
    XCTAssertTrue(refused.body.contains("env.API_TOKEN") && refused.body.contains("no longer kept"), refused.body)
    XCTAssertFalse(refused.body.contains("abc123secretvalue"), refused.body)
    XCTAssertEqual(submitted, before)
  }

  /// A damaged or missing spec.json refuses the retry with 65 naming the file.
  func testACorruptSpecFileIsRefusedNamingTheFile() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let a = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "exit 1"], code: 1).out.trimmed
    let b = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "exit 1"], code: 1).out.trimmed
    c.ok(["stop"])
    let path = c.paths.taskDir(TaskID.parse(a)!) + "/spec.json"
    try FileSystem.writeAtomically(path, Array("{\"command\":[\"tru".utf8), durable: false)
    try FileSystem.remove(c.paths.taskDir(TaskID.parse(b)!) + "/spec.json")
    c.ok(["start", "--workers", "1"])
    let before = submitted
    let r = c.run(["retry", a])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains(a) && r.err.contains("\(a)/spec.json") && r.err.contains("not valid JSON"), r.err)
    let m = c.run(["retry", b])
    XCTAssertEqual(m.code, 65, m.err)
    XCTAssertTrue(m.err.contains("\(b)/spec.json does not exist"), m.err)
    XCTAssertEqual(submitted, before)
  }

  /// A snapshot from before `retried` was kept in it (an upgrade): the start reads retry_of from
  /// the spec.json files, so `--all-failed` still takes only the newest failure of each chain.
  func testAnUpgradeFromASnapshotWithoutRetriedKeepsTheChains() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let a = c.ok(["submit", "-p", "--no-env", "--wait", "--shell", "exit 1"], code: 1).out.trimmed
    let b = lines(c.ok(["retry", "-p", a]))
    c.ok(["wait"] + b, code: 1)
    c.ok(["stop"])
    var snap = try XCTUnwrap(try FileSystem.read(c.paths.taskQueue).flatMap { try JSON.parse($0).object })
    snap.removeAll { $0.0 == "retried" }
    try FileSystem.writeAtomically(c.paths.taskQueue, JSON.object(snap).encodedBytes())
    c.ok(["start", "--workers", "1"])
    let r = lines(c.ok(["retry", "-p", "--all-failed"]))
    guard r.count == 1 else { return XCTFail("one retry, not \(r)") }
    XCTAssertEqual(try show(r[0])["retry_of"]?.string, b[0])
  }

  /// A failure with no spec kept (a synthetic task has no task directory) is counted by
  /// `--all-failed` in one line, not named on every run; named, it is refused saying why.
  func testAFailureWithNoSpecKeptIsCountedNotNamedByAllFailed() throws {
    try c.initialize()
    c.ok(["start", "--workers", "1"])
    let ids = lines(
      c.ok(["submit", "--from", "-"], input: #"{"synthetic":{"duration_ms":1,"error_rate":1}}"# + "\n" + #"{"shell":"exit 1"}"# + "\n"))
    guard ids.count == 2 else { return XCTFail("two ids, not \(ids)") }
    c.ok(["wait"] + ids, code: 1)
    restart()
    let before = submitted
    var r = c.run(["retry", ids[0]])
    XCTAssertEqual(r.code, 65, r.err)
    XCTAssertTrue(r.err.contains("no spec is kept for it"), r.err)
    r = c.run(["retry", "-p", "--all-failed"])
    XCTAssertEqual(r.code, 0, r.err)
    XCTAssertEqual(lines(r).count, 1, "the shell task is retried: \(r.out)")
    XCTAssertTrue(r.err.contains("not retried: 1 earlier failure with no spec kept"), r.err)
    XCTAssertFalse(r.err.contains(ids[0]), "named one by one: \(r.err)")
    XCTAssertEqual(submitted, before + 1)
  }
}
