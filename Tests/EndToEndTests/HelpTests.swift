import CortexCore
import Posix
import XCTest

/// Every flag a command's parser reads is in that command's help table (so in `cortex help CMD`,
/// `cortex CMD --help`, the man page and the completions), and the help lists no flag the parser
/// never reads. The parser side is read from the sources: every string literal that looks like a
/// flag in a command's file, outside its help table. A failure names the file and the flag.
final class HelpTests: XCTestCase {
  static let repo: String = {
    var dir = "\(#filePath)"
    for _ in 0..<3 { dir = FileSystem.dirname(dir) }
    return dir
  }()

  struct Declared {
    let name: String
    let hidden: Bool
    let files: [String]
    let flags: [String]
  }

  func declared(_ c: Cortex) throws -> [Declared] {
    let r = c.run(raw: ["help", "--dump"])
    XCTAssertEqual(r.code, 0, r.err)
    return try (JSON.parse(Array(r.out.utf8)).array ?? []).map { d in
      Declared(
        name: d["name"]?.string ?? "", hidden: d["hidden"]?.bool ?? false,
        files: ([d["file"]?.string ?? ""] + (d["parsed_in"]?.array ?? []).compactMap(\.string)).map { "Sources/" + $0 },
        flags: (d["flags"]?.array ?? []).flatMap { $0.array?.compactMap(\.string) ?? [] })
    }
  }

  func testEveryParsedFlagIsInTheHelpTheManPageAndTheCompletions() throws {
    let c = try Cortex()
    defer { c.finish() }
    let commands = try declared(c)
    XCTAssertGreaterThan(commands.count, 20)
    let global = ["--dir", "--json", "--color", "-h", "--help"]
    // Flags a file passes to a child `cortex` it runs, not ones it parses.
    let passedOn: [String: Set<String>] = ["Sources/CortexCLI/BenchCommand.swift": ["--synthetic"]]

    // Every CLI source file: the flag literals outside help tables, checked against what may be there.
    var parsed: [String: Set<String>] = [:]
    for file in try Self.sources("Sources/CortexCLI") {
      guard let bytes = try FileSystem.read(Self.repo + "/" + file) else { continue }
      let source = String(decoding: bytes, as: UTF8.self)
      let flags = Self.flagLiterals(Self.withoutHelpTables(source))
      parsed[file] = flags
      let owners = commands.filter { $0.files.contains(file) }
      let allowed: Set<String>
      if file.hasSuffix("/CortexMain.swift") {
        allowed = Set(global + ["--version"])  // the global options' own parser
      } else if !owners.isEmpty {
        allowed = Set(global + owners.flatMap(\.flags)).union(passedOn[file] ?? [])
      } else if source.contains("inout Args") {
        for f in flags.sorted() where !global.contains(f) {
          XCTFail("\(file) parses \(f), but declares no help table: give its command a `static let help = CommandHelp(...)`")
        }
        continue
      } else {
        continue  // parses no command line (flags it holds are for other programs: git, fish, a child cortex)
      }
      for f in flags.sorted() where !allowed.contains(f) {
        let names = owners.map(\.name).joined(separator: ", ")
        XCTFail(
          "\(file) parses \(f), but the help table of \(names.isEmpty ? "no command" : names) does not list it: add it to `help`'s flags")
      }
    }
    for file in Set(commands.flatMap(\.files)) where parsed[file] == nil {
      XCTFail("\(file) is named by a help table but does not exist")
    }
    for cmd in commands {
      let literals = cmd.files.reduce(into: Set<String>()) { $0.formUnion(parsed[$1] ?? []) }
      for f in cmd.flags where !literals.contains(f) {
        XCTFail("the help of `\(cmd.name)` lists \(f), which its parser (\(cmd.files.joined(separator: ", "))) never reads")
      }
    }

    let man = c.run(raw: ["help", "--man"]).out
    XCTAssertTrue(man.hasPrefix(".\\\" cortex(1)"), "not a man page: \(man.prefix(80))")
    let completion = ["bash", "zsh", "fish"].map { c.run(raw: ["completions", $0]).out }
    for cmd in commands where !cmd.hidden {
      let text = c.run(raw: ["help", cmd.name])
      XCTAssertEqual(text.code, 0, text.err)
      XCTAssertEqual(c.run(raw: [cmd.name, "--help"]).out, text.out, "`cortex \(cmd.name) --help` differs from `cortex help \(cmd.name)`")
      XCTAssertTrue(text.out.contains("usage: cortex \(cmd.name)") || text.out.contains("usage: cortex \(cmd.name) "), text.out)
      XCTAssertTrue(text.out.contains("\nexamples:\n  "), "`cortex help \(cmd.name)` gives no example")
      XCTAssertTrue(man.contains(".SS \(cmd.name.replacingOccurrences("-", "\\-"))\n"), "the man page has no section for \(cmd.name)")
      for f in cmd.flags + global {
        XCTAssertTrue(text.out.contains(f), "`cortex help \(cmd.name)` does not show \(f)")
        XCTAssertTrue(man.contains("\\fB\(f.replacingOccurrences("-", "\\-"))\\fR"), "the man page does not show \(cmd.name) \(f)")
      }
      for (shell, script) in zip(["bash", "zsh", "fish"], completion) {
        XCTAssertTrue(script.contains(cmd.name), "the \(shell) completion does not offer \(cmd.name)")
        for f in cmd.flags {
          let spelled = shell == "fish" ? (f.hasPrefix("--") ? "-l \(f.dropFirst(2))" : "-s \(f.dropFirst())") : f
          XCTAssertTrue(script.contains(spelled), "the \(shell) completion does not offer \(cmd.name) \(f)")
        }
      }
    }
    let unknown = c.run(raw: ["help", "frobnicate"])
    XCTAssertEqual(unknown.code, 64)
    XCTAssertTrue(unknown.err.contains("unknown command 'frobnicate'"), unknown.err)
  }

  /// An unknown option before the command: the global option it is a typo of, or where a
  /// command's option goes.
  func testAnUnknownGlobalOptionSaysWhatWasMeant() throws {
    let c = try Cortex()
    defer { c.finish() }
    for (args, says) in [
      (["--dri", "/tmp", "status"], "unknown option --dri; did you mean --dir?"),
      (["--verison"], "unknown option --verison; did you mean --version?"),
      (["--workers", "4", "start"], "unknown option --workers (a command's options go after its name: cortex start --workers)"),
      (["--bogus"], "unknown option --bogus (a command's options go after its name: cortex COMMAND --bogus)"),
    ] {
      let r = c.run(raw: args)
      XCTAssertEqual(r.code, 64, "\(args): \(r.err)")
      XCTAssertTrue(r.err.hasPrefix("cortex: \(says)\n"), "\(args): \(r.err)")
    }
  }

  /// bash completion, run for real: commands, flags, flag values, worker types from config.json
  /// and task ids from the hot state of a running daemon.
  func testBashCompletionCompletesCommandsFlagsTypesAndTaskIDs() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(1))])
    c.ok(["start"])
    let id = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    let script = c.scratch + "/cortex.bash"
    try FileSystem.writeAtomically(script, Array(c.run(raw: ["completions", "bash"]).out.utf8), durable: false)
    func complete(_ words: [String]) -> [String] {
      let quoted = words.map { "'\($0)'" }.joined(separator: " ")
      let program = "source \(script); COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count - 1); _cortex; printf '%s\\n' \"${COMPREPLY[@]}\""
      let r = run(["/bin/bash", "--norc", "-c", program], path: FileSystem.dirname(Cortex.binary))
      return r.split(separator: "\n").map(String.init)
    }
    XCTAssertEqual(complete(["cortex", "sub"]), ["submit"])
    XCTAssertEqual(complete(["cortex", "submit", "--pri"]), ["--priority"])
    XCTAssertEqual(complete(["cortex", "submit", "--priority", ""]), ["critical", "high", "medium", "low"])
    XCTAssertTrue(complete(["cortex", "--dir", c.root, "submit", "--type", "re"]) == ["review"])
    XCTAssertEqual(complete(["cortex", "--dir", c.root, "show", ""]), [id], "task ids from the hot state")
    XCTAssertEqual(complete(["cortex", "--dir", c.root, "cancel", "task-"]), [id])
    XCTAssertEqual(complete(["cortex", "bench", "ram"]), ["ramp"])
    XCTAssertEqual(complete(["cortex", "help", "stat"]), ["status"])
    c.ok(["cancel", id])
  }

  /// `cortex show <Tab>` offered only unfinished tasks (the hot state lists no others), so a task
  /// that had just ended, the one a user asks `show`, `log` or `retry` about, was never completed.
  /// The newest ids are offered too, finished or not.
  func testTaskIDCompletionOffersTasksThatJustEnded() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(1))])
    c.ok(["start"])
    let failed = c.ok(["submit", "-p", "--wait", "--", "false"], code: 1).out.trimmed
    let running = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    defer { c.ok(["cancel", running]) }
    // Completion reads the hot state, written within 20 ms of a change (at once before a wait is
    // answered, which can put the next write 20 ms after the submit above).
    c.eventually("the hot state shows \(running)") {
      let t = (try? JSON.parse(Array(c.ok(["--json", "status"]).out.utf8)))?["tasks"]
      return ["queued", "assigned", "running"].compactMap { t?[$0]?.int }.reduce(0, +) == 1
    }
    let script = c.scratch + "/cortex.bash"
    try FileSystem.writeAtomically(script, Array(c.run(raw: ["completions", "bash"]).out.utf8), durable: false)
    for command in ["show", "log", "retry", "wait"] {
      let program =
        "source \(script); COMP_WORDS=(cortex --dir '\(c.root)' \(command) task-); COMP_CWORD=4; _cortex; printf '%s\\n' \"${COMPREPLY[@]}\""
      let out = run(["/bin/bash", "--norc", "-c", program], path: FileSystem.dirname(Cortex.binary))
      let words = out.split(separator: "\n").map(String.init)
      XCTAssertEqual(words.sorted(), [failed, running].sorted(), "cortex \(command) <Tab>")
    }
  }

  /// The words as bash itself hands them over: `=` is in COMP_WORDBREAKS, so `--dir=DIR` is three
  /// words (`--dir`, `=`, `DIR`) and `--priority=` ends in a word `=`; a tilde is not expanded;
  /// `cortex task create` is submit.
  func testBashCompletionOfWordsAsBashSplitsThem() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(1))])
    c.ok(["start"])
    let id = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    defer { c.ok(["cancel", id]) }
    let script = c.scratch + "/cortex.bash"
    try FileSystem.writeAtomically(script, Array(c.run(raw: ["completions", "bash"]).out.utf8), durable: false)
    func complete(_ words: [String]) -> [String] {
      let quoted = words.map { "'\($0)'" }.joined(separator: " ")
      let program =
        "HOME='\(c.scratch)'; source \(script); COMP_WORDS=(\(quoted)); COMP_CWORD=\(words.count - 1); _cortex; printf '%s\\n' \"${COMPREPLY[@]}\""
      return run(["/bin/bash", "--norc", "-c", program], path: FileSystem.dirname(Cortex.binary)).split(separator: "\n").map(String.init)
    }
    let coord = FileSystem.basename(c.root)
    // Ids come from the hot state, written within 20 ms of the submit's answer (a CI run read it
    // before and completed nothing).
    c.eventually("the hot state shows \(id)") { complete(["cortex", "--dir", c.root, "show", ""]) == [id] }
    XCTAssertEqual(complete(["cortex", "--dir", "=", c.root, "show", ""]), [id], "--dir=DIR")
    XCTAssertEqual(complete(["cortex", "show", "--dir", "=", c.root, ""]), [id], "--dir=DIR after the command")
    XCTAssertEqual(complete(["cortex", "--dir", "~/\(coord)", "cancel", ""]), [id], "--dir ~/DIR")
    XCTAssertEqual(complete(["cortex", "--color", "=", "never", "sta"]), ["start", "status"])
    XCTAssertEqual(complete(["cortex", "submit", "--priority", "="]), ["critical", "high", "medium", "low"])
    XCTAssertEqual(complete(["cortex", "submit", "--priority", "=", "hi"]), ["high"])
    XCTAssertEqual(complete(["cortex", "--dir", "=", c.root, "submit", "--type", "=", "re"]), ["review"])
    XCTAssertEqual(complete(["cortex", "ta"]), ["tail", "task"])
    XCTAssertEqual(complete(["cortex", "task", "cr"]), ["create"])
    XCTAssertEqual(complete(["cortex", "task", "create", "--pri"]), ["--priority"])
  }

  /// The zsh and fish scripts parse, and fish, run for real (`complete -C`), completes the task ids
  /// of the directory named by --dir on the line, a command after `--`, and `task create` as
  /// submit. (.ci/run installs zsh and fish.)
  func testZshAndFishScriptsParseAndFishCompletesWithDir() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(1))])
    c.ok(["start"])
    let id = c.ok(["submit", "-p", "--", "sleep", "30"]).out.trimmed
    defer { c.ok(["cancel", id]) }
    let zsh = c.scratch + "/_cortex"
    let fish = c.scratch + "/cortex.fish"
    try FileSystem.writeAtomically(zsh, Array(c.run(raw: ["completions", "zsh"]).out.utf8), durable: false)
    try FileSystem.writeAtomically(fish, Array(c.run(raw: ["completions", "fish"]).out.utf8), durable: false)
    for shell in ["/usr/bin/zsh", "/usr/bin/fish"] {
      XCTAssertTrue(FileSystem.exists(shell), "\(shell) is missing (.ci/run installs it)")
    }
    XCTAssertEqual(
      run(["/bin/sh", "-c", "/usr/bin/zsh -n \(zsh) && /usr/bin/fish -n \(fish) && echo parsed"], path: "/usr/bin"), "parsed\n")
    func complete(_ line: String) -> [String] {
      let program = "set -x HOME \(c.scratch); cd \(c.scratch); source \(fish); complete -C '\(line)'"
      return run(["/usr/bin/fish", "--no-config", "-c", program], path: FileSystem.dirname(Cortex.binary))
        .split(separator: "\n").map { String($0.prefix { $0 != "\t" }) }
    }
    // Run from a directory that is no project: only --dir names the one with the task.
    XCTAssertEqual(complete("cortex --dir \(c.root) show "), [id])
    XCTAssertEqual(complete("cortex --dir=\(c.root) cancel task-"), [id])
    XCTAssertEqual(complete("cortex show "), [], "no directory named, none found")
    XCTAssertTrue(complete("cortex submit -- slee").contains("sleep"), "a command after --")
    XCTAssertEqual(complete("cortex task "), ["create"])
    XCTAssertEqual(complete("cortex task create --pri"), ["--priority"], "task create is submit")
  }

  /// The man page lists every setting config.json takes, with the default `cortex init --no-start`
  /// writes and what it does. Before, it named config.json and nothing in it; seven settings
  /// (max_queue_wait_s, token_budget_total, …) were documented nowhere.
  func testTheManPageListsEverySettingWithTheDefaultInitWrites() throws {
    let c = try Cortex()
    defer { c.finish() }
    c.ok(["init", "--no-start"])
    let written = try XCTUnwrap(try JSON.parse(XCTUnwrap(FileSystem.read(c.paths.config))).object)
    let man = c.run(raw: ["help", "--man"]).out
    let section = man.split(separator: ".SH CONFIGURATION\n").dropFirst().first.map(String.init) ?? ""
    XCTAssertFalse(section.isEmpty, "the man page has no CONFIGURATION section")
    for (key, value) in written {
      let lines = section.split(separator: ".B \(key)\n").dropFirst().first?.split(separator: "\n")
      let shown = String(lines?.first ?? "")
      XCTAssertFalse(shown.isEmpty, "the man page does not list \(key)")
      if let pairs = value.object, key != "worker_types" {
        for (k, v) in pairs {
          XCTAssertTrue(shown.contains("\(k) \(v.encoded())"), "\(key).\(k) \(v.encoded()) is not in: \(shown)")
        }
      } else if key != "worker_types" {
        let want = "\(value.encoded()) \\(em "
        XCTAssertTrue(shown.hasPrefix(want), "\(key): the default \(value.encoded()) and what it does, not: \(shown)")
      }
    }
    for key in Config.settingNames { XCTAssertTrue(section.contains(".B \(key)\n"), "the man page does not list \(key)") }
  }

  /// The man page is plain ASCII: troff warns about other bytes ("invalid input character code
  /// 128" for an ellipsis in a help example) and `man` shows them as garbage in some locales.
  func testTheManPageIsASCII() throws {
    let c = try Cortex()
    defer { c.finish() }
    let man = c.run(raw: ["help", "--man"]).out
    let bad = man.split(separator: "\n").enumerated().filter { $0.element.utf8.contains { $0 > 0x7F } }
    XCTAssertTrue(bad.isEmpty, bad.prefix(3).map { "line \($0.offset + 1): \($0.element)" }.joined(separator: "\n"))
  }

  /// `--json help` promises JSON like every command (it printed the text): the command list, and
  /// one command's usage, flags with their defaults, and examples.
  func testHelpWithJSONIsJSON() throws {
    let c = try Cortex()
    defer { c.finish() }
    let listed = try JSON.parse(Array(c.run(raw: ["--json", "help"]).out.utf8)).array ?? []
    let names = listed.compactMap { $0["name"]?.string }
    XCTAssertTrue(names.contains("submit") && names.contains("cluster"), "\(names)")
    XCTAssertFalse(names.contains("__complete"), "a hidden command is listed")
    let submit = try JSON.parse(Array(c.run(raw: ["--json", "help", "submit"]).out.utf8))
    XCTAssertEqual(submit["name"]?.string, "submit")
    XCTAssertTrue(submit["usage"]?.string?.hasPrefix("cortex submit") == true, "\(submit)")
    let flags = submit["flags"]?.array ?? []
    let priority = flags.first { $0["names"]?.array?.contains(.string("--priority")) == true }
    XCTAssertEqual(priority?["default"]?.string, "medium", "\(priority as Any)")
    XCTAssertFalse((submit["examples"]?.array ?? []).isEmpty)
    XCTAssertEqual(c.run(raw: ["help", "submit", "--json"]).out, c.run(raw: ["--json", "help", "submit"]).out)
  }

  /// Every `cortex … | jq FILTER` example of the help texts and the man page names fields that
  /// the command's JSON has. Before, `cortex --json status | jq .queued` printed null (the count
  /// is `.tasks.queued`). The filters are paths (`.a.b`, `.[].id`), followed here without jq.
  func testTheJQExamplesOfTheHelpNameFieldsTheJSONHas() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("workers", .int(1))])
    c.ok(["start"])
    // A task that failed: its events carry a reason (`tail … | jq .reason`).
    let id = c.ok(["submit", "-p", "--wait", "--shell", "exit 3"], code: 3).out.trimmed
    var examples: [String] = []
    for cmd in try declared(c) where !cmd.hidden {
      examples += c.run(raw: ["help", cmd.name]).out.split(separator: "\n").map { String($0).trimmed }.filter { $0.hasPrefix("cortex ") }
    }
    let man = c.run(raw: ["help", "--man"]).out.split(separator: "\\-", omittingEmptySubsequences: false).joined(separator: "-")
    examples += man.split(separator: "\n").map { String($0).trimmed }.filter { $0.hasPrefix("cortex ") }
    let piped = Set(examples.filter { $0.contains(" | jq ") })
    XCTAssertGreaterThanOrEqual(piped.count, 3, "\(piped)")
    for example in piped.sorted() {
      let parts = example.split(separator: " | jq ").map(String.init)
      let args = parts[0].split(separator: " ").dropFirst().map { $0.hasPrefix("task-0") ? id : String($0) }
      let filter = parts[1].split(separator: " ").last.map { $0.filter { $0 != "'" } } ?? ""
      let r = c.run(raw: ["--dir", c.root] + args)
      XCTAssertEqual(r.code, 0, "\(example): \(r.err)")
      let docs = r.out.hasPrefix("[") || !r.out.contains("\n{") ? [r.out] : r.out.split(separator: "\n").map(String.init)
      var found: [JSON] = []
      for doc in docs {
        var values = [try JSON.parse(Array(doc.utf8))]
        for step in filter.split(separator: ".").map(String.init) {
          if step.hasSuffix("[]") {
            values = values.flatMap { $0.array ?? [] }
            continue
          }
          values = values.compactMap { $0[step] }.filter { if case .null = $0 { false } else { true } }
        }
        found += values
      }
      let command = "cortex " + args.joined(separator: " ")
      XCTAssertFalse(found.isEmpty, "`\(example)`: \(filter) is in none of `\(command)`'s JSON: \(r.out.prefix(300))")
    }
  }

  /// Runs argv with PATH = `path` and the rest of the environment, returns stdout.
  func run(_ argv: [String], path: String) -> String {
    let scratch = (try? FileSystem.makeTemporaryDirectory(prefix: "cortex-help-")) ?? "/tmp"
    defer { FileSystem.removeTree(scratch) }
    guard let out = try? FileDescriptor.open(scratch + "/out", [.writeOnly, .create, .truncate]) else { return "" }
    let env = Environment.all().filter { !$0.hasPrefix("PATH=") && !$0.hasPrefix("CORTEX_") } + ["PATH=\(path):/usr/bin:/bin"]
    guard let pid = try? Processes.spawn(argv, environment: env, stdin: nil, stdout: out, stderr: nil, newProcessGroup: false) else {
      out.close()
      return ""
    }
    out.close()
    _ = Processes.wait(pid)
    return String(decoding: ((try? FileSystem.read(scratch + "/out")) ?? nil) ?? [], as: UTF8.self)
  }

  /// The Swift files under `dir` (relative to the repository), recursively.
  static func sources(_ dir: String) throws -> [String] {
    var out: [String] = []
    for name in try FileSystem.list(repo + "/" + dir).sorted() {
      let path = dir + "/" + name
      if FileSystem.isDirectory(repo + "/" + path) { out += try sources(path) } else if name.hasSuffix(".swift") { out.append(path) }
    }
    return out
  }

  /// Swift source with every `CommandHelp(...)` call removed (string literals, which may hold
  /// parentheses, are skipped while matching).
  static func withoutHelpTables(_ source: String) -> String {
    let s = Array(source.utf8)
    let marker = Array("CommandHelp(".utf8)
    var out: [UInt8] = []
    var i = 0
    while i < s.count {
      if s[i] == marker[0], i + marker.count <= s.count, Array(s[i..<i + marker.count]) == marker {
        var depth = 0
        var j = i + marker.count - 1
        while j < s.count {
          if s[j] == UInt8(ascii: "\"") {
            j = skipString(s, j)
            continue
          }
          if s[j] == UInt8(ascii: "(") { depth += 1 }
          if s[j] == UInt8(ascii: ")") {
            depth -= 1
            if depth == 0 { break }
          }
          j += 1
        }
        i = j + 1
        continue
      }
      out.append(s[i])
      i += 1
    }
    return String(decoding: out, as: UTF8.self)
  }

  /// The index just past the string literal starting at `i` (`"…"` or `"""…"""`).
  static func skipString(_ s: [UInt8], _ i: Int) -> Int {
    let quote = UInt8(ascii: "\"")
    let triple = i + 2 < s.count && s[i + 1] == quote && s[i + 2] == quote
    var j = i + (triple ? 3 : 1)
    while j < s.count {
      if s[j] == UInt8(ascii: "\\") {
        j += 2
        continue
      }
      if s[j] == quote {
        if !triple { return j + 1 }
        if j + 2 < s.count && s[j + 1] == quote && s[j + 2] == quote { return j + 3 }
      }
      j += 1
    }
    return j
  }

  /// String literals that are a flag: `"--name"` or `"-x"`.
  static func flagLiterals(_ source: String) -> Set<String> {
    var out: Set<String> = []
    for piece in source.split(separator: "\"", omittingEmptySubsequences: false) {
      let p = piece.utf8
      guard p.count >= 2, p.first == UInt8(ascii: "-") else { continue }
      let body = p.drop { $0 == UInt8(ascii: "-") }
      let dashes = p.count - body.count
      guard dashes <= 2, let first = body.first, (first >= 97 && first <= 122) || (first >= 65 && first <= 90) else { continue }
      guard body.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 45 }) else {
        continue
      }
      if dashes == 1 && body.count != 1 { continue }
      out.insert(String(piece))
    }
    return out
  }
}

extension String {
  func replacingOccurrences(_ target: String, _ replacement: String) -> String {
    split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
  }
}
