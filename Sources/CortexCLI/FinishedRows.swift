import CortexCore
import Posix

/// `cortex list`'s rows for older finished tasks. The daemon answers those with their compact
/// record only, id and final state (it keeps no more of them in memory once a restart or
/// retention has let them go, SPEC §13); the rest is read here from the task's own files, as
/// `cortex show` reads them: `result.json` (type, attempt, worker, duration, exit code) and
/// `spec.json` (priority, group, description, labels). A task whose files are gone (`cortex clean`,
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
    let spec = read(dir + "/spec.json")
    guard result != nil || spec != nil, var o = row.object else { return row }
    func add(_ k: String, _ v: JSON?) {
      guard let v, !v.isNull, !o.contains(where: { $0.0 == k }) else { return }
      o.append((k, v))
    }
    for k in ["type", "attempt", "worker_id", "exit_code", "signal", "duration_ms", "tokens_used"] { add(k, result?[k]) }
    add("priority", spec?["priority"])
    add("description", spec?["description"])
    add("labels", spec?["labels"])
    let type = spec?["type"]?.string ?? result?["type"]?.string
    add("group", .string(config.groupName(group: spec?["group"]?.string, type: type)))
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
