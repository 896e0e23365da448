/// Secret values in task specs (SPEC §9). A value is secret by the name of its environment
/// variable or label (`*TOKEN*`, `*KEY*`, `*SECRET*`, `*PASSWORD*`, …) or by its content
/// (credentials in a URL, `Bearer`/`Basic` authorization, well-known key prefixes, private-key
/// blocks, `--password=…`-style assignments). The log, snapshots, `spec.json` and every answer
/// carry the redacted spec; the real values go to the 0600 secret store (`secrets.jsonl`) before
/// the task is acknowledged and are put back into the spec for every attempt, also after a restart.
public enum Redaction {
  public static let marker = "[redacted]"

  /// Words that make a name secret, upper case: a name is secret when its upper-case form contains one.
  static let secretWords: [[UInt8]] = [
    "TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "AUTHORIZATION", "COOKIE", "SESSION",
  ].map { Array($0.utf8) }

  /// Variables a desktop or terminal session sets in every shell whose names contain a secret
  /// word but whose values are addresses and identifiers, not credentials. Exact names only.
  /// Redacted, they made every task submitted from a desktop terminal one whose spec "lost its
  /// secret values" once it ended: not retryable after a restart, nor ever in cluster mode.
  static let notSecret: Set<String> = [
    "XDG_SESSION_ID", "XDG_SESSION_TYPE", "XDG_SESSION_CLASS", "XDG_SESSION_DESKTOP", "XDG_SESSION_PATH", "DESKTOP_SESSION",
    "DBUS_SESSION_BUS_ADDRESS", "SESSION_MANAGER", "GNOME_KEYRING_CONTROL", "GNOME_KEYRING_PID", "TERM_SESSION_ID",
    "ITERM_SESSION_ID", "WT_SESSION", "KEYTIMEOUT",
  ]

  /// True for names that look like they hold a secret. Runs for every variable of every submitted
  /// environment, so an ASCII name (all of them in practice) is checked on its bytes, without
  /// allocating; any other goes through Unicode upper-casing, which may turn a letter into ASCII
  /// ones (`ſ` becomes `S`).
  public static func isSecret(_ name: String) -> Bool {
    if notSecret.contains(name) { return false }
    var name = name
    return name.withUTF8 { b in
      guard b.allSatisfy({ $0 < 128 }) else {
        let u = String(decoding: b, as: UTF8.self).uppercased()
        return secretWords.contains { u.utf8.firstRange(of: $0) != nil }
      }
      for start in b.indices {
        let first = upper(b[start])
        for w in secretWords where w[0] == first && start + w.count <= b.count {
          var k = 1
          while k < w.count && upper(b[start + k]) == w[k] { k += 1 }
          if k == w.count { return true }
        }
      }
      return false
    }
  }

  /// The text with every secret-looking part replaced by `[redacted]`, or nil when there is none.
  public static func mask(_ text: String) -> String? {
    let b = Array(text.utf8)
    if b.count < 8 { return nil }
    var spans: [Range<Int>] = []
    var i = 0
    var scan = Scan()
    while i < b.count {
      if let r = secretSpan(b, at: i, &scan) {
        spans.append(r)
        i = r.upperBound
      } else {
        i += 1
      }
    }
    if spans.isEmpty { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(b.count)
    var last = 0
    for r in spans {
      out.append(contentsOf: b[last..<r.lowerBound])
      out.append(contentsOf: marker.utf8)
      last = r.upperBound
    }
    out.append(contentsOf: b[last...])
    return String(decoding: out, as: UTF8.self)
  }

  // MARK: content rules

  /// Token characters: letters, digits, `-`, `_`, `.`, `+`, `/`, `=`, `~`.
  static func isTokenByte(_ c: UInt8) -> Bool {
    isAlnum(c) || c == 45 || c == 95 || c == 46 || c == 43 || c == 47 || c == 61 || c == 126
  }
  static func isAlnum(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) }
  static func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c + 32 : c }
  static func upper(_ c: UInt8) -> UInt8 { c >= 97 && c <= 122 ? c - 32 : c }

  /// Whether `p` (lower case when `caseInsensitive`) starts at `b[i]`.
  static func hasPrefix(_ b: [UInt8], at i: Int, _ p: [UInt8], caseInsensitive: Bool = false) -> Bool {
    guard i + p.count <= b.count else { return false }
    for k in 0..<p.count {
      let x = caseInsensitive ? lower(b[i + k]) : b[i + k]
      if x != p[k] { return false }
    }
    return true
  }

  static func tokenEnd(_ b: [UInt8], from i: Int) -> Int {
    var j = i
    while j < b.count && isTokenByte(b[j]) { j += 1 }
    return j
  }

  /// Well-known key prefixes, each followed by at least `min` token characters.
  static let prefixes: [([UInt8], Int)] = [
    ("sk-", 16), ("sk_live_", 8), ("sk_test_", 8), ("rk_live_", 8), ("ghp_", 20), ("gho_", 20), ("ghu_", 20), ("ghs_", 20),
    ("ghr_", 20), ("github_pat_", 20), ("glpat-", 16), ("xoxb-", 10), ("xoxp-", 10), ("xoxa-", 10), ("AKIA", 16),
    ("ASIA", 16), ("AIza", 30), ("hf_", 20), ("npm_", 30), ("pypi-", 30),
  ].map { (Array($0.0.utf8), $0.1) }
  static let schemes: [[UInt8]] = ["bearer ", "basic ", "token "].map { Array($0.utf8) }
  static let schemeSeparator = Array("://".utf8)
  static let keyBlockBegin = Array("-----BEGIN ".utf8)
  static let privateKey = Array("PRIVATE KEY".utf8)

  /// What `secretSpan` found out at earlier positions of the same text, so that no byte is read
  /// again from each later position (that made masking quadratic: a 35 KB description of
  /// `-----BEGIN ` repeated held the daemon's loop for 6 s, and a request of a few hundred KB
  /// for hours).
  struct Scan {
    /// A `-----BEGIN ` line with no `PRIVATE KEY` in it ends here: a later start before it has none either.
    var keyLineEnd = 0
    /// A run of name bytes that is not a secret `NAME=value` ends here: neither is any later
    /// start inside it (the same `=` and value, and a name that is part of the one looked at).
    var nameRunEnd = 0
  }

  /// The span to hide if a secret starts at `i` (`scan`: what earlier positions found out).
  static func secretSpan(_ b: [UInt8], at i: Int, _ scan: inout Scan) -> Range<Int>? {
    let c = b[i]
    let boundary = i == 0 || !isAlnum(b[i - 1])
    // scheme://user:password@host — hide the password.
    if c == 58, hasPrefix(b, at: i, schemeSeparator) {
      var j = i + 3
      while j < b.count, b[j] != 58, b[j] != 64, b[j] != 47, b[j] != 32 { j += 1 }
      if j < b.count, b[j] == 58 {
        let start = j + 1
        var k = start
        while k < b.count, b[k] != 64, b[k] != 47, b[k] != 32 { k += 1 }
        if k < b.count, b[k] == 64, k > start { return start..<k }
      }
      return nil
    }
    guard boundary else { return nil }
    // Authorization schemes.
    for scheme in schemes where hasPrefix(b, at: i, scheme, caseInsensitive: true) {
      let start = i + scheme.count
      let end = tokenEnd(b, from: start)
      if end - start >= 8 { return start..<end }
    }
    // Private key blocks: everything to the end.
    if i >= scan.keyLineEnd, hasPrefix(b, at: i, keyBlockBegin) {
      var j = i + 11
      while j < b.count, b[j] != 10 {
        if hasPrefix(b, at: j, privateKey) { return i..<b.count }
        j += 1
      }
      scan.keyLineEnd = j
    }
    for (p, min) in prefixes where hasPrefix(b, at: i, p) {
      let end = tokenEnd(b, from: i + p.count)
      if end - (i + p.count) >= min { return i..<end }
    }
    // NAME=value or --name=value where the name looks secret: hide the value.
    if i >= scan.nameRunEnd, isAlnum(c) || c == 45 {
      var j = i
      while j < b.count, isAlnum(b[j]) || b[j] == 45 || b[j] == 95 { j += 1 }
      // The value is read only after a secret name (reading it after every `a=` was quadratic too).
      if j < b.count, b[j] == 61, j > i, isSecret(String(decoding: b[i..<j], as: UTF8.self)) {
        let start = j + 1
        var end = start
        while end < b.count, b[end] != 32, b[end] != 38, b[end] != 10, b[end] != 59 { end += 1 }
        if end - start >= 4 { return start..<end }
      }
      scan.nameRunEnd = j
    }
    return nil
  }
}

/// The secret values taken out of one spec: where each was (`env.NAME`, `command[2]`, `shell`,
/// `description`, `labels.K`) and its real value.
public struct SpecSecrets: Equatable, Sendable {
  public var values: [(path: String, value: String)]
  public init(_ values: [(path: String, value: String)] = []) { self.values = values }
  public var isEmpty: Bool { values.isEmpty }
  public var paths: [String] { values.map(\.path) }

  public static func == (a: SpecSecrets, b: SpecSecrets) -> Bool {
    a.values.count == b.values.count && zip(a.values, b.values).allSatisfy { $0.path == $1.path && $0.value == $1.value }
  }

  public func json() -> JSON { .array(values.map { .array([.string($0.path), .string($0.value)]) }) }

  public static func decode(_ v: JSON) -> SpecSecrets? {
    guard let a = v.array else { return nil }
    var out: [(String, String)] = []
    for e in a {
      guard let pair = e.array, pair.count == 2, let p = pair[0].string, let s = pair[1].string else { return nil }
      out.append((p, s))
    }
    return SpecSecrets(out)
  }
}

extension TaskSpec {
  /// The spec with its secret values redacted, and those values.
  public func redacted() -> (spec: TaskSpec, secrets: SpecSecrets) {
    var memo = RedactionMemo()
    return redacted(memo: &memo)
  }

  /// `redacted()`, skipping the names and values `memo` already found clean (and adding those
  /// this spec has).
  public func redacted(memo: inout RedactionMemo) -> (spec: TaskSpec, secrets: SpecSecrets) {
    var s = self
    var found: [(String, String)] = []
    // The path is built only for a value that is kept (most values are not secret).
    func check(_ path: @autoclosure () -> String, _ value: String, byName: Bool) -> String {
      if byName && !value.isEmpty {
        found.append((path(), value))
        return Redaction.marker
      }
      if let masked = memo.mask(value) {
        found.append((path(), value))
        return masked
      }
      return value
    }
    if let d = description { s.description = check("description", d, byName: false) }
    if let c = command { s.command = c.enumerated().map { check("command[\($0.offset)]", $0.element, byName: false) } }
    if let sh = shell { s.shell = check("shell", sh, byName: false) }
    s.env = env.map { ($0.0, check("env.\($0.0)", $0.1, byName: memo.isSecret($0.0))) }
    s.labels = labels.map { ($0.0, check("labels.\($0.0)", $0.1, byName: memo.isSecret($0.0))) }
    return (s, SpecSecrets(found))
  }

  /// Puts the real values back into a redacted spec. Returns the paths it could not place.
  @discardableResult
  public mutating func restore(_ secrets: SpecSecrets) -> [String] {
    var missed: [String] = []
    for (path, value) in secrets.values {
      if path == "description", description != nil {
        description = value
      } else if path == "shell", shell != nil {
        shell = value
      } else if path.hasPrefix("command["), path.hasSuffix("]"), let i = Int(path.dropFirst(8).dropLast()),
        let c = command, i >= 0, i < c.count
      {
        command![i] = value
      } else if path.hasPrefix("env."), let i = env.firstIndex(where: { $0.0 == path.dropFirst(4) }) {
        env[i].1 = value
      } else if path.hasPrefix("labels."), let i = labels.firstIndex(where: { $0.0 == path.dropFirst(7) }) {
        labels[i].1 = value
      } else {
        missed.append(path)
      }
    }
    return missed
  }

  /// The spec as stored in events and snapshots.
  public func redactedJSON() -> JSON { redacted().spec.json() }
}
