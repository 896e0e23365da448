/// `"retention"` in `config.json` (SPEC §13): how long the decision log and finished tasks' files
/// are kept, and how much output a task may write. 0 turns a limit off. Defaults bound the disk:
/// a daemon that runs for months keeps at most `logBytes` of log (plus the segments a snapshot
/// does not cover yet) and `taskDays` of task files.
public struct RetentionSettings: Equatable, Sendable {
  /// Sealed segments whose newest event is older than this are removed (0: no age limit).
  public var logDays: Double = 30
  /// The log's segments together are kept under this many bytes (0: no size limit); must allow
  /// at least two segments.
  public var logBytes = 1 << 30
  /// `tasks/<id>/` of a task that ended longer ago than this is removed (0: kept).
  public var taskDays: Double = 30
  /// A task's `output.log` is cut past this many bytes, with a marker (0: no limit).
  public var maxOutputBytes = 64 << 20
  /// Removed segments are moved to `events/archive/` instead of deleted.
  public var archive = false
  /// Archived segments are compressed with the system's `gzip`.
  public var gzip = false
  /// `daemon.log` (the detached daemon's messages, its workers' and on_finish hooks' output) past
  /// this many bytes moves to `daemon.log.1` and starts again empty (0: no limit).
  public var daemonLogBytes = 32 << 20
  public static let minDaemonLogBytes = 65_536

  public init() {}

  /// No limit of any kind: the log and task files are kept for ever, outputs never cut.
  public static let keepEverything: RetentionSettings = {
    var r = RetentionSettings()
    r.logDays = 0
    r.logBytes = 0
    r.taskDays = 0
    r.maxOutputBytes = 0
    r.daemonLogBytes = 0
    return r
  }()

  public var logAgeMs: Int64? { logDays > 0 ? Numbers.ms(logDays * 86_400_000) : nil }
  public var taskAgeMs: Int64? { taskDays > 0 ? Numbers.ms(taskDays * 86_400_000) : nil }

  public func json() -> JSON {
    .object([
      ("log_days", .double(logDays)), ("log_bytes", .int(Int64(logBytes))), ("task_days", .double(taskDays)),
      ("max_output_bytes", .int(Int64(maxOutputBytes))), ("archive", .bool(archive)), ("gzip", .bool(gzip)),
      ("daemon_log_bytes", .int(Int64(daemonLogBytes))),
    ])
  }

  /// Reads `retention` (then `check(segmentBytes:)` once the whole config is read).
  public static func decode(_ v: JSON) throws(SpecError) -> RetentionSettings {
    guard let o = v.object else { throw SpecError("retention", "must be an object like {\"log_days\": 30, \"log_bytes\": 1073741824}") }
    var r = RetentionSettings()
    for (k, val) in o {
      let f = "retention." + k
      switch k {
      case "log_days": r.logDays = try Numbers.double(f, val, min: 0, max: 36_500)
      case "log_bytes": r.logBytes = try Numbers.int(f, val, min: 0, max: 1 << 50)
      case "task_days": r.taskDays = try Numbers.double(f, val, min: 0, max: 36_500)
      case "max_output_bytes": r.maxOutputBytes = try Numbers.int(f, val, min: 0, max: 1 << 50)
      case "daemon_log_bytes":
        r.daemonLogBytes = try Numbers.int(f, val, min: 0, max: 1 << 50)
        if r.daemonLogBytes > 0 && r.daemonLogBytes < minDaemonLogBytes {
          throw SpecError(f, "must be 0 (no limit) or at least \(minDaemonLogBytes)")
        }
      case "archive", "gzip":
        guard let b = val.bool else { throw SpecError(f, "must be true or false, not \(val.kindName)") }
        if k == "archive" { r.archive = b } else { r.gzip = b }
      default: throw SpecError(f, "unknown setting")
      }
    }
    if r.gzip && !r.archive { throw SpecError("retention.gzip", "compresses archived segments: set retention.archive to true too") }
    return r
  }

  /// `log_bytes` must leave room for the segment being written and one sealed segment: a value
  /// given in `config.json` that does not is refused; the default grows to fit large segments.
  public mutating func fit(segmentBytes: Int, logBytesGiven: Bool) throws(SpecError) {
    guard logBytes > 0 && logBytes < 2 * segmentBytes else { return }
    if !logBytesGiven {
      logBytes = 2 * segmentBytes
      return
    }
    throw SpecError(
      "retention.log_bytes",
      "must be 0 (no limit) or at least twice log_segment_bytes (\(2 * segmentBytes)): the segment being written is never removed")
  }
}
