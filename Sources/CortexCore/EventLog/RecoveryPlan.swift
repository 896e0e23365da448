/// Which parts of the log a start reads (SPEC §13), decided without I/O from the manifest, the
/// segment files' sizes and the snapshot: start-up costs what the snapshot does not cover, not
/// the log's history. Sealed segments before the replay point are trusted by their size (their
/// checksums are compared by a scrub off the loop after the start); what is replayed is checked
/// line by line; a sealed segment that is read is compared with its CRC32C, and the covered
/// part of the segment being written with the CRC32C the snapshot recorded for it.
public struct RecoveryPlan: Equatable, Sendable {
  /// A segment file as the daemon found it.
  public struct SegmentFile: Equatable, Sendable {
    public var index: Int
    public var size: Int
    /// Seq of its first line; read only for segments the manifest does not list (nil: empty or
    /// unreadable first line).
    public var firstSeq: UInt64?
    public init(index: Int, size: Int, firstSeq: UInt64? = nil) {
      self.index = index
      self.size = size
      self.firstSeq = firstSeq
    }
  }

  /// Where a snapshot's last event ends: the segment and the byte just past its line, and the
  /// CRC32C of the segment's bytes before it (which no seal has checked yet when the segment is
  /// the one being written).
  public struct Position: Equatable, Sendable {
    public var segment: Int
    public var offset: Int
    public var crc32c: UInt32?
    public init(segment: Int, offset: Int, crc32c: UInt32? = nil) {
      self.segment = segment
      self.offset = offset
      self.crc32c = crc32c
    }
  }

  /// One segment to read: lines from `offset` on are checked; those after `replayAfter` replayed.
  public struct Read: Equatable, Sendable {
    public var index: Int
    public var offset: Int
    /// The seq the first line read must exceed (for the first read; each later one continues
    /// from the seq the read before it ended with).
    public var previousSeq: UInt64
    /// For a sealed segment: its record, to compare size and CRC32C of the whole file.
    public var sealed: Manifest.Segment?
    /// For a read from a snapshot's position: the CRC32C the bytes before `offset` must have.
    public var prefixCRC32C: UInt32?
    public init(index: Int, offset: Int, previousSeq: UInt64, sealed: Manifest.Segment?, prefixCRC32C: UInt32? = nil) {
      self.index = index
      self.offset = offset
      self.previousSeq = previousSeq
      self.sealed = sealed
      self.prefixCRC32C = prefixCRC32C
    }
  }

  public struct Refusal: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
  }

  public var reads: [Read] = []
  /// Events up to this seq are in the snapshot: checked, not replayed.
  public var replayAfter: UInt64 = 0
  /// Segments rotated but not sealed yet, except the last: the lifecycle seals them after the start.
  public var toSeal: [Int] = []
  /// Sealed segments the start did not read: the scrub compares their checksums after the start.
  public var toScrub: [Int] = []
  /// Segment files below what the manifest retains that no pending removal names: left alone.
  public var strays: [Int] = []

  /// Plans the reads. Refuses (the start stops, naming `cortex doctor`) when a sealed segment is
  /// missing or changed size, or when the state cannot be rebuilt: retention removed events the
  /// snapshot does not cover (no snapshot, or one older than the retained log).
  public static func make(
    manifest m: Manifest?, files: [SegmentFile], snapshotSeq: UInt64?, position: Position?
  ) throws(Refusal) -> RecoveryPlan {
    var plan = RecoveryPlan()
    let removedThrough = m?.removedThrough
    let pending = Set((m?.removing ?? []).map(\.segment.index))
    let floor = removedThrough?.index ?? 0
    let retained = files.filter { $0.index > floor && !pending.contains($0.index) }.sorted { $0.index < $1.index }
    plan.strays = files.filter { $0.index <= floor && !pending.contains($0.index) }.map(\.index)
    let present = Dictionary(uniqueKeysWithValues: retained.map { ($0.index, $0) })
    for s in m?.segments ?? [] {
      guard let f = present[s.index] else {
        let covered = s.lastSeq <= (snapshotSeq ?? 0)
        throw Refusal(
          "events/\(s.name) (seq \(s.firstSeq)–\(s.lastSeq)) is listed in manifest.json but missing ("
            + (covered
              ? "the snapshot covers those events, so only their history is gone"
              : "no snapshot covers those events: put the file back if you can, else what they recorded is lost") + ")")
      }
      if f.size != s.bytes {
        throw Refusal("events/\(s.name) is \(f.size) bytes but was sealed at \(s.bytes) (manifest.json): it changed after it was sealed")
      }
    }
    let snapshot = snapshotSeq ?? 0
    if let r = removedThrough, r.lastSeq > snapshot {
      throw Refusal(
        snapshotSeq == nil
          ? "there is no readable snapshot (task-queue.json, task-queue.prev.json) and retention removed the log through seq \(r.lastSeq): the state cannot be rebuilt"
          : "the snapshot (seq \(snapshot)) is older than the retained log, which begins after seq \(r.lastSeq): the state cannot be rebuilt"
      )
    }
    if m == nil, let first = retained.first, first.index > 1, let q = first.firstSeq, q > snapshot + 1 {
      // No manifest to say what was removed, but the oldest segments are gone and the snapshot
      // does not reach the oldest event left.
      throw Refusal(
        "the log begins at events/\(LogSegments.name(first.index)) (seq \(q)); the snapshot (seq \(snapshot)) does not reach it: the state cannot be rebuilt"
      )
    }
    plan.replayAfter = snapshot

    // The last seq of each retained segment, where it is known without reading it.
    func lastSeq(_ i: Int) -> UInt64? {
      if let s = m?.segment(retained[i].index) { return s.lastSeq }
      guard i + 1 < retained.count else { return nil }
      let next = retained[i + 1]
      if let s = m?.segment(next.index) { return s.firstSeq - 1 }
      return next.firstSeq.map { $0 - 1 }
    }
    var start: (at: Int, offset: Int)? = nil
    var prefixCRC: UInt32? = nil
    if let p = position, let i = retained.firstIndex(where: { $0.index == p.segment }), retained[i].size >= p.offset,
      (0..<i).allSatisfy({ (lastSeq($0) ?? .max) <= snapshot })
    {
      start = (i, p.offset)
      if p.offset > 0 { prefixCRC = p.crc32c }
    }
    if start == nil, let i = retained.indices.first(where: { (lastSeq($0) ?? .max) > snapshot }) {
      start = (i, 0)
    }
    if let (first, offset) = start {
      for i in first..<retained.count {
        var previous: UInt64 = 0
        if i == first {
          if offset > 0 {
            previous = snapshot
          } else if i > 0 {
            previous = lastSeq(i - 1) ?? 0
          } else {
            previous = removedThrough?.lastSeq ?? 0
          }
        }
        let f = retained[i]
        plan.reads.append(
          Read(
            index: f.index, offset: i == first ? offset : 0, previousSeq: previous, sealed: m?.segment(f.index),
            prefixCRC32C: i == first ? prefixCRC : nil))
      }
    }
    let read = Set(plan.reads.map(\.index))
    plan.toScrub = (m?.segments ?? []).map(\.index).filter { !read.contains($0) }
    plan.toSeal = retained.dropLast().map(\.index).filter { m?.segment($0) == nil }
    return plan
  }
}
