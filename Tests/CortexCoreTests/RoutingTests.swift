import CortexCore
import Foundation
import XCTest

/// Routing by description (issue 17 part 5): tokenizer, rules, history, fallback, and the
/// held-out accuracy of the committed bench set against the committed figures.
final class RoutingTests: XCTestCase {
  func testTokenizerLowercasesSplitsDropsStopWordsAndNumbers() {
    XCTAssertEqual(Tokenizer.words("Fix CVE-2024-3094 in xz-utils!"), ["fix", "cve", "2024", "3094", "in", "xz", "utils"])
    XCTAssertEqual(Tokenizer.tokens("Fix CVE-2024-3094 in the xz-utils"), ["fix", "cve", "xz", "util"])
    XCTAssertEqual(Tokenizer.tokens("Review PR #1234 and leave comments"), ["review", "pr", "leav", "comment"])
    XCTAssertEqual(Tokenizer.tokens("Ünïcode café"), ["n", "code", "caf"], "non-ASCII letters separate words")
    XCTAssertEqual(Tokenizer.tokens(""), [])
  }

  func testStemMergesInflections() {
    for group in [["test", "tests", "testing", "tested"], ["scan", "scans", "scanning", "scanned"], ["update", "updated", "updates"]] {
      XCTAssertEqual(Set(group.map(Tokenizer.stem)).count, 1, "\(group) → \(group.map(Tokenizer.stem))")
    }
    XCTAssertEqual(Tokenizer.stem("dependencies"), "dependency")
    XCTAssertEqual(Tokenizer.stem("fixes"), "fix")
    XCTAssertEqual(Tokenizer.stem("class"), "class")
    XCTAssertEqual(Tokenizer.stem("status"), "status")
    XCTAssertEqual(Tokenizer.stem("pr"), "pr")
  }

  func testLogarithmWithoutFoundation() {
    for x in [1e-9, 0.5, 1, 2, 2.718281828459045, 10, 123_456.789, 1e12] {
      XCTAssertEqual(RoutingHistory.lnForTesting(x), Foundation.log(x), accuracy: 1e-12 * max(1, abs(Foundation.log(x))), "\(x)")
    }
  }

  func testKeywordRuleGivesTypeAndNamesThePhrases() {
    let d = Router().route("Upgrade openssl to fix CVE-2022-3602, a known vulnerability")
    XCTAssertEqual(d.type, "security")
    XCTAssertFalse(d.fellBack)
    XCTAssertTrue(d.reason.hasPrefix("keyword: cve, vulnerability"), d.reason)
    XCTAssertGreaterThan(d.confidence, 0.3)
    XCTAssertLessThan(d.confidence, 1)
    // A multi-word phrase matches only as consecutive words.
    XCTAssertEqual(Router().route("open a pull request for the bump").type, "pr")
    XCTAssertEqual(Router().keywordMatches(Tokenizer.tokens("pull the latest request")).filter { $0.type == "pr" }.count, 0)
  }

  func testHistoryAnswersWhereNoKeywordDoes() {
    let history = RoutingHistory([
      .init(id: "task-000007", description: "Rotate the staging kubeconfig and invalidate old ones", type: "security"),
      .init(id: "task-000008", description: "Write the quarterly OKR summary", type: "documentation"),
    ])
    let router = Router(history: history)
    XCTAssertEqual(router.route("rotate kubeconfig", useHistory: false).reason, "keyword: rotate")
    var rules = RoutingRules()
    rules.rules = rules.rules.map { ($0.type, $0.phrases.filter { $0.text != "rotate" }) }
    let d = Router(rules: rules, history: history).route("Invalidate the production kubeconfig")
    XCTAssertEqual(d.type, "security")
    XCTAssertTrue(d.reason.hasPrefix("similar to task-000007 ("), d.reason)
    XCTAssertEqual(Router(rules: rules).route("Invalidate the production kubeconfig").type, rules.defaultType)
  }

  func testBelowThresholdFallsBackToDefault() {
    let vague = "Add the thing we talked about"  // only "add" (implementation, weight 1): 1/(1+1) = 0.5
    var rules = RoutingRules()
    XCTAssertEqual(Router(rules: rules).route(vague).type, "implementation")
    rules.threshold = 0.6
    rules.defaultType = "analysis"
    let d = Router(rules: rules).route(vague)
    XCTAssertEqual(d.type, "analysis")
    XCTAssertTrue(d.fellBack)
    XCTAssertEqual(d.confidence, 0.5, accuracy: 1e-9)
    XCTAssertEqual(d.reason, "default: best was implementation at 0.50, below 0.60")
    let none = Router(rules: rules).route("zzz qqq")
    XCTAssertEqual(none.type, "analysis")
    XCTAssertEqual(none.reason, "default: no keyword or similar past task")
    XCTAssertEqual(none.confidence, 0)
  }

  func testConfigOverridesRulesDefaultAndThreshold() throws {
    let c = try Config.decode(
      try JSON.parse(
        #"{"routing":{"default_type":"analysis","threshold":0.4,"rules":{"security":["kubeconfig^4","cve"],"pr":[],"ops":["pager duty^2"]}}}"#
      ))
    let r = try XCTUnwrap(c.routing)
    XCTAssertEqual(r.defaultType, "analysis")
    XCTAssertEqual(r.threshold, 0.4)
    XCTAssertEqual(r.phrases("security")?.map(\.spec), ["kubeconfig^4", "cve"])
    XCTAssertEqual(r.phrases("security")?.first?.weight, 4)
    XCTAssertEqual(r.phrases("pr")?.count, 0)
    XCTAssertEqual(r.phrases("test"), RoutingRules().phrases("test"), "types not named keep their built-in phrases")
    let router = Router(rules: r)
    XCTAssertEqual(router.route("rotate the kubeconfig").type, "security")
    XCTAssertEqual(router.route("Page the on-call through pager duty").type, "ops")
    XCTAssertNotEqual(router.route("Open a pull request").type, "pr", "an empty list removes the type's rules")
    // The override survives a write and a read of config.json.
    XCTAssertEqual(try Config.decode(c.json()), c)
    XCTAssertNil(Config().routing)
    XCTAssertNil(Config().json()["routing"], "a default config does not spell the built-in rules out")
    for (text, field) in [
      (#"{"routing":{"treshold":0.4}}"#, "routing.treshold"), (#"{"routing":{"threshold":2}}"#, "routing.threshold"),
      (#"{"routing":{"rules":{"x":"cve"}}}"#, "routing.rules.x"), (##"{"routing":{"rules":{"x":["#!?"]}}}"##, "routing.rules.x"),
      (#"{"routing":[]}"#, "routing"),
    ] {
      XCTAssertThrowsError(try Config.decode(try JSON.parse(text))) { e in XCTAssertEqual((e as? SpecError)?.field, field, text) }
    }
  }

  /// A config with types of its own: only those can be the answer. "Fix the crash" matches the
  /// built-in `fix` rules, but a config without `fix` must not have it routed there (its task
  /// would be refused as an unknown type); the evidence of the types it has decides.
  func testRestrictedRulesAnswerOnlyTheConfiguredTypes() {
    let crash = "Fix the crash in the security login form"
    XCTAssertEqual(Router().route(crash).type, "fix")
    let r = RoutingRules().restricted(to: ["development", "security"])
    XCTAssertEqual(r.rules.map(\.type), ["development", "security"])
    let d = Router(rules: r).route(crash)
    XCTAssertEqual(d.type, "security", "\(d)")
    XCTAssertTrue(d.reason.hasPrefix("keyword: security"), d.reason)
    let none = Router(rules: r).route("Write a unit test for the parser")
    XCTAssertEqual(none.type, "development", "nothing of theirs matched: the default type")
    XCTAssertTrue(none.fellBack)
    XCTAssertEqual(RoutingRules().restricted(to: []).rules.count, 0)
    XCTAssertEqual(RoutingRules().restricted(to: RoutingRules().rules.map(\.type)), RoutingRules(), "all types: the same rules")
  }

  /// The committed figures (`docs/bench/routing/accuracy.json`) must still hold on the committed set.
  func testHeldOutAccuracyIsAtLeastTheCommittedFigure() throws {
    let dir = FileSystemPath.repo + "/docs/bench/routing/"
    let rows = try RoutingBench.parse(String(decoding: try FileManagerLite.read(dir + "descriptions.jsonl"), as: UTF8.self))
    XCTAssertGreaterThanOrEqual(rows.count, 300)
    XCTAssertEqual(Set(rows.map(\.id)).count, rows.count, "ids are unique")
    let heldOut = rows.filter(\.heldOut)
    XCTAssertGreaterThanOrEqual(heldOut.count, 100)
    XCTAssertEqual(Set(heldOut.map(\.type)), Set(RoutingRules.builtInRules.map(\.type)), "every type is held out")
    let result = RoutingBench.evaluate(rows)
    print(RoutingBench.report(result))
    // How the history weight was chosen: by leave-one-out accuracy on the train split only.
    for backOff in [true, false] {
      for k in [1, 3, 5] {
        for w in [0.5, 1, 2] {
          var rules = RoutingRules()
          rules.historyWeight = w
          rules.neighbours = k
          rules.historyOnlyWhenUnsure = backOff
          let r = RoutingBench.evaluate(rows, rules: rules)
          print(
            "\(backOff ? "back-off" : "blend") neighbours \(k) history_weight \(w): train leave-one-out"
              + " \(r.historyTrainLeaveOneOut.percent) (fell back \(r.historyTrainLeaveOneOut.fellBack)), held-out \(r.historyHeldOut.percent)"
          )
        }
      }
    }
    let committed = try JSON.parse(try FileManagerLite.read(dir + "accuracy.json"))
    let keyword = try XCTUnwrap(committed["heldout_keyword_pct"]?.double)
    let history = try XCTUnwrap(committed["heldout_keyword_history_pct"]?.double)
    XCTAssertEqual(committed["heldout_rows"]?.int, Int64(heldOut.count), "the figures were measured on this set")
    XCTAssertGreaterThanOrEqual(result.keywordHeldOut.accuracy * 100 + 1e-9, keyword, "keyword-only accuracy fell")
    XCTAssertGreaterThanOrEqual(result.historyHeldOut.accuracy * 100 + 1e-9, history, "keyword + history accuracy fell")
  }
}
