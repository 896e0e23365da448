/// What a finished task's own files say about it, for a task the daemon holds only as a compact
/// record (after a restart or retention, SPEC §13): every field of its `result.json` (type,
/// attempt, worker, exit code, times, tokens) but `id` and `state`, then what result.json does
/// not say and the spec does: priority, description, labels, max_attempts, retry_of, and the
/// group (its own, else its worker type's in `config`, as for a task held in memory). `cortex
/// show` (the daemon, for one task) and `cortex list` (the CLI, for its rows) both read them so.
public enum FinishedTaskFiles {
  public static func fields(result: JSON?, spec: JSON?, config: Config) -> [(String, JSON)] {
    var o: [(String, JSON)] = []
    func add(_ k: String, _ v: JSON?) {
      guard let v, !v.isNull, !o.contains(where: { $0.0 == k }) else { return }
      o.append((k, v))
    }
    for (k, v) in result?.object ?? [] where k != "id" && k != "state" { add(k, v) }
    for k in ["priority", "description", "labels", "max_attempts", "retry_of"] { add(k, spec?[k]) }
    if result != nil || spec != nil {
      let type = spec?["type"]?.string ?? result?["type"]?.string
      add("group", .string(config.groupName(group: spec?["group"]?.string, type: type)))
    }
    return o
  }
}
