import CortexCore
import Posix

/// Follows the decision log (`events/NNNNNNNN.jsonl`) as the daemon appends to it: reads what is
/// new in the current segment and moves to the next one when it appears. Only complete lines are
/// handed out. On start it begins at the oldest segment within `historyBytes` of the end, so a long
/// history costs a bounded read.
struct LogTail {
  let directory: String
  private var segment = -1
  private var fd: FileDescriptor?
  /// Bytes read from the current segment.
  private var offset = 0
  private var partial: [UInt8] = []
  private var readBuffer: [UInt8] = []
  static let historyBytes = 256 << 20
  static let chunk = 1 << 20

  init(directory: String) { self.directory = directory }

  /// Calls `line` for each complete new line, reading at most `maxBytes`; returns bytes read.
  @discardableResult
  mutating func poll(maxBytes: Int = 4 << 20, _ line: (ArraySlice<UInt8>) -> Void) -> Int {
    if fd == nil && !open() { return 0 }
    var total = 0
    while total < maxBytes, let f = fd {
      // One buffer for every read: a fresh megabyte each tick is an mmap, its page faults and
      // an munmap.
      var buf = readBuffer
      readBuffer = []
      buf.removeAll(keepingCapacity: true)
      defer { readBuffer = buf }
      let n = (try? f.read(appendingTo: &buf, max: Self.chunk)) ?? 0
      if n == 0 {
        // At the end: move on only when a newer segment exists (this one is then complete).
        var nextIndex = segment + 1
        var next = directory + "/" + LogSegments.name(nextIndex)
        if !FileSystem.exists(next) {
          // Retention removed this segment (still open here) and the next ones while the tail
          // was behind: it waited for ever for a segment that would never come. It goes on
          // from the oldest segment left.
          guard !FileSystem.exists(directory + "/" + LogSegments.name(segment)),
            let later = LogSegments.indexes((try? FileSystem.list(directory)) ?? []).first(where: { $0 > segment })
          else { break }
          nextIndex = later
          next = directory + "/" + LogSegments.name(nextIndex)
        }
        // Read what may have been appended between our read and the check.
        var rest: [UInt8] = []
        while ((try? f.read(appendingTo: &rest, max: Self.chunk)) ?? 0) > 0 {}
        split(rest, line)
        partial.removeAll()
        f.close()
        fd = try? FileDescriptor.open(next, .readOnly)
        segment = nextIndex
        offset = 0
        continue
      }
      total += n
      offset += n
      split(buf, line)
    }
    return total
  }

  /// Bytes in the log not read yet (0 before the first poll, which starts within
  /// `historyBytes` of the end anyway): what a reader that paused would have to catch up on.
  func unread() -> Int {
    guard fd != nil, let names = try? FileSystem.list(directory) else { return 0 }
    var bytes = 0
    for i in LogSegments.indexes(names) where i >= segment {
      bytes += FileSystem.size(directory + "/" + LogSegments.name(i)) ?? 0
    }
    return max(0, bytes - offset)
  }

  private mutating func split(_ buf: [UInt8], _ line: (ArraySlice<UInt8>) -> Void) {
    var start = 0
    var i = 0
    while i < buf.count {
      if buf[i] == 10 {
        if partial.isEmpty {
          if i > start { line(buf[start..<i]) }
        } else {
          partial.append(contentsOf: buf[start..<i])
          line(partial[...])
          partial.removeAll(keepingCapacity: true)
        }
        start = i + 1
      }
      i += 1
    }
    if start < buf.count { partial.append(contentsOf: buf[start...]) }
  }

  private mutating func open() -> Bool {
    guard let names = try? FileSystem.list(directory) else { return false }
    let indexes = LogSegments.indexes(names)
    guard !indexes.isEmpty else { return false }
    var first = indexes.count - 1
    var bytes = FileSystem.size(directory + "/" + LogSegments.name(indexes[first])) ?? 0
    while first > 0 {
      let s = FileSystem.size(directory + "/" + LogSegments.name(indexes[first - 1])) ?? 0
      if bytes + s > Self.historyBytes { break }
      bytes += s
      first -= 1
    }
    segment = indexes[first]
    offset = 0
    fd = try? FileDescriptor.open(directory + "/" + LogSegments.name(segment), .readOnly)
    return fd != nil
  }
}
