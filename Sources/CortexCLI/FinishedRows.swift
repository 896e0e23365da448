import CortexCore
import Posix

/// `cortex list`'s rows for older finished tasks. The daemon answers those with their compact
/// record only, id and final state (it keeps no more of them in memory once a restart or
/// retention has let them go, SPEC §13); the rest is read here from the task's own files as
/// `cortex show` reads them (`FinishedTaskFiles`). A task whose files are gone (`cortex clean`,
/// `retention.task_days`, a synthetic task, which never had any) keeps its compact row.
enum FinishedRows {
  /// `tasks` with each compact row filled from its files where they exist (still marked
  /// `"compact": true`). The group of a task without one comes from `config`'s worker types.
  static func fill(_ tasks: [JSON], paths: Paths, config: Config) -> [JSON] {
    tasks.map { t in
      guard t["compact"]?.bool == true, let id = t["id"]?.string, let n = TaskID.parse(id) else { return t }
      return fill(t, dir: paths.taskDir(n), config: config)
    }
  }

  static func fill(_ row: JSON, dir: String, config: Config) -> JSON {
    let result = read(dir + "/result.json")
    // Written since result.json holds what the list shows of the spec: one file, not two.
    let spec = FinishedTaskFiles.holdsSpecFields(result) ? nil : read(dir + "/spec.json")
    guard result != nil || spec != nil, var o = row.object else { return row }
    for (k, v) in FinishedTaskFiles.fields(result: result, spec: spec, config: config) where !o.contains(where: { $0.0 == k }) {
      o.append((k, v))
    }
    return .object(o)
  }

  static func read(_ path: String) -> JSON? {
    ((try? FileSystem.read(path)) ?? nil).flatMap { try? JSON.parse($0) }
  }

  /// The directory's config.json, or the defaults when it cannot be read (the groups of worker
  /// types are then unknown, and such tasks show as `default`).
  static func config(_ paths: Paths) -> Config {
    read(paths.config).flatMap { try? Config.decode($0) } ?? Config()
  }
}
