/// The compact record of a finished task, which outlives retention (SPEC §13): its terminal
/// state, exit code or signal, end time, and whether it had a task directory. Eight bytes at a
/// fixed place in `finished-tasks.bin` (a 16-byte header, then record `n` at `16 + 8·n`), so
/// `show` and `wait` of any old id cost one `pread`, and ten million tasks take 80 MB of disk and
/// no memory.
///
/// Record layout (little-endian): bytes 0–5 the end time in ms since the epoch (48 bits, good
/// until the year 10889); byte 6 the state (1 + its index in `TaskState.allCases`) in bits 0–3,
/// bit 4 set when byte 7 is an exit code, bit 5 when it is a signal, bit 6 when the task had a
/// `tasks/<id>/` directory; byte 7 the exit code or signal. All zero: no record.
public struct FinishedRecord: Equatable, Sendable {
  public var state: TaskState
  public var exitCode: Int32?
  public var signal: Int32?
  public var endedMs: Int64
  /// A command task (it had `tasks/<id>/`); synthetic tasks never have one.
  public var hadDirectory: Bool

  public init(state: TaskState, exitCode: Int32? = nil, signal: Int32? = nil, endedMs: Int64, hadDirectory: Bool) {
    self.state = state
    self.exitCode = exitCode
    self.signal = signal
    self.endedMs = endedMs
    self.hadDirectory = hadDirectory
  }

  public static let size = 8
  public static let headerSize = 16
  public static let fileName = "finished-tasks.bin"
  /// "CXFINRC" + version 1, then the record size as a little-endian UInt32, then 4 zero bytes.
  public static let header: [UInt8] = Array("CXFINRC".utf8) + [1, UInt8(size), 0, 0, 0, 0, 0, 0, 0]

  /// Where task `n`'s record sits in the file.
  public static func offset(_ n: Int) -> Int { headerSize + n * size }

  public func encoded() -> [UInt8] {
    let ms = UInt64(max(0, min(endedMs, (1 << 48) - 1)))
    var b = [UInt8](repeating: 0, count: Self.size)
    for i in 0..<6 { b[i] = UInt8(truncatingIfNeeded: ms >> (8 * UInt64(i))) }
    var flags = UInt8(TaskState.allCases.firstIndex(of: state)! + 1)
    if let s = signal, s > 0, s < 128 {
      flags |= 0x20
      b[7] = UInt8(s)
    } else if let c = exitCode, c >= 0, c < 256 {
      flags |= 0x10
      b[7] = UInt8(c)
    }
    if hadDirectory { flags |= 0x40 }
    b[6] = flags
    return b
  }

  /// The record in 8 bytes, or nil when there is none (zeros, or a state that is not terminal).
  public static func decode(_ b: ArraySlice<UInt8>) -> FinishedRecord? {
    guard b.count == size else { return nil }
    let s = b.startIndex
    let code = Int(b[s + 6] & 0x0F)
    guard code >= 1, code <= TaskState.allCases.count, TaskState.allCases[code - 1].isTerminal else { return nil }
    var ms: UInt64 = 0
    for i in 0..<6 { ms |= UInt64(b[s + i]) << (8 * UInt64(i)) }
    let flags = b[s + 6]
    return FinishedRecord(
      state: TaskState.allCases[code - 1], exitCode: flags & 0x10 != 0 ? Int32(b[s + 7]) : nil,
      signal: flags & 0x20 != 0 ? Int32(b[s + 7]) : nil, endedMs: Int64(ms), hadDirectory: flags & 0x40 != 0)
  }

  /// The record a logged terminal event (`task.succeeded` …) stands for, with its task number;
  /// nil for any other event.
  public static func from(event v: JSON, hadDirectory: Bool) -> (task: Int, record: FinishedRecord)? {
    guard let type = v["type"]?.string, type.hasPrefix("task."), let state = TaskState(rawValue: String(type.dropFirst(5))),
      state.isTerminal, let n = v["task_id"]?.string.flatMap(TaskID.parse), let ms = v["ts"]?.string.flatMap(Timestamp.parse)
    else { return nil }
    return (
      n,
      FinishedRecord(
        state: state, exitCode: v["exit_code"]?.int.map { Int32(truncatingIfNeeded: $0) },
        signal: v["signal"]?.int.map { Int32(truncatingIfNeeded: $0) }, endedMs: ms, hadDirectory: hadDirectory)
    )
  }

  /// Whether an event line is a terminal task event, from its bytes alone (the writer puts
  /// `"type":"…"` third): lets a scan parse only those lines.
  public static func isTerminalLine(_ line: ArraySlice<UInt8>) -> Bool {
    guard let at = ByteSearch.firstIndex(of: typeKey, in: line) else { return false }
    let rest = line[(line.startIndex + at + typeKey.count)...]
    for t in terminalTypes where rest.starts(with: t) { return true }
    return false
  }

  static let typeKey: [UInt8] = Array(#","type":"task."#.utf8)
  static let terminalTypes: [[UInt8]] = TaskState.allCases.filter(\.isTerminal).map { Array(($0.rawValue + "\"").utf8) }
}
