import CortexCore
import Posix

/// Appends events to `events/NNNNNNNN.jsonl`. Lines are buffered during one loop iteration and
/// written with one write(2) (so a line is never split across calls by us); `sync` makes them
/// durable with fdatasync. A failed write or sync is never taken for success: the file is cut back
/// to the last good size and the same bytes stay pending until a later attempt succeeds.
final class EventLogWriter {
  let directory: String
  let segmentBytes: Int
  private(set) var fd: FileDescriptor
  private(set) var segment: Int
  /// Size of the current segment that is known written.
  private(set) var writtenSize: Int
  private(set) var lastSeq: UInt64
  /// Highest seq known durable (fsynced).
  private(set) var durableSeq: UInt64
  private var pending: [UInt8] = []
  private var pendingLastSeq: UInt64 = 0
  /// Highest seq written to the file (in the page cache; `durableSeq` once synced).
  private(set) var writtenSeq: UInt64
  private var unsyncedSince: Int64? = nil
  /// Bytes written since the last successful sync, and the segment size at that sync. After a
  /// failed fsync the page cache cannot be trusted (the kernel may have dropped the dirty pages
  /// and a later fsync may "succeed"): the file is cut back and these bytes written again.
  private var unsynced: [UInt8] = []
  private var durableSize: Int
  var lastError: PosixError?
  /// In cluster mode, this node's name: on every line.
  var node: String?
  /// How long each fdatasync of the log took (read by the web view for `/metrics`).
  let fsyncTimings = TimingHistogram()
  private var tsCache: (ms: Int64, text: String) = (-1, "")
  private var encoder = JSONWriter(capacity: 1024)

  /// Appends to the newest segment, unless `isSealed` says it was sealed (the segment after it was
  /// removed by hand): a sealed segment is never written again, so a new one is begun after it.
  init(directory: String, segmentBytes: Int, lastSeq: UInt64, isSealed: (Int) -> Bool = { _ in false }) throws(PosixError) {
    self.directory = directory
    self.segmentBytes = segmentBytes
    let existing = LogSegments.indexes(try FileSystem.list(directory))
    segment = existing.last.map { isSealed($0) ? $0 + 1 : $0 } ?? 1
    fd = try FileDescriptor.open(directory + "/" + LogSegments.name(segment), [.writeOnly, .create, .append])
    writtenSize = try fd.size()
    durableSize = writtenSize
    self.lastSeq = lastSeq
    self.durableSeq = lastSeq
    self.writtenSeq = lastSeq
    pending.reserveCapacity(1 << 16)
    if existing.last != segment { try FileSystem.syncDirectory(directory) }
  }

  /// Segments this writer rotated away from, for the lifecycle to seal (the loop takes them).
  var rotatedAway: [Int] = []

  /// Where the written log ends: the segment and the byte just past the last written line. A
  /// snapshot taken when nothing is pending records it, so a start reads on from there.
  var position: RecoveryPlan.Position { RecoveryPlan.Position(segment: segment, offset: writtenSize) }

  var hasPending: Bool { !pending.isEmpty }
  var hasUnsynced: Bool { durableSeq < lastSeq }
  var unsyncedSinceMs: Int64? { unsyncedSince }

  /// Stamps and buffers one event; returns its seq.
  @discardableResult
  func append(_ e: Event, nowMs: Int64) -> UInt64 {
    lastSeq += 1
    if tsCache.ms != nowMs { tsCache = (nowMs, Timestamp.rfc3339(ms: nowMs)) }
    encoder.bytes.removeAll(keepingCapacity: true)
    e.encode(seq: lastSeq, ts: tsCache.text, node: node, into: &encoder)
    encoder.bytes.append(10)
    pending.append(contentsOf: encoder.bytes)
    pendingLastSeq = lastSeq
    return lastSeq
  }

  /// Writes what is pending (one write(2) per segment) and, when `sync`, fdatasyncs.
  func flush(sync: Bool, nowMs: Int64) throws(PosixError) {
    if !pending.isEmpty {
      if writtenSize > 0 && writtenSize + pending.count > segmentBytes { try rotate() }
      do throws(PosixError) {
        try fd.writeAll(pending)
      } catch {
        // Cut back any partial line; the bytes stay pending.
        try? fd.truncate(to: writtenSize)
        lastError = error
        throw error
      }
      writtenSize += pending.count
      writtenSeq = pendingLastSeq
      unsynced.append(contentsOf: pending)
      pending.removeAll(keepingCapacity: true)
      if unsyncedSince == nil { unsyncedSince = nowMs }
    }
    if sync && durableSeq < writtenSeq {
      do throws(PosixError) {
        let began = Clock.monotonicNs()
        try fd.fdatasync()
        fsyncTimings.observe(ns: Clock.monotonicNs() - began)
      } catch {
        lastError = error
        // Never retried as success: cut back to what is known durable and write it all again.
        try? fd.truncate(to: durableSize)
        pending = unsynced + pending
        if pendingLastSeq < writtenSeq { pendingLastSeq = writtenSeq }
        unsynced.removeAll(keepingCapacity: true)
        writtenSize = durableSize
        writtenSeq = durableSeq
        throw error
      }
      durableSeq = writtenSeq
      durableSize = writtenSize
      unsynced.removeAll(keepingCapacity: true)
      unsyncedSince = nil
    }
    lastError = nil
  }

  private func rotate() throws(PosixError) {
    try fd.fdatasync()
    // All of this segment is durable now. (If opening the next one fails, a later failed sync must
    // cut back only to here, not to an older size: that would drop durable lines.)
    durableSeq = writtenSeq
    durableSize = writtenSize
    unsynced.removeAll(keepingCapacity: true)
    unsyncedSince = nil
    let next = segment + 1
    let nfd = try FileDescriptor.open(directory + "/" + LogSegments.name(next), [.writeOnly, .create, .append])
    try FileSystem.syncDirectory(directory)
    fd.close()
    fd = nfd
    rotatedAway.append(segment)
    segment = next
    writtenSize = 0
    durableSize = 0
  }

  func close() { fd.close() }
}
