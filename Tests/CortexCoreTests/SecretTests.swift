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
    ]
    for (text, want) in cases { XCTAssertEqual(Redaction.mask(text), want, text) }
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
