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

  static func locate(option: String?, environment: String?, walkUp: Bool) -> DirectoryLookup {
    let cwd = FileSystem.currentDirectory()
    if let option { return DirectoryLookup(root: FileSystem.absolute(option), source: .option, start: cwd) }
    if let environment, !environment.isEmpty {
      return DirectoryLookup(root: FileSystem.absolute(environment), source: .environment, start: cwd)
    }
    if walkUp, let found = nearest(from: cwd) { return DirectoryLookup(root: found, source: .found, start: cwd) }
    return DirectoryLookup(root: join(cwd, "coordination"), source: .fallback, start: cwd)
  }

  /// The nearest `DIR/coordination` with a `config.json`, from `directory` up to `/`.
  static func nearest(from directory: String) -> String? {
    var dir = directory
    while true {
      let candidate = join(dir, "coordination")
      if FileSystem.exists(candidate + "/config.json") { return candidate }
      if dir == "/" || dir.isEmpty { return nil }
      dir = FileSystem.dirname(dir)
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

  /// What to tell a person whose daemon is not running here: how to start it for this directory,
  /// or, when no directory was found at all, where one would be looked for, so that nobody is
  /// told to start a second daemon below the project that already has one.
  func notRunningAdvice() -> String {
    switch source {
    case .fallback where !FileSystem.exists(root + "/config.json"):
      return
        "no coordination directory here: none in \(start) or any parent directory (a coordination/ with config.json); "
        + "run `cortex init` (or `cortex start`) in the project's top directory, or give --dir DIR or CORTEX_DIR"
    case .option, .environment:
      return meantInstead.map(meantInsteadText) ?? "start it with: cortex start --dir \(root)"
    default:
      return "start it with: cortex start --dir \(root)"
    }
  }
}
