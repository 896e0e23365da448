/// How `task create` without `--type` picks a type: keyword rules per type, the weight given to
/// similar past descriptions, and the type used when neither is confident enough.
/// `config.json` may override any part under `"routing"`:
///
///     "routing": {"default_type": "development", "threshold": 0.3,
///                 "rules": {"security": ["cve^3", "vulnerability^2", "xss"], "pr": []}}
///
/// A type named under `rules` replaces that type's built-in phrases (an empty list removes the
/// type from keyword routing); types not named keep theirs. A phrase is one or more words that
/// must appear next to each other in the description (after `Tokenizer.tokens`); `^N` gives it
/// weight N (default 1).
public struct RoutingRules: Equatable, Sendable {
  public struct Phrase: Equatable, Sendable {
    public var text: String
    public var tokens: [String]
    public var weight: Double

    /// Parses "words" or "words^weight".
    public init(_ spec: String) {
      var text = spec
      var weight = 1.0
      if let caret = spec.lastIndex(of: "^"), let w = Double(spec[spec.index(after: caret)...]), w > 0, w.isFinite {
        text = String(spec[..<caret])
        weight = w
      }
      self.text = text
      self.tokens = Tokenizer.tokens(text)
      self.weight = weight
    }

    public var spec: String { weight == 1 ? text : "\(text)^\(weight == weight.rounded() ? String(Int(weight)) : String(weight))" }
  }

  public var rules: [(type: String, phrases: [Phrase])]
  public var defaultType: String
  /// Below this confidence the router answers `defaultType`.
  public var threshold: Double
  /// How much the summed similarity of past descriptions of a type counts against one keyword weight.
  public var historyWeight: Double
  /// Past descriptions consulted.
  public var neighbours: Int
  /// Consult the history only when the keyword rules alone fall below the threshold ("back
  /// off"), instead of adding its votes to every decision ("blend"). Chosen by leave-one-out
  /// accuracy on the bench's train split (docs/bench/routing.md).
  public var historyOnlyWhenUnsure = true
  /// Names of the types whose rules `config.json` replaced, for `json()`.
  var overridden: [String] = []

  public static func == (a: RoutingRules, b: RoutingRules) -> Bool {
    a.defaultType == b.defaultType && a.threshold == b.threshold && a.historyWeight == b.historyWeight
      && a.neighbours == b.neighbours && a.historyOnlyWhenUnsure == b.historyOnlyWhenUnsure && a.rules.count == b.rules.count
      && zip(a.rules, b.rules).allSatisfy { $0.type == $1.type && $0.phrases == $1.phrases }
  }

  public init(
    rules: [(type: String, phrases: [Phrase])] = RoutingRules.builtInRules, defaultType: String = "development",
    threshold: Double = 0.3, historyWeight: Double = 1, neighbours: Int = 5
  ) {
    self.rules = rules
    self.defaultType = defaultType
    self.threshold = threshold
    self.historyWeight = historyWeight
    self.neighbours = neighbours
  }

  /// The rules for a config that defines only `types`: a type it does not define is never the
  /// answer, whatever its phrases match (its task would be refused as an unknown type). The
  /// default type is kept as it is; the caller says when the config lacks it.
  public func restricted(to types: [String]) -> RoutingRules {
    var r = self
    r.rules = rules.filter { types.contains($0.type) }
    r.overridden = overridden.filter { types.contains($0) }
    return r
  }

  public func phrases(_ type: String) -> [Phrase]? {
    for r in rules where r.type == type { return r.phrases }
    return nil
  }

  /// Written from general knowledge of what agents are asked to do, not from the bench set's
  /// wording. Weight 2–3 for words that name one kind of work; 1 for words shared by several.
  public static let builtInRules: [(type: String, phrases: [Phrase])] = [
    (
      "development",
      [
        "refactor^2", "rename", "bump^2", "upgrade^2", "migrate", "dependency", "dependencies", "clean up", "tidy",
        "scaffold^2", "extract", "convert", "rewrite", "port", "makefile", "gitignore",
        "deprecated", "remove", "move", "pin", "version", "restructure", "modernize",
      ]
    ),
    (
      "security",
      [
        "cve^3", "vulnerability^2", "vulnerable^2", "security^2", "xss^3", "csrf^3", "injection^3", "exploit^2",
        "exploitable^2", "harden^2", "leaked^2", "credentials", "tls", "encrypt", "least privilege^3", "iam",
        "permissions", "brute force^2", "ssrf^3", "path traversal^3", "advisory^2", "ghsa^3", "pen test^3",
        "penetration^3", "threat model^3", "bug bounty^3", "rotate", "content security policy^2", "sanitize",
        "attack", "malicious", "suspicious", "secure", "signed", "pii",
      ]
    ),
    (
      "inventory",
      [
        "inventory^3", "list all^2", "list every^2", "enumerate^2", "catalog^3", "catalogue^3", "which services",
        "which repositories", "take stock^3", "itemize^3", "how many", "count", "who owns^2", "owners", "spreadsheet",
        "list", "gather", "collect",
      ]
    ),
    (
      "cicd",
      [
        "ci^3", "cd", "pipeline^3", "workflow^3", "workflows^3", "github actions^3", "gitlab ci^3", "jenkins^3",
        "jenkinsfile^3", "circleci^3", "buildkite^3", "deploy^2", "deployment", "release job^3", "runner^2",
        "runners^2", "continuous integration^3", "continuous deployment^3", "argo^2", "dependabot^2", "build matrix^3",
        "matrix", "artifact", "build", "builds", "spinnaker^3", "canary", "rollback", "required check^2",
      ]
    ),
    (
      "scan",
      [
        "scan^3", "scanner^3", "semgrep^3", "trivy^3", "gitleaks^3", "grep^2", "find all^2", "find every^2", "search",
        "look for^2", "look through", "sweep^2", "lint", "audit", "shellcheck^3", "bandit^3", "clippy^3",
        "static analysis^3", "todo^2", "fixme^2", "broken links^2", "dead code^2", "unused", "detect", "tfsec^3",
        "find",
      ]
    ),
    (
      "fix",
      [
        "fix^2", "bug^2", "crash^2", "crashes^2", "broken", "error", "exception^2", "regression", "wrong^2",
        "incorrect^2", "doesn't", "does not", "can't", "fails", "failing", "panic^2", "segfault^3", "leak",
        "deadlock^2", "race condition^2", "resolve", "repair^2", "issue", "typo", "ignores",
        "infinite loop^2",
      ]
    ),
    (
      "analysis",
      [
        "why^3", "analyze^3", "analyse^3", "analysis^3", "investigate^2", "profile^2", "explain", "root cause^3",
        "estimate^2", "compare^2", "measure^2", "assess^2", "assessment^2", "evaluate", "benchmark", "understand",
        "diagnose^2", "research^2", "figure out", "break down^2", "summarize", "quantify^3", "determine",
        "what would", "flame graph^2", "latency", "bottleneck^2", "trace",
      ]
    ),
    (
      "implementation",
      [
        "implement^3", "add support^2", "support for", "build", "create", "feature", "endpoint^2", "api", "new",
        "integration", "develop", "page", "screen", "add", "flag",
      ]
    ),
    (
      "test",
      [
        "test^3", "tests^3", "unit test^3", "integration test^3", "coverage^2", "flaky^3", "e2e^3", "end to end^2",
        "fixtures^2", "mock^2", "fuzz^2", "pytest^3", "xctest^3", "jest^3", "playwright^2", "assertions", "load test^3",
        "terratest^3", "mutation testing^3",
      ]
    ),
    (
      "review",
      [
        "review^3", "feedback^2", "code review^3", "look over^2", "critique^3", "sanity check^2", "diff", "approve",
        "comments", "read through", "go through", "before merging",
      ]
    ),
    (
      "pr",
      [
        "pull request^3", "pr^3", "prs^3", "merge request^3", "rebase^2", "merge^2", "squash^2", "cherry pick^2",
        "backport^3", "force push^2", "draft pr^3", "reviewers^2", "conflicts^2", "push", "branch", "open", "retarget^3",
      ]
    ),
    (
      "documentation",
      [
        "docs^3", "documentation^3", "document^3", "readme^2", "docstrings^3", "guide^2", "tutorial^3", "changelog^2",
        "release notes^3", "manual^2", "wiki^2", "comments", "runbook^3", "faq^3", "man page^3", "adr^3",
        "architecture decision record^3", "jsdoc^3", "docc^3", "contributing^2", "explain", "diagram^2",
      ]
    ),
  ].map { ($0.0, $0.1.map(Phrase.init)) }

  public func json() -> JSON {
    var o: [(String, JSON)] = [
      ("default_type", .string(defaultType)), ("threshold", .double(threshold)),
    ]
    if !overridden.isEmpty {
      o.append(
        (
          "rules",
          .object(overridden.map { name in (name, .array((phrases(name) ?? []).map { .string($0.spec) })) })
        ))
    }
    return .object(o)
  }

  /// The `"routing"` object of `config.json`, applied over the built-in rules.
  public static func decode(_ v: JSON) throws(SpecError) -> RoutingRules {
    guard let pairs = v.object else { throw SpecError("routing", "must be an object") }
    var r = RoutingRules()
    for (k, val) in pairs {
      let f = "routing.\(k)"
      switch k {
      case "default_type": r.defaultType = try TaskSpec.nonEmptyString(f, val)
      case "threshold": r.threshold = try Numbers.double(f, val, min: 0, max: 1)
      case "rules":
        guard let o = val.object else { throw SpecError(f, "must be an object of type names to lists of phrases") }
        for (name, pv) in o {
          guard let a = pv.array, a.allSatisfy({ $0.string != nil }) else {
            throw SpecError("\(f).\(name)", "must be an array of strings")
          }
          let phrases = a.map { Phrase($0.string!) }
          if let bad = phrases.first(where: { $0.tokens.isEmpty }) {
            throw SpecError("\(f).\(name)", "\(quoted(bad.text)) has no words routing can match")
          }
          if let i = r.rules.firstIndex(where: { $0.type == name }) {
            r.rules[i].phrases = phrases
          } else {
            r.rules.append((name, phrases))
          }
          if !r.overridden.contains(name) { r.overridden.append(name) }
        }
      default: throw SpecError(f, "unknown setting")
      }
    }
    return r
  }
}
