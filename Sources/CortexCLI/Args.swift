import CortexCore
import Posix

/// A failure the CLI reports: message on stderr, a meaningful exit code (SPEC §8).
public struct CLIError: Error, CustomStringConvertible {
  public let code: Int32
  public let description: String
  /// The daemon's refusal, when it came from one (`reason`, `field`, `position`), for `--json`.
  var answer: JSON?
  public init(_ code: Int32, _ message: String) {
    self.code = code
    description = message
  }
  init(_ code: Int32, _ message: String, answer: JSON?) {
    self.code = code
    description = message
    self.answer = answer
  }
  /// The daemon's machine word for a refusal (`queue_full`, `too_many_connections`, …).
  var reason: String? { answer?["reason"]?.string }
  static func usage(_ m: String, _ usage: String) -> CLIError { CLIError(ExitCode.usage, "\(m)\nusage: \(usage)") }
}

public enum ExitCode {
  public static let ok: Int32 = 0
  public static let failure: Int32 = 1
  public static let usage: Int32 = 64
  public static let invalidSpec: Int32 = 65
  public static let notRunning: Int32 = 69
  public static let refused: Int32 = 75
}

/// Command-line words after the command name. Options are taken out by name (`--x V` or `--x=V`);
/// what is left must be positional, and `--` ends the options.
struct Args {
  var words: [String]
  var afterDashDash: [String] = []
  /// The usage line for error messages: built only when one is reported (a command's help table
  /// is not needed to run it).
  private let usageText: () -> String
  var usage: String { usageText() }
  /// Every option and flag name the command asked for: what an unknown one may be a typo of.
  private var asked: [String] = []

  init(_ words: [String], usage: @escaping @autoclosure () -> String) {
    if let i = words.firstIndex(of: "--") {
      self.words = Array(words[..<i])
      afterDashDash = Array(words[(i + 1)...])
    } else {
      self.words = words
    }
    usageText = usage
  }

  mutating func flag(_ names: String...) -> Bool {
    asked += names
    var found = false
    words.removeAll { w in
      if names.contains(w) {
        found = true
        return true
      }
      return false
    }
    return found
  }

  /// The value of `--name` (a missing value is a usage error). Given more than once, the last
  /// wins, as with most Unix tools: `alias cs='cortex submit --priority high'; cs --priority low`.
  mutating func option(_ names: String...) throws(CLIError) -> String? { try single(names) }

  private mutating func single(_ names: [String]) throws(CLIError) -> String? { try options(names).last }

  /// Every value given to a repeatable option.
  mutating func options(_ names: [String]) throws(CLIError) -> [String] {
    asked += names
    var out: [String] = []
    var i = 0
    while i < words.count {
      let w = words[i]
      if let name = names.first(where: { w == $0 }) {
        guard i + 1 < words.count else { throw CLIError.usage("\(name) needs a value", usage) }
        out.append(words[i + 1])
        words.removeSubrange(i...(i + 1))
        continue
      }
      if let name = names.first(where: { w.hasPrefix($0 + "=") }) {
        out.append(String(w.dropFirst(name.count + 1)))
        words.remove(at: i)
        continue
      }
      // A one-letter option with its value attached, as getopt(3) takes it: `-n2` is `-n 2`.
      if w.count > 2, names.contains(where: { $0.count == 2 && $0 != "--" && w.hasPrefix($0) }) {
        out.append(String(w.dropFirst(2)))
        words.remove(at: i)
        continue
      }
      i += 1
    }
    return out
  }

  mutating func intOption(_ names: String..., min: Int = Int.min, max: Int = Int.max) throws(CLIError) -> Int? {
    guard let raw = try single(names) else { return nil }
    guard let v = Int(raw), v >= min, v <= max else {
      let range = max == Int.max ? "at least \(min)" : "from \(min) to \(max)"
      throw CLIError.usage("\(names[0]) must be a whole number \(range), not \(quoted(raw))", usage)
    }
    return v
  }

  /// Whole seconds: a number (`30`) or a duration like those of `--timeout` elsewhere (`30s`,
  /// `5m`, `1h`; rounded up to a second), from `min` to `max`.
  mutating func secondsOption(_ name: String, min: Int, max: Int) throws(CLIError) -> Int? {
    guard let raw = try single([name]) else { return nil }
    let seconds = Int(raw) ?? DurationText.parseMs(raw).map { Int(($0 + 999) / 1000) }
    guard let v = seconds, v >= min, v <= max else {
      throw CLIError.usage("\(name) must be seconds (30) or a duration (30s, 5m) from \(min) to \(max) s, not \(quoted(raw))", usage)
    }
    return v
  }

  /// The positional words; any leftover option is an error naming it, and the option the
  /// command knows that it is most likely a typo of.
  mutating func positionals() throws(CLIError) -> [String] {
    if let bad = words.first(where: { $0.hasPrefix("-") && $0 != "-" }) {
      let name = String(bad.prefix { $0 != "=" })
      let near = Suggest.nearest(name, among: asked.filter { $0.hasPrefix("--") })
      throw CLIError.usage("unknown option \(bad)" + (near.map { "; did you mean \($0)?" } ?? ""), usage)
    }
    return words
  }

  mutating func noPositionals() throws(CLIError) {
    let p = try positionals()
    if let extra = p.first { throw CLIError.usage("unexpected argument \(quoted(extra))", usage) }
  }
}

/// What every command gets: the directory and output preferences.
struct Context {
  let paths: Paths
  let json: Bool
  let color: Bool
  /// How `paths.root` was chosen (`--dir`, `$CORTEX_DIR`, found by walking up, or the default).
  var lookup: DirectoryLookup? = nil
  private let givenExecutable: String?

  /// This binary's path, for the commands that start daemons, workers or submitters: read from
  /// /proc/self/exe when asked (a `readlink` and a 4 KiB buffer), not at every start.
  var executable: String { givenExecutable ?? Processes.executablePath() }

  init(paths: Paths, json: Bool, color: Bool, executable: String? = nil, lookup: DirectoryLookup? = nil) {
    self.paths = paths
    self.json = json
    self.color = color
    self.givenExecutable = executable
    self.lookup = lookup
  }

  /// The directory was named (`--dir`, `$CORTEX_DIR`) rather than found or defaulted.
  var directoryNamed: Bool { lookup.map { $0.source == .option || $0.source == .environment } ?? true }

  /// A daemon that last ran as a systemd service is started by its unit (service.json).
  var serviceAdvice: String? {
    ((try? FileSystem.read(paths.service)) ?? nil).flatMap { try? JSON.parse($0) }.flatMap(SystemdService.decode)?.startAdvice
  }

  /// How to get a daemon running for this directory (DirectoryLookup.notRunningAdvice); where no
  /// daemon can run (a socket path too long), why, instead of a start that would be refused.
  var startAdvice: String {
    if let problem = paths.socketPathProblem { return "no daemon can run there: " + problem }
    return serviceAdvice ?? lookup?.notRunningAdvice() ?? "start it with: cortex start --dir \(paths.root)"
  }

  func out(_ s: String) { try? FileDescriptor.standardOutput.writeAll(s) }
  func err(_ s: String) { try? FileDescriptor.standardError.writeAll(s) }
  func printJSON(_ v: JSON) { out(v.encoded() + "\n") }

  func bold(_ s: String) -> String { color ? "\u{1B}[1m\(s)\u{1B}[0m" : s }
  func dim(_ s: String) -> String { color ? "\u{1B}[2m\(s)\u{1B}[0m" : s }
  func paint(_ state: String) -> String {
    guard color else { return state }
    switch state {
    case "succeeded": return "\u{1B}[32m\(state)\u{1B}[0m"
    case "failed", "timed_out", "rejected": return "\u{1B}[31m\(state)\u{1B}[0m"
    case "cancelled": return "\u{1B}[33m\(state)\u{1B}[0m"
    case "running", "assigned": return "\u{1B}[36m\(state)\u{1B}[0m"
    default: return state
    }
  }
}

/// Characters of `s` a terminal shows: those of an SGR sequence (ESC [ … m, as `Context.paint`
/// writes) take no column.
func shownWidth(_ s: String) -> Int {
  // Most cells are plain ASCII: one column per byte, counted without walking the characters.
  var ascii = true
  var escape = false
  for b in s.utf8 {
    if b >= 0x80 { ascii = false }
    if b == 0x1B { escape = true }
  }
  if ascii && !escape { return s.utf8.count }
  guard escape else { return s.count }
  var n = 0
  var inEscape = false
  for ch in s {
    if inEscape {
      if ch.isLetter { inEscape = false }
    } else if ch == "\u{1B}" {
      inEscape = true
    } else {
      n += 1
    }
  }
  return n
}

/// C0 controls, DEL and C1 controls (0x80–0x9F, which some terminals also obey).
/// Fixed-width text tables for people. Widths count what a terminal shows: a painted cell's
/// color codes take no column.
func table(_ header: [String], _ rows: [[String]]) -> String {
  // Each cell's width is counted once (a list of twenty thousand tasks has 180,000 cells).
  let shown = [header.map(shownWidth)] + rows.map { $0.map(shownWidth) }
  var widths = shown[0]
  for r in shown.dropFirst() { for (i, w) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], w) } }
  var s = ""
  for (cells, cellWidths) in zip([header] + rows, shown) {
    for (i, c) in cells.enumerated() {
      s += c
      if i < cells.count - 1 { s += String(repeating: " ", count: widths[i] - cellWidths[i] + 2) }
    }
    s += "\n"
  }
  return s
}

func formatMs(_ ms: Int64) -> String {
  if ms < 1000 { return "\(ms)ms" }
  if ms < 60_000 { return "\(Double(ms / 10) / 100)s" }
  if ms < 3_600_000 { return "\(ms / 60_000)m\((ms / 1000) % 60)s" }
  return "\(ms / 3_600_000)h\((ms / 60_000) % 60)m"
}
