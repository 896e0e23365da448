import CortexCore
import Posix
import XCTest

/// Issue 11 (first step): `cortex cluster migrate|status` against a real PostgreSQL, and the
/// clear errors for a wrong DSN, a wrong password and a schema newer than the binary.
final class ClusterSchemaTests: XCTestCase {
  var c: Cortex!
  var pg: Postgres!

  override func setUpWithError() throws {
    c = try Cortex()
    pg = try Postgres()
  }
  override func tearDown() {
    pg?.stop()
    c?.finish()
  }

  func testMigrateIsIdempotentAndStatusReadsTheSchema() throws {
    var r = c.ok(["cluster", "migrate", "--postgres", pg.dsn])
    XCTAssertTrue(r.err.contains("applied schema versions 1, 2, 3, 4, 5, 6, 7, 8, 9"), r.err)
    r = c.ok(["cluster", "migrate", "--postgres", pg.dsn])
    XCTAssertTrue(r.err.contains("current"), r.err)
    XCTAssertEqual(try pg.psql("SELECT count(*) FROM cortex_schema").trimmed, "9")
    let tables = try pg.psql("SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE tablename LIKE 'cortex_%'")
    XCTAssertEqual(
      tables.trimmed,
      "cortex_budget,cortex_dep,cortex_group,cortex_inbox,cortex_node,cortex_queue,cortex_schema,cortex_secret,cortex_task,cortex_task_done"
    )
    let s = try JSON.parse(Array(c.ok(["--json", "cluster", "status", "--postgres", pg.dsn]).out.utf8))
    XCTAssertEqual(s["schema_version"]?.int, 9)
    XCTAssertEqual(s["nodes"]?.array?.count, 0)
    // The DSN can come from config.json.
    try c.initialize([("cluster", .object([("postgres", .string(pg.dsn)), ("node", .string("alpha"))]))])
    XCTAssertTrue(c.ok(["cluster", "status"]).out.contains("schema version 9"))
  }

  func testAServerThatNeverAnswersIsATimeoutNotAHang() throws {
    // A port that accepts connections and never answers (a hung server, a proxy to nowhere).
    let silent = try TCPSocket.listen(address: "127.0.0.1", port: 0)
    defer { silent.close() }
    let port = TCPSocket.localPort(silent)
    let started = Clock.monotonicMs()
    let r = c.run(["cluster", "status", "--postgres", "postgresql://cortex@127.0.0.1:\(port)/postgres"], timeoutS: 40)
    XCTAssertEqual(r.code, 69, r.err)
    XCTAssertTrue(r.err.contains("timeout expired") && r.err.contains("connect_timeout: 5 s, as the DSN sets none"), r.err)
    XCTAssertLessThan(Clock.monotonicMs() - started, 20_000)
    // The DSN's own connect_timeout wins.
    let own = Clock.monotonicMs()
    let ownRun = c.run(["cluster", "status", "--postgres", "postgresql://cortex@127.0.0.1:\(port)/postgres?connect_timeout=2"])
    XCTAssertEqual(ownRun.code, 69)
    XCTAssertLessThan(Clock.monotonicMs() - own, 4_500)
    // The message names the timeout the DSN set, not the default's.
    XCTAssertTrue(ownRun.err.contains("the DSN's connect_timeout: 2 s") && !ownRun.err.contains("5 s"), ownRun.err)
  }

  func testStartingOnAnUnmigratedDatabaseSaysToMigrateAndStatusSaysItIsNotRunning() throws {
    try c.initialize()
    var r = c.run(["init", "--yes", "--cluster", pg.dsn, "--node", "alpha"])
    XCTAssertNotEqual(r.code, 0)
    // The command it gives works pasted anywhere: it names the directory (it said only
    // `cortex cluster migrate`, which run elsewhere found no config.json).
    let command = "cortex cluster migrate --dir '\(c.root)'"
    XCTAssertTrue(r.err.contains("has no Cortex schema yet") && r.err.contains("run: \(command)\n"), r.err)
    r = c.run(["cluster", "status"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("run: \(command)\n"), r.err)
    // Given with --postgres, the command names the database the same way.
    r = c.run(raw: ["cluster", "status", "--postgres", pg.dsn], directory: "/")
    XCTAssertTrue(r.err.contains("run: cortex cluster migrate --postgres '\(pg.dsn)'\n"), r.err)
    // The failed start left a hot-state file it never filled in: that is "not running", not a damaged file.
    r = c.run(["status"])
    XCTAssertEqual(r.code, 69, r.err)
    XCTAssertTrue(r.err.contains("not running") && r.err.contains("daemon.log"), r.err)
    XCTAssertFalse(r.err.contains("magic"), r.err)
    // Pasted into a shell as given, from another directory.
    let bin = FileSystem.dirname(Cortex.binary)
    let (code, said) = try sh(["/bin/sh", "-c", "cd / && " + command], environment: ["PATH=\(bin):/usr/bin:/bin"])
    XCTAssertEqual(code, 0, said)
    c.ok(["start"])
    XCTAssertTrue(c.ok(["status"]).out.contains("cluster    node alpha;"))
  }

  func testANewerSchemaIsRefusedNamingBothVersions() throws {
    c.ok(["cluster", "migrate", "--postgres", pg.dsn])
    try pg.psql("INSERT INTO cortex_schema (version) VALUES (99)")
    for sub in ["migrate", "status"] {
      let r = c.run(["cluster", sub, "--postgres", pg.dsn])
      XCTAssertEqual(r.code, 1, r.err)
      XCTAssertTrue(r.err.contains("version 99") && r.err.contains("upgrade cortex"), r.err)
    }
    XCTAssertEqual(try pg.psql("SELECT max(version) FROM cortex_schema").trimmed, "99", "a newer schema was touched")
  }

  /// A login the server refuses (a wrong password, an unknown role or database) is a setting to
  /// fix: exit 1 with the server's reason, the user and where the server is. It exited 69, which
  /// SPEC §8 gives to "daemon not running".
  func testAWrongDSNOrPasswordIsAClearErrorWithoutThePassword() throws {
    try pg.psql("CREATE ROLE pwuser LOGIN SUPERUSER PASSWORD 'right-one'")
    c.ok(["cluster", "migrate", "--postgres", pg.dsn(user: "pwuser", password: "right-one")])
    var r = c.run(["cluster", "status", "--postgres", pg.dsn(user: "pwuser", password: "wrong-one")])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(
      r.err.contains("refused the login: password authentication failed for user \"pwuser\"")
        && r.err.contains("on socket \"\(pg.dir)/.s.PGSQL.\(pg.port)\"") && r.err.contains("check the user, password and database"), r.err)
    XCTAssertFalse(r.err.contains("not running"), r.err)
    XCTAssertFalse(r.err.contains("wrong-one"), "the password is in the message: \(r.err)")
    // A short password is hidden too, in a URL's query and in key/value form.
    for dsn in [pg.dsn(user: "pwuser", password: "Zq7"), "host=\(pg.dir) port=\(pg.port) user=pwuser password=Zq7 dbname=postgres"] {
      r = c.run(["cluster", "status", "--postgres", dsn])
      XCTAssertEqual(r.code, 1, r.err)
      XCTAssertTrue(r.err.contains("password authentication failed") && r.err.contains("password=[redacted]"), r.err)
      XCTAssertFalse(r.err.contains("Zq7"), "the password is in the message: \(r.err)")
    }
    // An unknown role and an unknown database are refused logins too.
    for (dsn, why) in [
      ("postgresql:///postgres?host=\(pg.dir)&port=\(pg.port)&user=nobody", "role \"nobody\" does not exist"),
      ("postgresql:///nodb?host=\(pg.dir)&port=\(pg.port)&user=cortex", "database \"nodb\" does not exist"),
    ] {
      r = c.run(["cluster", "status", "--postgres", dsn])
      XCTAssertEqual(r.code, 1, r.err)
      XCTAssertTrue(r.err.contains("refused the login: \(why)"), r.err)
    }
    // A server that is not there at all is still "cannot connect" (69: nothing to talk to).
    r = c.run(["cluster", "status", "--postgres", "postgresql:///postgres?host=\(pg.dir)&port=1&user=cortex"])
    XCTAssertEqual(r.code, 69, r.err)
    XCTAssertTrue(r.err.contains("cannot connect"), r.err)
    r = c.run(["cluster", "status", "--postgres", "not a dsn at all"])
    XCTAssertEqual(r.code, 69, r.err)
    // A connection string libpq cannot read is a setting to fix as well (it exited 69).
    r = c.run(["cluster", "status", "--postgres", "postgresql:///postgres?host=\(pg.dir)&port=\(pg.port)&user=cortex&bogus=1"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("connection string cannot be used: invalid URI query parameter: \"bogus\""), r.err)
    r = c.run(["cluster", "status"])
    XCTAssertEqual(r.code, 64, r.err)
    XCTAssertTrue(r.err.contains("--postgres"), r.err)
    // A node whose config.json has the wrong password: its start and `cluster status` say which
    // setting to fix, and exit 1.
    try c.initialize([("cluster", .object([("postgres", .string(pg.dsn(user: "pwuser", password: "wrong-one"))), ("node", .string("a"))]))])
    r = c.run(["cluster", "status"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("password authentication failed") && r.err.contains("cluster.postgres in \(c.paths.config)"), r.err)
    r = c.run(["start"])
    XCTAssertEqual(r.code, 1, r.err)
    XCTAssertTrue(r.err.contains("password authentication failed") && r.err.contains("cluster.postgres"), r.err)
    XCTAssertFalse(r.err.contains("wrong-one"), r.err)
  }
}
