/// `events/manifest.json`: the sealed segments of the decision log, each with its size and CRC32C
/// recorded once, when it was sealed after every line was checked; and what retention removed.
/// The daemon writes it temp → fsync → rename → fsync(dir) (as Redis 7 writes its multi-part AOF
/// manifest), so start-up can trust a sealed segment by its size instead of reading every line,
/// and replays line by line only what the newest snapshot does not cover.
///
/// The file is JSON for people (`jq .segments[0] events/manifest.json`) and carries a CRC32C of
/// its own content (`crc32c`, over the compact encoding of everything else): a manifest that was
/// damaged or edited is refused, and the daemon rebuilds it by sealing the segments again.
public struct Manifest: Equatable, Sendable {
  /// One sealed segment: immutable from now on.
  public struct Segment: Equatable, Sendable {
    public var index: Int
    public var bytes: Int
    public var crc32c: UInt32
    public var firstSeq: UInt64
    public var lastSeq: UInt64
    /// `ts` of its first and last event, in ms since the epoch.
    public var firstMs: Int64
    public var lastMs: Int64
    public var lines: Int

    public init(index: Int, bytes: Int, crc32c: UInt32, firstSeq: UInt64, lastSeq: UInt64, firstMs: Int64, lastMs: Int64, lines: Int) {
      self.index = index
      self.bytes = bytes
      self.crc32c = crc32c
      self.firstSeq = firstSeq
      self.lastSeq = lastSeq
      self.firstMs = firstMs
      self.lastMs = lastMs
      self.lines = lines
    }

    public var name: String { LogSegments.name(index) }
  }

  /// A segment retention took out of the log. It stays listed here, after its file is gone, until
  /// the `log.segment_removed` event that records it is durable; a start that finds one finishes
  /// the removal and logs it.
  public struct Removal: Equatable, Sendable {
    public var segment: Segment
    /// `log_days` or `log_bytes`: the limit that removed it.
    public var reason: String
    /// Where it went, relative to `events/` (`archive/00000003.jsonl.gz`), when it was archived.
    public var archivedAs: String?

    public init(segment: Segment, reason: String, archivedAs: String? = nil) {
      self.segment = segment
      self.reason = reason
      self.archivedAs = archivedAs
    }
  }

  public static let fileName = "manifest.json"
  public static let version: Int64 = 1

  /// Sealed segments, oldest first; each one's seqs follow the one before.
  public var segments: [Segment] = []
  public var removing: [Removal] = []
  /// The newest segment retention removed (nil: none): the retained log begins after it.
  public var removedThrough: Segment?
  /// Compact finished-task records (`finished-tasks.bin`) exist for every terminal event from this
  /// seq on; a segment that starts before it has its records written when it is sealed. 1 for a
  /// directory this version created; for an older one, the first seq its first start replayed.
  public var recordsFromSeq: UInt64 = 1

  public init() {}

  public var sealedBytes: Int { segments.reduce(0) { $0 + $1.bytes } }
  public func segment(_ index: Int) -> Segment? {
    // Segments are few (a terabyte of 64 MiB segments is 16,384) and sorted: a binary search.
    var lo = 0
    var hi = segments.count - 1
    while lo <= hi {
      let mid = (lo + hi) / 2
      if segments[mid].index == index { return segments[mid] }
      if segments[mid].index < index { lo = mid + 1 } else { hi = mid - 1 }
    }
    return nil
  }

  /// The first seq the retained log holds (after what retention removed); 1 when nothing was.
  public var retainedFromSeq: UInt64 { (removedThrough?.lastSeq ?? 0) + 1 }

  // MARK: encoding

  /// The file's bytes: one segment per line, and the checksum last.
  public func encoded() -> [UInt8] {
    var s = "{\n"
    for (k, v) in header { s += "  " + JSON.string(k).encoded() + ": " + v.encoded() + ",\n" }
    s += "  \"segments\": [" + (segments.isEmpty ? "" : "\n")
    s += segments.map { "    " + Self.json($0).encoded() }.joined(separator: ",\n")
    s += (segments.isEmpty ? "" : "\n  ") + "],\n"
    s += "  \"removing\": [" + (removing.isEmpty ? "" : "\n")
    s += removing.map { "    " + Self.json($0).encoded() }.joined(separator: ",\n")
    s += (removing.isEmpty ? "" : "\n  ") + "],\n"
    s += "  \"crc32c\": " + JSON.string(Self.hex(checksum)).encoded() + "\n}\n"
    return Array(s.utf8)
  }

  var header: [(String, JSON)] {
    [
      ("version", .int(Self.version)), ("records_from_seq", .int(Int64(recordsFromSeq))),
      ("removed_through", removedThrough.map(Self.json) ?? .null),
    ]
  }

  /// CRC32C of the compact encoding of everything but the checksum.
  public var checksum: UInt32 {
    let body = JSON.object(header + [("segments", .array(segments.map(Self.json))), ("removing", .array(removing.map(Self.json)))])
    return CRC32C.checksum(body.encodedBytes())
  }

  static func json(_ s: Segment) -> JSON {
    .object(segmentFields(s))
  }

  static func segmentFields(_ s: Segment) -> [(String, JSON)] {
    [
      ("segment", .string(s.name)), ("bytes", .int(Int64(s.bytes))), ("crc32c", .string(hex(s.crc32c))),
      ("first_seq", .int(Int64(s.firstSeq))), ("last_seq", .int(Int64(s.lastSeq))),
      ("first_ts", .string(Timestamp.rfc3339(ms: s.firstMs))), ("last_ts", .string(Timestamp.rfc3339(ms: s.lastMs))),
      ("lines", .int(Int64(s.lines))),
    ]
  }

  static func json(_ r: Removal) -> JSON {
    .object(segmentFields(r.segment) + [("reason", .string(r.reason))] + (r.archivedAs.map { [("archived_as", JSON.string($0))] } ?? []))
  }

  public static func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
  }

  // MARK: decoding

  public struct DecodeError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    init(_ d: String) { description = d }
  }

  /// Parses and checks a manifest: every field present and in range, segments in order with
  /// increasing seqs, and the checksum matching.
  public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Manifest {
    let v: JSON
    do { v = try JSON.parse(bytes) } catch { throw DecodeError("does not parse: \(error)") }
    guard v["version"]?.int == version else { throw DecodeError("version is not \(version)") }
    var m = Manifest()
    guard let from = v["records_from_seq"]?.int, from >= 1 else { throw DecodeError("records_from_seq is missing") }
    m.recordsFromSeq = UInt64(from)
    if let r = v["removed_through"], !r.isNull { m.removedThrough = try segment(r) }
    guard let list = v["segments"]?.array, let removing = v["removing"]?.array else {
      throw DecodeError("segments or removing is missing")
    }
    for s in list { m.segments.append(try segment(s)) }
    for r in removing {
      guard let reason = r["reason"]?.string else { throw DecodeError("a removal has no reason") }
      m.removing.append(Removal(segment: try segment(r), reason: reason, archivedAs: r["archived_as"]?.string))
    }
    for (a, b) in zip(m.segments, m.segments.dropFirst()) where b.index <= a.index || b.firstSeq <= a.lastSeq {
      throw DecodeError("\(b.name) does not follow \(a.name)")
    }
    guard let stored = v["crc32c"]?.string, stored == hex(m.checksum) else {
      throw DecodeError("its checksum does not match its content (damaged or edited)")
    }
    return m
  }

  static func segment(_ v: JSON) throws(DecodeError) -> Segment {
    guard let name = v["segment"]?.string, let index = LogSegments.indexes([name]).first,
      let bytes = v["bytes"]?.int, bytes >= 0, let crcText = v["crc32c"]?.string, let crc = UInt32(crcText, radix: 16),
      let first = v["first_seq"]?.int, first >= 1, let last = v["last_seq"]?.int, last >= first,
      let firstMs = v["first_ts"]?.string.flatMap(Timestamp.parse), let lastMs = v["last_ts"]?.string.flatMap(Timestamp.parse),
      let lines = v["lines"]?.int, lines >= 1
    else { throw DecodeError("a segment entry lacks or misstates segment, bytes, crc32c, first_seq, last_seq, first_ts, last_ts or lines") }
    return Segment(
      index: index, bytes: Int(bytes), crc32c: crc, firstSeq: UInt64(first), lastSeq: UInt64(last), firstMs: firstMs, lastMs: lastMs,
      lines: Int(lines))
  }
}
