import CortexCore
import Posix
import XCTest

@testable import CortexDaemon

/// Real syscalls in temporary directories: FIFOs, mmap, spawning, atomic files and the log writer.
final class PosixTests: XCTestCase {
  var dir = ""

  override func setUpWithError() throws {
    dir = try FileSystem.makeTemporaryDirectory(prefix: "cortex-posix-")
  }

  override func tearDown() {
    FileSystem.removeTree(dir)
  }

  func testFIFOCarriesLinesBothWaysWithoutBlocking() throws {
    let path = dir + "/w.in"
    try FileSystem.makeFIFO(path)
    XCTAssertTrue(FileSystem.isFIFO(path))
    XCTAssertEqual(FileSystem.permissions(path), 0o600)
    // O_RDWR|O_NONBLOCK never blocks in open, whoever comes first.
    let a = try FileDescriptor.open(path, .readWrite)
    defer { a.close() }
    try a.setNonBlocking(true)
    var buf: [UInt8] = []
    XCTAssertThrowsError(try a.read(appendingTo: &buf, max: 100)) { e in
      XCTAssertEqual((e as? PosixError)?.isWouldBlock, true, "\(e)")
    }
    try a.writeAll(WorkerToDaemon.heartbeat.encodedLine())
    let n = try a.read(appendingTo: &buf, max: 100)
    XCTAssertEqual(n, WorkerToDaemon.heartbeat.encodedLine().count)
    var lines = LineBuffer()
    lines.append(buf)
    guard case .line(let l) = lines.next() else { return XCTFail("no line") }
    XCTAssertEqual(try WorkerToDaemon.decode(l), .heartbeat)
  }

  func testMappedFileIsSharedAndReadOnlyMapsNeverPassTheEnd() throws {
    let path = dir + "/m"
    let w = try MappedFile(path: path, size: 8192, writable: true)
    w.base.storeBytes(of: 0xABCD, toByteOffset: 4000, as: UInt32.self)
    XCTAssertEqual(FileSystem.size(path), 8192)
    let r = try MappedFile(path: path, size: 8192, writable: false)
    XCTAssertEqual(r.base.load(fromByteOffset: 4000, as: UInt32.self), 0xABCD)
    // A reader of a truncated file maps only what exists (touching past it would be SIGBUS).
    let f = try FileDescriptor.open(path, .readWrite)
    try f.truncate(to: 100)
    f.close()
    let small = try MappedFile(path: path, size: 8192, writable: false)
    XCTAssertEqual(small.size, 100)
  }

  func testWritableMappingsAreFullyAllocatedAndReadersRefuseHoles() throws {
    // The daemon's mapping has every block allocated, so no write through it can meet a full disk.
    let path = dir + "/hot"
    let w = try MappedFile(path: path, size: 256 << 10, writable: true)
    let st = try XCTUnwrap(FileSystem.status(path))
    XCTAssertEqual(st.size, 256 << 10)
    XCTAssertGreaterThanOrEqual(st.allocatedBytes, st.size, "no holes")
    w.base.storeBytes(of: 7, toByteOffset: 200_000, as: UInt64.self)
    // A sparse file is not mapped for reading: touching a hole on a full disk is SIGBUS.
    let sparse = dir + "/sparse"
    let f = try FileDescriptor.open(sparse, [.readWrite, .create])
    try f.truncate(to: 256 << 10)
    var word: UInt64 = 0
    let n = try withUnsafeMutableBytes(of: &word) { try f.read(at: 100_000, into: $0) }
    XCTAssertEqual(n, 8, "pread of a hole reads zeros")
    f.close()
    XCTAssertThrowsError(try MappedFile(path: sparse, size: 256 << 10, writable: false))
  }

  func testFileStatusReportsOwnerModeAndFreeSpace() throws {
    try FileSystem.makeDirectory(dir + "/d", mode: 0o700)
    try FileSystem.setMode(dir + "/d", 0o1777)
    let st = try XCTUnwrap(FileSystem.status(dir + "/d"))
    XCTAssertTrue(st.isDirectory)
    XCTAssertTrue(st.isSticky)
    XCTAssertTrue(st.isWritableByOthers)
    XCTAssertEqual(st.owner, Processes.effectiveUserID)
    XCTAssertNil(try FileSystem.status(dir + "/missing"))
    XCTAssertNil(try FileSystem.status(dir + "/missing/below"))
    XCTAssertGreaterThan(try FileSystem.availableBytes(dir), 0)
  }

  func testSpawnReportsExitCodesSignalsAndOwnProcessGroup() throws {
    let devnull = try FileDescriptor.open("/dev/null", .readWrite)
    defer { devnull.close() }
    let ok = try Processes.spawn(
      ["sh", "-c", "exit 7"], environment: [], stdin: devnull, stdout: devnull, stderr: devnull, newProcessGroup: true)
    XCTAssertEqual(Processes.wait(ok), .exited(7))
    let sleeper = try Processes.spawn(
      ["sleep", "30"], environment: [], stdin: devnull, stdout: devnull, stderr: devnull, newProcessGroup: true)
    XCTAssertEqual(Processes.info(sleeper)?.parent, Processes.currentID)
    XCTAssertTrue(Processes.groupExists(sleeper), "the child leads its own group")
    XCTAssertTrue(Processes.signalGroup(sleeper, Signal.term))
    XCTAssertEqual(Processes.wait(sleeper), .signaled(Signal.term))
    XCTAssertFalse(Processes.groupExists(sleeper))
    XCTAssertThrowsError(
      try Processes.spawn(
        ["/nonexistent/cortex-test"], environment: [], stdin: devnull, stdout: devnull, stderr: devnull, newProcessGroup: false))
  }

  func testEnvironmentPairsSplitEachEntryAtItsFirstEquals() {
    // pairs() is built on forEachPair's bytes; all() gives the same entries whole.
    let expected = Environment.all().compactMap { e -> String? in e.contains("=") ? e : nil }
    let pairs = Environment.pairs()
    XCTAssertFalse(pairs.isEmpty, "the test process has an environment")
    XCTAssertEqual(pairs.map { $0.name + "=" + $0.value }, expected)
    XCTAssertTrue(pairs.allSatisfy { !$0.name.contains("=") }, "a name kept an = sign")
  }

  func testSpawnedChildSeesDirectoryEnvironmentAndFd3() throws {
    let out = try FileDescriptor.open(dir + "/out", [.writeOnly, .create, .truncate])
    let pipe = try makePipe()
    let pid = try Processes.spawn(
      ["sh", "-c", "pwd; echo $CORTEX_X; echo report >&3"], environment: ["CORTEX_X=42", "PATH=/usr/bin:/bin"], directory: dir,
      stdin: nil, stdout: out, stderr: out, fd3: pipe.write, newProcessGroup: true)
    pipe.write.close()
    out.close()
    XCTAssertEqual(Processes.wait(pid), .exited(0))
    var got: [UInt8] = []
    _ = try pipe.read.read(appendingTo: &got, max: 100)
    pipe.read.close()
    XCTAssertEqual(String(decoding: got, as: UTF8.self), "report\n")
    let text = String(decoding: try FileSystem.read(dir + "/out") ?? [], as: UTF8.self)
    XCTAssertEqual(text, "\(FileSystem.realPath(dir) ?? dir)\n42\n")
  }

  func testWriteAtomicallyReplacesWholeAndLeavesNoTemporaryFile() throws {
    let path = dir + "/snap.json"
    try FileSystem.writeAtomically(path, Array("one".utf8))
    try FileSystem.writeAtomically(path, Array("two!".utf8))
    XCTAssertEqual(try FileSystem.read(path), Array("two!".utf8))
    XCTAssertEqual(try FileSystem.list(dir), ["snap.json"])
  }

  func testEventLogWriterAppendsRollsSegmentsAndResumes() throws {
    let events = dir + "/events"
    try FileSystem.makeDirectory(events)
    let w = try EventLogWriter(directory: events, segmentBytes: 600, lastSeq: 0)
    for i in 0..<20 {
      w.append(Event("test.event", task: i + 1, detail: "line \(i)"), nowMs: 1_795_000_000_000)
      if i % 3 == 2 { try w.flush(sync: i % 2 == 0, nowMs: 0) }
    }
    try w.flush(sync: true, nowMs: 0)
    XCTAssertFalse(w.hasUnsynced)
    w.close()
    let names = try FileSystem.list(events).sorted()
    XCTAssertGreaterThan(names.count, 1, "600-byte segments should roll")
    var seqs: [UInt64] = []
    var prev: UInt64 = 0
    for name in names {
      let bytes = try FileSystem.read(events + "/" + name) ?? []
      let scan = LogSegments.scan(bytes, after: prev) { v in seqs.append(UInt64(v["seq"]!.int!)) }
      XCTAssertNil(scan.corruptAt)
      XCTAssertFalse(scan.tornTail)
      prev = scan.lastSeq
    }
    XCTAssertEqual(seqs, Array(1...20))
    // A new writer continues the last segment and the sequence.
    let again = try EventLogWriter(directory: events, segmentBytes: 600, lastSeq: 20)
    XCTAssertEqual(again.append(Event("test.event"), nowMs: 0), 21)
    try again.flush(sync: true, nowMs: 0)
    again.close()
  }

  /// When the newest segment was removed by hand, the one before it is the last file but it is
  /// sealed: a new writer begins the next segment and never changes the sealed one (it appended
  /// to it, and the next start refused the log).
  func testAWriterNeverAppendsToASealedSegment() throws {
    let events = dir + "/events"
    try FileSystem.makeDirectory(events)
    let w = try EventLogWriter(directory: events, segmentBytes: 4096, lastSeq: 0)
    w.append(Event("test.event", task: 1), nowMs: 0)
    try w.flush(sync: true, nowMs: 0)
    w.close()
    let sealedSize = FileSystem.size(events + "/00000001.jsonl")
    let again = try EventLogWriter(directory: events, segmentBytes: 4096, lastSeq: 1, isSealed: { $0 == 1 })
    XCTAssertEqual(again.segment, 2)
    again.append(Event("test.event", task: 2), nowMs: 0)
    try again.flush(sync: true, nowMs: 0)
    again.close()
    XCTAssertEqual(FileSystem.size(events + "/00000001.jsonl"), sealedSize)
    XCTAssertEqual(try FileSystem.list(events).sorted(), ["00000001.jsonl", "00000002.jsonl"])
  }

  func testProcessScanFindsChildrenAndZombies() throws {
    let devnull = try FileDescriptor.open("/dev/null", .readWrite)
    defer { devnull.close() }
    let pid = try Processes.spawn(
      ["sh", "-c", "exit 0"], environment: [], stdin: devnull, stdout: devnull, stderr: devnull, newProcessGroup: false)
    // Not reaped yet: it must show up as our zombie.
    let deadline = Clock.monotonicMs() + 5000
    while Processes.info(pid)?.isZombie != true && Clock.monotonicMs() < deadline { sleepMs(5) }
    XCTAssertEqual(Processes.info(pid)?.isZombie, true)
    XCTAssertTrue(Processes.all().contains { $0.pid == pid && $0.parent == Processes.currentID })
    XCTAssertEqual(Processes.wait(pid), .exited(0))
    XCTAssertNil(Processes.info(pid))
  }
}
