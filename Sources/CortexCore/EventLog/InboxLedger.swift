/// Inbox files whose tasks are in the log but whose move to `inbox/accepted/` is not, as a
/// replay of the log finds them (recovery after a crash between the two).
///
/// An inbox file is submitted, its `task.submitted` lines are made durable, and only then is it
/// moved to `accepted/` (the move is what tells its writer it was accepted). A daemon killed
/// between the fsync and the rename found the file still in `inbox/` at its next start and
/// submitted it a second time. So each `task.submitted` of an inbox file names the file and the
/// CRC32C of its bytes, and the move is logged (`inbox.accepted`); a start moves a file that the
/// log says was submitted, with the same bytes, instead of submitting it again. A file dropped
/// again under the same name after its move is not pending (its `inbox.accepted` was replayed)
/// and is submitted as usual.
///
/// The replay covers the events after the snapshot, which is enough: the loop takes a snapshot's
/// copy of the state before it scans the inbox, and moves the files of a scan in the same
/// iteration, so no snapshot covers a submit whose file was not moved yet.
public struct InboxLedger: Sendable, Equatable {
  public struct Entry: Sendable, Equatable {
    public var crc32c: UInt32
    public var tasks: [Int]
    public init(crc32c: UInt32, tasks: [Int]) {
      self.crc32c = crc32c
      self.tasks = tasks
    }
  }

  /// File name in `inbox/` → what the log says was submitted from it and not moved yet.
  public private(set) var pending: [String: Entry] = [:]

  public init() {}

  /// The fields a `task.submitted` of inbox file `name` (with bytes of this CRC32C) carries.
  public static func fields(file name: String, crc32c: UInt32) -> [(String, JSON)] {
    [("inbox", .string(name)), ("inbox_crc32c", .int(Int64(crc32c)))]
  }

  /// Follows one replayed event.
  public mutating func replay(_ e: JSON) {
    switch e["type"]?.string {
    case "task.submitted":
      guard let name = e["inbox"]?.string, let crc = e["inbox_crc32c"]?.int, let c = UInt32(exactly: crc),
        let n = e["task_id"]?.string.flatMap(TaskID.parse)
      else { return }
      if pending[name]?.crc32c == c {
        pending[name]!.tasks.append(n)
      } else {
        pending[name] = Entry(crc32c: c, tasks: [n])
      }
    case "inbox.accepted":
      if let name = e["file"]?.string { pending[name] = nil }
    default: return
    }
  }

  /// The `inbox.accepted` event for file `name` and its tasks; `recovered`: moved at a start,
  /// not submitted again.
  public static func accepted(file name: String, tasks: [Int], recovered: Bool) -> Event {
    Event(
      "inbox.accepted", reason: recovered ? "already_submitted" : "submitted",
      detail: recovered
        ? "inbox/\(name) was submitted before the daemon stopped but not moved; moved to accepted/ without submitting it again"
        : nil,
      fields: [("file", .string(name)), ("task_ids", .array(tasks.map { .string(TaskID.format($0)) }))])
  }
}
