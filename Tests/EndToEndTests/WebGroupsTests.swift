import CortexCore
import Posix
import XCTest

/// Groups on the HTTP API (docs/web.md): `GET /api/groups` lists what `cortex group` lists, with
/// each group's state; pause, resume and the parallel limit act as `cortex pause`, `cortex
/// resume` and `cortex group set` do (the same decisions in the log, with the same reasons);
/// authentication, Origin and bad input are refused with the status that names the problem.
final class WebGroupsTests: XCTestCase {
  func get(_ web: RawHTTP, _ auth: String, _ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSON {
    let a = try web.get(path, headers: [auth])
    XCTAssertEqual(a.status, 200, "GET \(path): \(a.body)", file: file, line: line)
    return try JSON.parse(Array(a.body.utf8))
  }

  func group(_ v: JSON, _ name: String) -> JSON? { v["groups"]?.array?.first { $0["name"]?.string == name } }

  /// The error answer's message, checking its shape (`ok` false, `status` the HTTP status).
  func refusal(_ a: RawHTTP.Answer, _ status: Int, file: StaticString = #filePath, line: UInt = #line) -> String {
    XCTAssertEqual(a.status, status, a.body, file: file, line: line)
    let j = try? JSON.parse(Array(a.body.utf8))
    XCTAssertEqual(j?["ok"]?.bool, false, a.body, file: file, line: line)
    XCTAssertEqual(j?["status"]?.int, Int64(status), a.body, file: file, line: line)
    return j?["error"]?.string ?? ""
  }

  func testGroupsAreListedPausedResumedAndLimitedAsTheCLIDoes() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(3))])
    c.ok(["start"])
    let web = RawHTTP(port: try XCTUnwrap(c.webPort))
    let auth = "Authorization: Bearer \(c.webToken)"
    // Only the default group, unlimited and running: the overview shows no Groups card.
    c.ok(["submit", "--synthetic", "1"])
    var v = try get(web, auth, "/api/groups")
    XCTAssertEqual(v["shown"]?.bool, false, v.encoded())
    XCTAssertEqual(v["queue_paused"]?.bool, false)

    // Group batch at its limit: 1 of 1 running, 2 queued.
    c.ok(["group", "set", "batch", "--parallel", "1"])
    for _ in 0..<3 { c.ok(["submit", "--group", "batch", "--synthetic", "600000"]) }
    try c.eventually("GET /api/groups to show batch with 1 running and 2 queued") {
      v = try get(web, auth, "/api/groups")
      return group(v, "batch")?["running"]?.int == 1 && group(v, "batch")?["queued"]?.int == 2
    }
    XCTAssertEqual(v["shown"]?.bool, true)
    XCTAssertNil(v["cluster_groups"], "a single host has no cluster_groups: \(v.encoded())")
    var batch = try XCTUnwrap(group(v, "batch"))
    XCTAssertEqual(batch["state"]?.string, "at_limit", batch.encoded())
    XCTAssertEqual(batch["paused"]?.bool, false)
    XCTAssertEqual(batch["parallel"]?.int, 1)
    // No limit is null, not 0.
    XCTAssertEqual(group(v, "default")?["parallel"], .null, v.encoded())
    XCTAssertEqual(group(v, "default")?["state"]?.string, "running")
    // The same numbers as `cortex group --json`.
    let cli = try JSON.parse(Array(c.ok(["--json", "group"]).out.utf8))
    XCTAssertEqual(group(cli, "batch")?["running"]?.int, 1)
    XCTAssertEqual(group(cli, "batch")?["queued"]?.int, 2)

    // Pause: the daemon's decision, logged as `cortex pause batch` logs it.
    let origin = "Origin: http://127.0.0.1:\(web.port)"
    var a = try web.post("/api/groups/batch/pause", body: "{}", headers: [auth, origin])
    XCTAssertEqual(a.status, 200, a.body)
    XCTAssertEqual(try JSON.parse(Array(a.body.utf8))["changed"]?.array, [.string("batch")], a.body)
    let paused = c.events().filter { $0.type == "group.paused" }
    XCTAssertEqual(paused.count, 1, "\(paused)")
    XCTAssertEqual(paused.first?["group"]?.string, "batch")
    XCTAssertEqual(paused.first?["reason"]?.string, "cortex_pause")
    batch = try XCTUnwrap(group(try get(web, auth, "/api/groups"), "batch"))
    XCTAssertEqual(batch["state"]?.string, "paused", batch.encoded())
    XCTAssertEqual(batch["paused"]?.bool, true)
    XCTAssertTrue(c.ok(["group"]).out.contains("paused"), "cortex group does not see the pause")

    // Resume (no Origin with a bearer token, as a script sends it).
    a = try web.post("/api/groups/batch/resume", body: "", headers: [auth])
    XCTAssertEqual(a.status, 200, a.body)
    let resumed = c.events().filter { $0.type == "group.resumed" }
    XCTAssertEqual(resumed.first?["group"]?.string, "batch", "\(resumed)")
    XCTAssertEqual(resumed.first?["reason"]?.string, "cortex_resume")
    XCTAssertEqual(group(try get(web, auth, "/api/groups"), "batch")?["paused"]?.bool, false)

    // The limit raised: group.updated as `cortex group set` logs it, and a second task starts.
    a = try web.post("/api/groups/batch/parallel", body: #"{"parallel": 2}"#, headers: [auth, origin])
    XCTAssertEqual(a.status, 200, a.body)
    let updated = c.events().filter { $0.type == "group.updated" }.last
    XCTAssertEqual(updated?["reason"]?.string, "cortex_group_set")
    XCTAssertEqual(updated?["parallel_from"]?.int, 1)
    XCTAssertEqual(updated?["parallel"]?.int, 2)
    try c.eventually("batch to run 2 under its new limit") {
      let b = group(try get(web, auth, "/api/groups"), "batch")
      return b?["running"]?.int == 2 && b?["parallel"]?.int == 2 && b?["state"]?.string == "at_limit"
    }
    // null (or 0) removes the limit.
    a = try web.post("/api/groups/batch/parallel", body: #"{"parallel": null}"#, headers: [auth])
    XCTAssertEqual(a.status, 200, a.body)
    batch = try XCTUnwrap(group(try get(web, auth, "/api/groups"), "batch"))
    XCTAssertEqual(batch["parallel"], .null, batch.encoded())
    XCTAssertEqual(c.events().filter { $0.type == "group.updated" }.last?["parallel"]?.int, 0)
    // The whole queue paused (`cortex pause` with no group) is said too.
    c.ok(["pause"])
    XCTAssertEqual(try get(web, auth, "/api/groups")["queue_paused"]?.bool, true)
  }

  func testGroupActionsRefuseBadInputWithoutAuthOrFromAnotherOrigin() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(1))])
    c.ok(["start"])
    c.ok(["submit", "--group", "batch", "--synthetic", "1"])
    let web = RawHTTP(port: try XCTUnwrap(c.webPort))
    let auth = "Authorization: Bearer \(c.webToken)"
    let origin = "Origin: http://127.0.0.1:\(web.port)"
    c.eventually("the daemon to know group batch") { c.ok(["group"]).out.contains("batch") }

    // Authentication and Origin, as for every POST.
    XCTAssertEqual(try web.post("/api/groups/batch/pause", body: "{}", headers: []).status, 401)
    XCTAssertEqual(try web.get("/api/groups").status, 401)
    var m = refusal(try web.post("/api/groups/batch/pause", body: "{}", headers: [auth, "Origin: http://evil.example"]), 403)
    XCTAssertTrue(m.contains("cross-origin"), m)
    let cookie = "Cookie: cortex_\(web.port)=\(c.webToken)"
    m = refusal(try web.post("/api/groups/batch/pause", body: "{}", headers: [cookie]), 403)
    XCTAssertTrue(m.contains("Origin"), m)
    let plain = try web.send(
      "POST /api/groups/batch/pause HTTP/1.1\r\nHost: 127.0.0.1:\(web.port)\r\nConnection: close\r\nContent-Type: text/plain\r\n\(auth)\r\nContent-Length: 2\r\n\r\n{}"
    )
    _ = refusal(plain, 415)
    // With a cookie and this server's Origin, as the page sends it: accepted.
    XCTAssertEqual(try web.post("/api/groups/batch/resume", body: "{}", headers: [cookie, origin]).status, 200)

    // Unknown group, bad names, bad limits, unknown fields and actions.
    m = refusal(try web.post("/api/groups/batsh/pause", body: "{}", headers: [auth]), 404)
    XCTAssertTrue(m.contains("no group batsh") && m.contains("batch"), m)
    m = refusal(try web.post("/api/groups/batsh/parallel", body: #"{"parallel": 2}"#, headers: [auth]), 404)
    XCTAssertTrue(m.contains("no group batsh"), m)
    m = refusal(try web.post("/api/groups/a%20b/pause", body: "{}", headers: [auth]), 400)
    XCTAssertTrue(m.contains("not a group name"), m)
    for (body, says) in [
      (#"{"parallel": -1}"#, "from 0 to 1000000, not -1"), (#"{"parallel": 1.5}"#, "whole number"),
      (#"{"parallel": "4"}"#, "whole number, not"), (#"{"parallel": 2000000}"#, "not 2000000"), ("{}", "required"),
    ] {
      m = refusal(try web.post("/api/groups/batch/parallel", body: body, headers: [auth]), 400)
      XCTAssertTrue(m.hasPrefix("parallel: ") && m.contains(says), "\(body): \(m)")
    }
    m = refusal(try web.post("/api/groups/batch/parallel", body: #"{"parallel": 2, "workers": 3}"#, headers: [auth]), 400)
    XCTAssertTrue(m.contains("workers: unknown field"), m)
    m = refusal(try web.post("/api/groups/batch/pause", body: #"{"group": "x"}"#, headers: [auth]), 400)
    XCTAssertTrue(m.contains("group: unknown field"), m)
    m = refusal(try web.post("/api/groups/batch/stop", body: "{}", headers: [auth]), 404)
    XCTAssertTrue(m.contains("no action stop on a group"), m)
    let wrong = try web.get("/api/groups/batch/pause", headers: [auth])
    XCTAssertEqual(wrong.status, 405, wrong.body)
    XCTAssertTrue(wrong.head.contains("\r\nAllow: POST"), wrong.head)
    XCTAssertEqual(try web.post("/api/groups", body: "{}", headers: [auth]).status, 405)

    // Nothing refused changed anything: the one resume above found nothing paused.
    let fleet = c.events().filter { ($0.type ?? "").hasPrefix("group.") }
    XCTAssertTrue(fleet.isEmpty, "refused requests logged \(fleet)")
    XCTAssertFalse(c.ok(["group"]).out.contains("batsh"), "an unknown group was made")
  }
}
