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

  /// `specCopied` of a task's spec as its spec.json (`specJSON`, redacted) has them, in that
  /// order, for its result.json. A spec nothing was redacted from is its spec.json, so they come
  /// from `spec` itself; parsing spec.json back (a kilobyte or two with the inherited
  /// environment) was a sixth of the daemon's instructions for each `true` task.
  public static func copiedFields(spec: TaskSpec, specJSON: [UInt8]) -> [(String, JSON)] {
    if ByteSearch.contains(redactionMarker, in: specJSON) {
      guard let parsed = try? JSON.parse(specJSON) else { return [] }
      return specCopied.compactMap { k in parsed[k].flatMap { $0.isNull ? nil : (k, $0) } }
    }
    var o: [(String, JSON)] = [("priority", .string(spec.priority.name))]
    if let d = spec.description { o.append(("description", .string(d))) }
    if !spec.labels.isEmpty { o.append(("labels", .object(spec.labels.map { ($0.0, .string($0.1)) }))) }
    if let r = spec.retryOf { o.append(("retry_of", .string(TaskID.format(r)))) }
    if let g = spec.group { o.append(("group", .string(g))) }
    return o
  }
  static let redactionMarker = Array(Redaction.marker.utf8)

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
