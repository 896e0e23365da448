import CortexCore
import Posix
import XCTest

/// A command's own words (`group list|set`, `cluster migrate|status|budget`, the command after `help`,
/// the shell after `completions`) complete only its first operand. Before, every operand did:
/// `cortex group set <Tab>` offered `list set` again, in bash, zsh and fish. Now `group set`
/// offers the groups (config.json's and the daemon's), and the others nothing.
extension HelpTests {
  func testACommandsOwnWordsCompleteOnlyItsFirstOperandInBashZshAndFish() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("groups", .object([("batch", .object([("parallel", .int(2))])), ("openai", .object([("parallel", .int(4))]))]))])
    let complete = try completer(c)
    let commands = try declared(c).filter { !$0.hidden }.map(\.name)
    let cases: [([String], [String])] = [
      (["group"], ["list", "set"]),
      (["group", "set"], ["batch", "openai"]),
      (["group", "set", "--parallel", "3"], ["batch", "openai"]),
      (["group", "--parallel", "3", "set"], ["batch", "openai"]),
      (["group", "set", "batch"], []),
      (["group", "list"], []),
      (["cluster"], ["budget", "migrate", "status"]),
      (["cluster", "status"], []),
      (["help"], commands),
      (["help", "group"], []),
      (["completions"], ["bash", "fish", "zsh"]),
      (["completions", "bash"], []),
      (["bench", "ramp"], []),
    ]
    for (line, want) in cases {
      for (shell, got) in complete(line) {
        XCTAssertEqual(got.sorted(), want.sorted(), "\(shell): cortex \(line.joined(separator: " ")) <Tab>")
      }
    }
  }

  /// Groups made live (`group set`, a task's `--group`, `pause`) are offered beside config.json's,
  /// wherever a group name goes: `group set`, `submit`, `edit` and `list --group`, `pause` and
  /// `resume`. Before, only config.json's were, and only after `group set`. They come from the
  /// groups.json the daemon writes, so they are still offered while it is stopped.
  func testLiveGroupsCompleteWhereverAGroupNameGoes() throws {
    let c = try Cortex()
    defer { c.finish() }
    try c.initialize([("groups", .object([("batch", .object([("parallel", .int(2))]))]))])
    c.ok(["start", "--workers", "1"])
    c.ok(["group", "set", "live", "--parallel", "3"])
    c.ok(["submit", "--wait", "--group", "adhoc", "--synthetic", "1"])
    c.ok(["pause", "held"])
    let want = ["adhoc", "batch", "held", "live"]
    _ = c.eventually("groups.json names the live groups", timeoutS: 10) {
      let v = ((try? FileSystem.read(c.paths.groups)) ?? nil).flatMap { try? JSON.parse($0) }
      return Set(["adhoc", "held", "live"]).isSubset(of: Set(v?["groups"]?.array?.compactMap { $0["name"]?.string } ?? []))
    }
    let complete = try completer(c)
    func check(_ when: String) {
      for line in [["group", "set"], ["submit", "--group"], ["edit", "--group"], ["list", "--group"], ["pause"], ["resume"]] {
        for (shell, got) in complete(line) {
          // The default group is offered too when the daemon has it.
          XCTAssertEqual(got.filter { $0 != "default" }.sorted(), want, "\(when), \(shell): cortex \(line.joined(separator: " ")) <Tab>")
        }
      }
    }
    check("daemon running")
    c.ok(["stop"])
    check("daemon stopped")
  }

  /// For each shell, the words it offers for `cortex --dir ROOT LINE <Tab>`.
  func completer(_ c: Cortex) throws -> ([String]) -> [(String, [String])] {
    let scripts = (bash: c.scratch + "/cortex.bash", zsh: c.scratch + "/_cortex", fish: c.scratch + "/cortex.fish")
    for (shell, path) in [("bash", scripts.bash), ("zsh", scripts.zsh), ("fish", scripts.fish)] {
      try FileSystem.writeAtomically(path, Array(c.run(raw: ["completions", shell]).out.utf8), durable: false)
    }
    let driver = c.scratch + "/drive"
    // bash and zsh: the completion function, called with the words typed and an empty last one
    // (zsh's builtins that show candidates print them instead).
    try FileSystem.writeAtomically(
      driver + ".bash",
      Array(
        #"source "$1"; shift; COMP_WORDS=("$@" ""); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _cortex; printf '%s\n' "${COMPREPLY[@]}""#.utf8
      ),
      durable: false)
    try FileSystem.writeAtomically(
      driver + ".zsh",
      Array(
        """
        compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }
        _describe() { :; }
        _files() { print -- '<files>'; }
        _directories() { print -- '<directories>'; }
        source "$1"; shift; words=("$@" ""); CURRENT=${#words}; _cortex

        """.utf8), durable: false)
    let bin = FileSystem.dirname(Cortex.binary)
    func words(_ s: String) -> [String] { s.split(separator: "\n").map { String($0.prefix { $0 != "\t" }) }.filter { !$0.isEmpty } }
    func bash(_ line: [String]) -> [String] {
      words(run(["/bin/bash", "--norc", driver + ".bash", scripts.bash, "cortex", "--dir", c.root] + line, path: bin))
    }
    func zsh(_ line: [String]) -> [String] {
      words(run(["/usr/bin/zsh", "-f", driver + ".zsh", scripts.zsh, "cortex", "--dir", c.root] + line, path: bin))
    }
    func fish(_ line: [String]) -> [String] {
      let typed = (["cortex", "--dir", c.root] + line).joined(separator: " ") + " "
      return words(run(["/usr/bin/fish", "--no-config", "-c", "source \(scripts.fish); complete -C '\(typed)'"], path: bin))
    }
    return { line in [("bash", bash(line)), ("zsh", zsh(line)), ("fish", fish(line))] }
  }
}
