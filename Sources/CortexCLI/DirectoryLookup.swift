import CortexCore
import Posix

/// Which coordination directory a command uses, and how it was chosen: `--dir DIR`, else
/// `$CORTEX_DIR`, else the nearest `coordination/` holding a `config.json` in the working
/// directory or any parent (as git finds `.git`), else `./coordination`. `cortex init` does not
/// walk up: it makes `./coordination` where it is run.
struct DirectoryLookup: Sendable {
  enum Source: Sendable {
    case option, environment, found, fallback
  }
  let root: String
  let source: Source
  /// Where the walk started (the working directory), for messages.
  let start: String
  /// Why the directory cannot be named, when it was to be found from a working directory whose
  /// name is not UTF-8 (a relative `--dir` or `CORTEX_DIR`, or neither given): Cortex keeps
  /// paths as UTF-8 text, so `root` names another directory, with U+FFFD where those bytes are,
  /// and `start` or `init` made that one (`caf\u{FFFD}` beside `caf\xe9`).
  var unnamable: String? = nil

  static func locate(option: String?, environment: String?, walkUp: Bool) -> DirectoryLookup {
    let cwd = FileSystem.currentDirectory()
    var lookup: DirectoryLookup
    if let option {
      lookup = DirectoryLookup(root: FileSystem.absolute(option), source: .option, start: cwd)
    } else if let environment, !environment.isEmpty {
      lookup = DirectoryLookup(root: FileSystem.absolute(environment), source: .environment, start: cwd)
    } else if walkUp, let found = nearest(from: cwd) {
      lookup = DirectoryLookup(root: found, source: .found, start: cwd)
    } else {
      lookup = DirectoryLookup(root: join(cwd, "coordination"), source: .fallback, start: cwd)
    }
    // getcwd's bytes are read again only when the name read has a U+FFFD in it.
    let named = lookup.source == .option ? option : lookup.source == .environment ? environment : nil
    if !(named?.hasPrefix("/") ?? false), cwd.contains("\u{FFFD}"), let raw = FileSystem.currentDirectoryNotUTF8() {
      let what =
        named.map { "\(lookup.source == .option ? "--dir" : "CORTEX_DIR") \(quoted($0)), a relative path," } ?? "the coordination directory"
      lookup.unnamable =
        "the working directory \(raw) is not valid UTF-8, so \(what) cannot be found from it (Cortex keeps paths as UTF-8 text): "
        + "give --dir (or CORTEX_DIR) an absolute UTF-8 path, or cd to a directory whose path is UTF-8"
    }
    return lookup
  }

  /// The nearest `DIR/coordination` with a `config.json`, from `directory` up to `/`. A working
  /// directory that getcwd(3) cannot give (deleted, or deeper than PATH_MAX) comes as ".", whose
  /// parent is itself: the walk ends there too.
  static func nearest(from directory: String) -> String? {
    var dir = directory
    while true {
      let candidate = join(dir, "coordination")
      if FileSystem.exists(candidate + "/config.json") { return candidate }
      let parent = FileSystem.dirname(dir)
      if parent == dir || dir.isEmpty { return nil }
      dir = parent
    }
  }

  static func join(_ dir: String, _ name: String) -> String { dir.hasSuffix("/") ? dir + name : dir + "/" + name }

  /// `--dir ~/project` (or `CORTEX_DIR`) for `~/project/coordination`: the directory meant, when
  /// the one named holds no config.json and its `coordination/` does (starting a daemon in the
  /// one named would make a second, empty directory beside the real one); else nil.
  var meantInstead: String? {
    guard source == .option || source == .environment else { return nil }
    let inner = Self.join(root, "coordination")
    guard !FileSystem.exists(root + "/config.json"), FileSystem.exists(inner + "/config.json") else { return nil }
    return inner
  }

  /// "ROOT holds no config.json, but INNER does: did you mean --dir INNER?" (or CORTEX_DIR=).
  func meantInsteadText(_ inner: String) -> String {
    "\(root) holds no config.json, but \(inner) does: did you mean \(source == .option ? "--dir \(inner)" : "CORTEX_DIR=\(inner)")?"
  }

  /// For a directory named by `--dir` or `$CORTEX_DIR` that holds no config.json: the Cortex
  /// directory that the walk from the working directory finds instead (a `CORTEX_DIR` exported
  /// for another project, a relative one read from a subdirectory, `--dir ../..`), else nil.
  var foundInstead: String? {
    guard source == .option || source == .environment, !FileSystem.exists(root + "/config.json") else { return nil }
    guard let found = Self.nearest(from: start), found != root else { return nil }
    return found
  }

  /// How the directory was named, for messages: `--dir X` or `CORTEX_DIR=X`.
  var named: String { source == .environment ? "CORTEX_DIR=\(root)" : "--dir \(root)" }

  /// What is wrong with a named directory that is not a Cortex directory, when starting a daemon
  /// there would be wrong: it is the project above the real one (`meantInstead`), it is not a
  /// directory, or the working directory belongs to another one (`foundInstead`). Else nil.
  func namedDirectoryProblem() -> String? {
    guard source == .option || source == .environment else { return nil }
    if let inner = meantInstead { return meantInsteadText(inner) }
    if FileSystem.exists(root) && !FileSystem.isDirectory(root) {
      return "\(root) (\(source == .environment ? "$CORTEX_DIR" : "--dir")) is not a directory; name the coordination directory"
        + (Self.nearest(from: start).map { ", e.g. \(source == .environment ? "CORTEX_DIR=" : "--dir ")\($0)" } ?? "")
    }
    if let found = foundInstead {
      let fix = source == .environment ? "unset CORTEX_DIR (or set it to \(found))" : "use --dir \(found)"
      return "\(named) holds no config.json, but \(found), found from the working directory, does: \(fix); "
        + "to make a new directory at \(root) anyway: cortex init --dir \(root)"
    }
    return nil
  }

  /// What to tell a person whose daemon is not running here: how to start it for this directory,
  /// or, when no directory was found at all, where one would be looked for, so that nobody is
  /// told to start a second daemon below the project that already has one (nor in a directory
  /// named by mistake while the working directory's project has its own).
  func notRunningAdvice() -> String {
    switch source {
    case .fallback where !start.hasPrefix("/"):
      return "the working directory cannot be read (deleted, or deeper than PATH_MAX): cd to the project, or give --dir DIR or CORTEX_DIR"
    case .fallback where !FileSystem.exists(root + "/config.json"):
      return
        "no coordination directory here: none in \(start) or any parent directory (a coordination/ with config.json); "
        + "run `cortex init` (or `cortex start`) in the project's top directory, or give --dir DIR or CORTEX_DIR"
    case .option, .environment:
      if let problem = namedDirectoryProblem() { return problem }
      if !FileSystem.exists(root) { return "\(named) does not exist yet; start it with: cortex start --dir \(root) (which makes it)" }
      return "start it with: cortex start --dir \(root)"
    default:
      return "start it with: cortex start --dir \(root)"
    }
  }
}
