/// What a finished task's own files say about it, for a task the daemon holds only as a compact
/// record (after a restart or retention, SPEC §13): every field of its `result.json` (type,
/// attempt, worker, exit code, times, tokens) but `id` and `state`, then what result.json does
/// not say and the spec does: priority, description, labels, max_attempts, retry_of, and the
/// group (its own, else its worker type's in `config`, as for a task held in memory). `cortex
/// show` (the daemon, for one task) and `cortex list` (the CLI, for its rows) both read them so.
///
/// A result.json written since it holds the spec's fields that `list` shows (`specCopied`, as
/// the spec.json has them: redacted) needs no spec.json for them (`holdsSpecFields`): a list of
/// twenty thousand old tasks reads one file per task, not two. The fields come out the same,
/// in the same order, from either file.
public enum FinishedTaskFiles {
  /// The spec's fields result.json also holds: the spec's own group, not the one it resolves to.
  public static let specCopied = ["priority", "description", "labels", "retry_of", "group"]

  /// Whether `result` holds `specCopied` (every task has a priority, so a result.json with none
  /// was written before it held them).
  public static func holdsSpecFields(_ result: JSON?) -> Bool { result?["priority"] != nil }

  /// result.json's fields taken in the spec's place, or not at all.
  static let notFromResult = Set(["id", "state"] + specCopied)

  public static func fields(result: JSON?, spec: JSON?, config: Config) -> [(String, JSON)] {
    var o: [(String, JSON)] = []
    // A set, not a search of `o`: `cortex list` asks this for every old task it shows.
    var seen = Set<String>(minimumCapacity: 32)
    func add(_ k: String, _ v: JSON?) {
      guard let v, !v.isNull, seen.insert(k).inserted else { return }
      o.append((k, v))
    }
    for (k, v) in result?.object ?? [] where !notFromResult.contains(k) { add(k, v) }
    // result.json says it first (written when the task ended, after any edit).
    for k in ["priority", "description", "labels", "max_attempts", "retry_of"] { add(k, result?[k] ?? spec?[k]) }
    if result != nil || spec != nil {
      let type = spec?["type"]?.string ?? result?["type"]?.string
      add("group", .string(config.groupName(group: result?["group"]?.string ?? spec?["group"]?.string, type: type)))
    }
    return o
  }
}
