import CortexCore
import XCTest

/// Redaction rules (SPEC §9) and the scheduler's side of the secret store.
final class SecretTests: XCTestCase {
  func testSecretsByContentAreMaskedAndTheRestKept() {
    let cases: [(String, String?)] = [
      ("postgres://u:hunter2@db/x", "postgres://u:[redacted]@db/x"),
      ("curl -H 'Authorization: Bearer abcdefgh12345' http://x", "curl -H 'Authorization: Bearer [redacted]' http://x"),
      ("key sk-proj-abcdefghijklmnop1234 here", "key [redacted] here"),
      ("ghp_abcdefghijklmnopqrstuvwxyz0123", "[redacted]"),
      ("AKIAABCDEFGHIJKLMNOP", "[redacted]"),
      ("deploy --password=letmein99 now", "deploy --password=[redacted] now"),
      ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END", "[redacted]"),
      ("make test", nil), ("http://example.com/path", nil), ("ask-me-anything", nil), ("Bearer short", nil),
      ("TOKEN abcdefgh12 x", "TOKEN [redacted] x"), ("xsk-abcdefghijklmnopqr", nil),
      ("use AIza" + String(repeating: "a", count: 30), "use [redacted]"),
      ("a=1 API_KEY=abcd&b=2", "a=1 API_KEY=[redacted]&b=2"), ("API_KEY=abc", nil), ("ssh://me:pw@host", "ssh://me:[redacted]@host"),
      ("-----BEGIN CERTIFICATE-----\nPRIVATE KEY", nil),
    ]
    for (text, want) in cases { XCTAssertEqual(Redaction.mask(text), want, text) }
  }

  /// `isSecret` checks ASCII names on their bytes: the same answers as upper-casing the name and
  /// searching it for each word, which it still does for other names (`ſ` upper-cases to `S`).
  func testSecretNamesMatchUpperCasedWordSearch() {
    let words = ["TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "AUTHORIZATION", "COOKIE", "SESSION"]
    func reference(_ name: String) -> Bool { name != "XDG_SESSION_ID" && words.contains { name.uppercased().contains($0) } }
    let names = [
      "API_KEY", "api_key", "Monkey", "HOME", "PATH", "LS_COLORS", "github_token", "TOKE", "KE", "", "x", "db_passwd", "PassWord1",
      "SSH_AUTH_SOCK", "XDG_SESSION_ID", "Authorization", "AWS_SECRET_ACCESS_KEY", "PRIVATE", "privat", "cookie_jar", "ſecret",
      "ſ", "tökenizer", "TÖKEN", "SECRE", "KEYS", "k_e_y", "CREDENTIALS_FILE", "_", "ECRET", "SECRETKEY",
    ]
    for n in names { XCTAssertEqual(Redaction.isSecret(n), reference(n), n) }
    XCTAssertTrue(Redaction.isSecret("ſecret"))
    XCTAssertFalse(Redaction.isSecret("LS_COLORS"))
  }

  /// A desktop session's own variables are not credentials, and only those exact names are let
  /// through: a task submitted from a desktop terminal keeps a spec that can be retried.
  func testADesktopSessionsVariablesAreNotSecretsButLookalikesAre() {
    for n in ["XDG_SESSION_ID", "DBUS_SESSION_BUS_ADDRESS", "SESSION_MANAGER", "DESKTOP_SESSION", "GNOME_KEYRING_CONTROL"] {
      XCTAssertFalse(Redaction.isSecret(n), n)
    }
    for n in ["XDG_SESSION_TOKEN", "MY_SESSION_ID", "dbus_session_bus_address", "SESSION", "GNOME_KEYRING_PASSWORD"] {
      XCTAssertTrue(Redaction.isSecret(n), n)
    }
    var s = TaskSpec()
    s.command = ["true"]
    s.env = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1000/bus"), ("XDG_SESSION_ID", "3"), ("APP_SESSION", "s3cr3t")]
    let (red, secrets) = s.redacted()
    XCTAssertEqual(secrets.paths, ["env.APP_SESSION"])
    XCTAssertEqual(red.redactedPaths, ["env.APP_SESSION"])
  }

  func testRedactedSpecsRestoreExactly() {
    var s = TaskSpec()
    s.command = ["curl", "-H", "Authorization: Bearer abcdefgh12345678", "https://x"]
    s.env = [("API_KEY", "k-123"), ("HOME", "/root"), ("DSN", "mysql://a:b4cdef@h/d")]
    s.labels = [("session_id", "abc")]
    let (red, secrets) = s.redacted()
    XCTAssertEqual(secrets.paths, ["command[2]", "env.API_KEY", "env.DSN", "labels.session_id"])
    XCTAssertEqual(red.command?[2], "Authorization: Bearer [redacted]")
    XCTAssertEqual(red.env.map(\.1), ["[redacted]", "/root", "mysql://a:[redacted]@h/d"])
    var back = red
    XCTAssertEqual(back.restore(secrets), [])
    XCTAssertEqual(back, s)
  }

  /// The memo the scheduler keeps between submits changes no answer: specs redacted one after
  /// another through one memo come out exactly as each does alone, whether a name or value was
  /// seen clean before, first seen now, or secret; and it keeps no secret value.
  func testARedactionMemoGivesTheSameAnswersAndHoldsNoSecret() {
    func spec(_ env: [(String, String)], _ command: [String] = ["true"]) -> TaskSpec {
      var s = TaskSpec()
      s.command = command
      s.env = env
      s.labels = [("team", "infra"), ("api_key", "k-9")]
      return s
    }
    let home = ("HOME", "/root"), dsn = ("DSN", "postgres://u:hunter2@db/x"), key = ("API_KEY", "abc123")
    let specs = [
      spec([home, ("PATH", "/usr/bin")]), spec([home, dsn]), spec([home, ("PATH", "/usr/bin"), key]),
      spec([("DSN", "postgres://db/x"), ("HOME", "postgres://u:hunter2@db/x")]), spec([home], ["curl", "Bearer abcdefgh12345"]),
      spec([("API_KEY", "/root"), home]), spec([home, ("PATH", "/usr/bin")]),
    ]
    var memo = RedactionMemo()
    for s in specs {
      let alone = s.redacted()
      let memoized = s.redacted(memo: &memo)
      XCTAssertEqual(memoized.spec, alone.spec)
      XCTAssertEqual(memoized.secrets, alone.secrets)
    }
    XCTAssertEqual(specs[5].redacted(memo: &memo).secrets.paths, ["env.API_KEY", "labels.api_key"])
    var seen = RedactionMemo()
    for s in specs { _ = s.redacted(memo: &seen) }
    for secret in ["postgres://u:hunter2@db/x", "abc123", "k-9", "Bearer abcdefgh12345"] {
      XCTAssertFalse(seen.remembers(secret), secret)
    }
    XCTAssertTrue(seen.remembers("/usr/bin"))
    // Bounded: past its capacity it starts again.
    var big = RedactionMemo()
    for i in 0..<(RedactionMemo.capacity + 10) { _ = spec([("V\(i)", "value \(i)")]).redacted(memo: &big) }
    XCTAssertLessThanOrEqual(big.count, 2 * RedactionMemo.capacity)
    XCTAssertTrue(big.remembers("value \(RedactionMemo.capacity + 9)"))
  }

  func testAcceptStoresSecretsBeforeTheEventAndTheEventIsRedacted() {
    var sim = Sim(workers: 1)
    var spec = TaskSpec()
    spec.command = ["true"]
    spec.env = [("OPENAI_API_KEY", "sk-abcdefghijklmnopqrstuvwx")]
    var out: [Action] = []
    sim.s.handle(.submit(1, [spec]), now: sim.now, into: &out)
    let store = out.firstIndex { if case .storeSecrets = $0 { return true } else { return false } }
    let logged = out.firstIndex { if case .log(let e) = $0 { return e.type == "task.submitted" } else { return false } }
    XCTAssertNotNil(store)
    XCTAssertNotNil(logged)
    XCTAssertLessThan(store!, logged!)
    guard case .log(let e) = out[logged!] else { return }
    let text = String(decoding: e.specJSON ?? [], as: UTF8.self)
    XCTAssertFalse(text.contains("sk-abc"), text)
    // What the worker is sent is the real value.
    let run = out.compactMap { a -> TaskSpec? in
      if case .send(_, .run(_, _, _, _, let s, _)) = a { return s } else { return nil }
    }
    XCTAssertEqual(run.first?.env.first?.1, "sk-abcdefghijklmnopqrstuvwx")
  }
}
