import Synchronization

/// The fixed binary layout of `hot-state.mmap` (documented in docs/hot-state.md). The daemon
/// writes it in place under a seqlock; readers copy it, check the seqlock did not move and the
/// CRC32C matches, and never trust a field they have not validated.
public enum HotState {
  public static let magic: [UInt8] = Array("CRTXHOT\0".utf8)
  public static let version: UInt32 = 1
  public static let byteOrderMark: UInt32 = 0x0102_0304
  public static let headerSize = 256
  public static let workerSlotSize = 64
  public static let workerCapacity = 1024
  public static let taskSlotSize = 64
  public static let taskCapacity = 4096
  public static var fileSize: Int { headerSize + workerCapacity * workerSlotSize + taskCapacity * taskSlotSize }
  static var workersOffset: Int { headerSize }
  static var tasksOffset: Int { headerSize + workerCapacity * workerSlotSize }
  /// Where the seqlock word is (readers that copy the file with pread read it there).
  public static var seqlockOffset: Int { H.seqlock }

  // Header offsets.
  enum H {
    static let magic = 0, version = 8, byteOrder = 12, headerSize = 16, workerSlot = 20, workerCap = 24
    static let taskSlot = 28, taskCap = 32, seqlock = 40, lastSeq = 48, crc = 56
    // Checksummed part starts at 64.
    static let pid = 64, startedMs = 72, updatedMs = 80, poolSize = 88, workerEntries = 92
    static let taskEntries = 96, activeTotal = 100, tokensTotal = 104, tokensReserved = 112
    static let tokensUsed = 120, tokensAvailable = 128, counts = 136, queuedByPriority = 200
    static let rejected = 216, nextTask = 224, phase = 232, admitting = 236
    /// Cluster mode: when the node lost its database (wall ms), 0 while it answers (and on a single host).
    static let clusterUnreachableSince = 240
    /// 1 when the daemon runs as a cluster node, 0 on a single host (whatever config.json says now).
    static let clusterNode = 248
  }

  public static let workerStates: [WorkerState] = [.starting, .idle, .busy, .stopping, .restarting, .parked, .stopped]
  public static let phases = ["running", "draining", "exiting", "stopped"]

  /// Writes the whole state into `base` (which must be `fileSize` bytes), composed in a buffer of
  /// its own first (see `Writer`, which keeps that buffer from one write to the next).
  public static func write(
    _ s: Scheduler, to base: UnsafeMutableRawPointer, lastSeq: UInt64, pid: Int32, startedMs: Int64, nowMs: Int64,
    clusterNode: Bool = false, clusterUnreachableSinceMs: Int64 = 0
  ) {
    Writer().write(
      s, to: base, lastSeq: lastSeq, pid: pid, startedMs: startedMs, nowMs: nowMs, clusterNode: clusterNode,
      clusterUnreachableSinceMs: clusterUnreachableSinceMs)
  }

  /// Writes the daemon's state into the mapping: composes it in `scratch` (walking the scheduler's
  /// tasks and the CRC32C of up to 256 KiB: 10–20 ms in a debug build with a long queue, longer on
  /// a loaded machine), then copies the parts in use into the mapping under the seqlock, which is
  /// odd only for that copy. Composed in place, the seqlock was odd for the whole walk, 50 times a
  /// second while events flowed: a reader rarely found it even, and the web view's `/api/status`
  /// answered 503 "hot-state.mmap cannot be read yet" once its 100 ms of patience ran out.
  public final class Writer {
    private let scratch: UnsafeMutableRawPointer

    public init() {
      scratch = UnsafeMutableRawPointer.allocate(byteCount: HotState.fileSize, alignment: 8)
      scratch.initializeMemory(as: UInt8.self, repeating: 0, count: HotState.fileSize)
    }

    deinit { scratch.deallocate() }

    public func write(
      _ s: Scheduler, to base: UnsafeMutableRawPointer, lastSeq: UInt64, pid: Int32, startedMs: Int64, nowMs: Int64,
      clusterNode: Bool = false, clusterUnreachableSinceMs: Int64 = 0
    ) {
      let (wn, tn) = HotState.compose(
        s, into: scratch, lastSeq: lastSeq, pid: pid, startedMs: startedMs, nowMs: nowMs, clusterNode: clusterNode,
        clusterUnreachableSinceMs: clusterUnreachableSinceMs)
      let seqlock = base.load(fromByteOffset: H.seqlock, as: UInt64.self)
      let odd = seqlock | 1 == seqlock ? seqlock + 2 : seqlock + 1
      base.storeBytes(of: odd, toByteOffset: H.seqlock, as: UInt64.self)
      atomicMemoryFence(ordering: .sequentiallyConsistent)
      // Everything a reader looks at (the header around the seqlock, the entries in use).
      base.copyMemory(from: scratch, byteCount: H.seqlock)
      (base + H.lastSeq).copyMemory(from: scratch + H.lastSeq, byteCount: headerSize - H.lastSeq)
      (base + workersOffset).copyMemory(from: scratch + workersOffset, byteCount: wn * workerSlotSize)
      (base + tasksOffset).copyMemory(from: scratch + tasksOffset, byteCount: tn * taskSlotSize)
      atomicMemoryFence(ordering: .sequentiallyConsistent)
      base.storeBytes(of: odd + 1, toByteOffset: H.seqlock, as: UInt64.self)
    }
  }

  /// Fills `base` (`fileSize` bytes, not the mapping) with the state, all but the seqlock; returns
  /// the entries used in the worker and the task table.
  static func compose(
    _ s: Scheduler, into base: UnsafeMutableRawPointer, lastSeq: UInt64, pid: Int32, startedMs: Int64, nowMs: Int64,
    clusterNode: Bool, clusterUnreachableSinceMs: Int64
  ) -> (workers: Int, tasks: Int) {
    for (i, b) in magic.enumerated() { base.storeBytes(of: b, toByteOffset: H.magic + i, as: UInt8.self) }
    func u32(_ o: Int, _ v: UInt32) { base.storeBytes(of: v, toByteOffset: o, as: UInt32.self) }
    func i64(_ o: Int, _ v: Int64) { base.storeBytes(of: v, toByteOffset: o, as: Int64.self) }
    u32(H.version, version)
    u32(H.byteOrder, byteOrderMark)
    u32(H.headerSize, UInt32(headerSize))
    u32(H.workerSlot, UInt32(workerSlotSize))
    u32(H.workerCap, UInt32(workerCapacity))
    u32(H.taskSlot, UInt32(taskSlotSize))
    u32(H.taskCap, UInt32(taskCapacity))
    base.storeBytes(of: lastSeq, toByteOffset: H.lastSeq, as: UInt64.self)
    i64(H.pid, Int64(pid))
    i64(H.startedMs, startedMs)
    i64(H.updatedMs, nowMs)
    u32(H.poolSize, UInt32(s.desiredWorkers))
    i64(H.tokensTotal, Int64(s.config.tokenBudgetTotal))
    i64(H.tokensReserved, Int64(s.tokensReserved))
    i64(H.tokensUsed, Int64(s.tokensUsed))
    i64(H.tokensAvailable, Int64(s.budgetAvailable))
    for st in TaskState.allCases { i64(H.counts + 8 * st.ordinal, Int64(s.counts[st, default: 0])) }
    for p in Priority.allCases { u32(H.queuedByPriority + 4 * p.rawValue, UInt32(s.queued(p))) }
    i64(H.rejected, Int64(s.rejectedSubmits))
    i64(H.nextTask, Int64(s.nextTaskNumber))
    let phase: UInt32 =
      switch s.phase {
      case .running: 0
      case .draining: 1
      case .exiting: 2
      case .stopped: 3
      }
    u32(H.phase, phase)
    u32(H.admitting, s.admitting ? 1 : 0)
    i64(H.clusterUnreachableSince, clusterUnreachableSinceMs)
    u32(H.clusterNode, clusterNode ? 1 : 0)

    var wn = 0
    for w in s.workers where wn < workerCapacity {
      let o = workersOffset + wn * workerSlotSize
      u32(o, UInt32(w.slot))
      u32(o + 4, UInt32(workerStates.firstIndex(of: w.state) ?? 6))
      u32(o + 8, UInt32(bitPattern: w.pid))
      u32(o + 12, UInt32(w.task ?? 0))
      i64(o + 16, Int64(w.tasksDone))
      i64(o + 24, w.lastSeenMs)
      u32(o + 32, UInt32(w.restarts.count))
      wn += 1
    }
    u32(H.workerEntries, UInt32(wn))

    // The table holds at most `taskCapacity` tasks: the ones on workers first (what `cortex top`
    // shows), then queued ones. It stops when full: with tens of thousands queued, walking every
    // task on each write (50 a second while events flow) was 14 % of the loop's CPU.
    var tn = 0
    func put(_ t: TaskRecord) {
      let o = tasksOffset + tn * taskSlotSize
      i64(o, Int64(t.number))
      base.storeBytes(of: UInt8(t.state.ordinal), toByteOffset: o + 8, as: UInt8.self)
      base.storeBytes(of: UInt8(t.spec.priority.rawValue), toByteOffset: o + 9, as: UInt8.self)
      base.storeBytes(of: UInt16(min(t.attempt, 65535)), toByteOffset: o + 10, as: UInt16.self)
      u32(o + 12, UInt32(t.worker ?? 0))
      i64(o + 16, t.submittedMs)
      i64(o + 24, t.startedMs ?? 0)
      i64(o + 32, Int64(t.tokensUsed))
      i64(o + 40, Int64(t.budget))
      u32(o + 48, UInt32(bitPattern: t.pid ?? 0))
      tn += 1
    }
    var onWorkers = Set<Int>()
    for w in s.workers where tn < taskCapacity {
      if let n = w.task, let t = s.tasks[n], !t.state.isTerminal, onWorkers.insert(n).inserted { put(t) }
    }
    // The rest of the active tasks, and no further: when none waits off a worker (a shell
    // loop's usual moment) the walk through every kept task, 2,000 finished ones by default,
    // is skipped (it was 9 % of the loop's CPU per submit of a `cortex submit` loop).
    var left = s.activeCount - onWorkers.count
    if tn < taskCapacity && left > 0 {
      for t in s.tasks.values where !t.state.isTerminal && !onWorkers.contains(t.number) {
        put(t)
        left -= 1
        if tn == taskCapacity || left == 0 { break }
      }
    }
    u32(H.taskEntries, UInt32(tn))
    u32(H.activeTotal, UInt32(max(tn, s.activeCount)))

    let crc = checksum(UnsafeRawPointer(base), workers: wn, tasks: tn)
    u32(H.crc, crc)
    return (wn, tn)
  }

  static func checksum(_ base: UnsafeRawPointer, workers: Int, tasks: Int) -> UInt32 {
    var crc = CRC32C.checksum(UnsafeRawBufferPointer(start: base + 64, count: headerSize - 64))
    crc = CRC32C.checksum(UnsafeRawBufferPointer(start: base + workersOffset, count: workers * workerSlotSize), seed: crc)
    return CRC32C.checksum(UnsafeRawBufferPointer(start: base + tasksOffset, count: tasks * taskSlotSize), seed: crc)
  }

  public struct WorkerView: Sendable {
    public var slot: Int, state: String, pid: Int32, task: Int?, tasksDone: Int, lastSeenMs: Int64, restarts: Int
  }
  public struct TaskView: Sendable {
    public var number: Int, state: TaskState, priority: Priority, attempt: Int, worker: Int?
    public var submittedMs: Int64, startedMs: Int64?, tokensUsed: Int, budget: Int, pid: Int32
  }
  /// A validated copy of the hot state.
  public struct View: Sendable {
    public var lastSeq: UInt64, pid: Int32, startedMs: Int64, updatedMs: Int64, poolSize: Int
    public var tokensTotal: Int, tokensReserved: Int, tokensUsed: Int, tokensAvailable: Int
    /// Fixed tables, not dictionaries: a `[TaskState: Int]` and a `[Priority: Int]` cost each
    /// `cortex status` about 120,000 instructions apiece of the Swift runtime building the
    /// dictionary's type at first use and scanning the binary's conformance records for its key's
    /// `Hashable` (callgrind). Both answer `[key]` as a dictionary would (an optional).
    public var counts: TaskState.Counts, queuedByPriority: Priority.Counts, rejected: Int, nextTask: Int
    public var phase: String, admitting: Bool, activeTotal: Int
    /// Cluster mode: since when (wall ms) the node cannot reach PostgreSQL; nil while it can.
    public var clusterUnreachableSinceMs: Int64?
    /// Whether the daemon that wrote it runs as a cluster node (config.json may say otherwise
    /// until its next start).
    public var clusterNode: Bool
    public var workers: [WorkerView], tasks: [TaskView]

    /// The pool's workers: a scale-down leaves the slots above the pool in the file as
    /// `stopped`; those are not the pool's (`cortex status`, `top`, `--json status`).
    public var poolWorkers: [WorkerView] { workers.filter(inPool) }

    /// Whether `w` is the pool's: a slot within it, or one above it still winding down.
    public func inPool(_ w: WorkerView) -> Bool { w.slot <= max(poolSize, 1) || w.state != "stopped" }
  }

  public enum ReadError: Error, CustomStringConvertible, Equatable {
    case tooSmall(Int), badMagic, badVersion(UInt32), badByteOrder, badGeometry, checksum, busy
    public var description: String {
      switch self {
      case .tooSmall(let n): "the file is \(n) bytes; a valid one is \(HotState.fileSize)"
      case .badMagic: "it does not start with the Cortex hot-state magic"
      case .badVersion(let v): "layout version \(v) is not \(HotState.version)"
      case .badByteOrder: "it was written with another byte order"
      case .badGeometry: "its header sizes do not match this layout"
      case .checksum: "its CRC32C does not match its contents"
      case .busy: "it kept changing while being read"
      }
    }
  }

  /// The parts of the file `read` looks at besides the header: the used entries of the worker
  /// table and of the task table, by the counts in `header` (clamped to the capacities, so a
  /// damaged header still names ranges inside the file, which `read` then rejects). A reader that
  /// copies only the header and these (`cortex status`, with pread) reads a few KiB, not 320.
  public static func usedRegions(header: UnsafeRawBufferPointer) -> [Range<Int>] {
    guard header.count >= headerSize else { return [headerSize..<fileSize] }
    let (w, t) = usedRanges(header: header)
    return [w, t]
  }

  /// `usedRegions` as a pair, which `readConsistent` uses: an array of ranges made the runtime
  /// build its type at first use, a tenth of a `cortex status`'s instructions.
  public static func usedRanges(header: UnsafeRawBufferPointer) -> (workers: Range<Int>, tasks: Range<Int>) {
    guard header.count >= headerSize else { return (headerSize..<fileSize, fileSize..<fileSize) }
    let wn = min(Int(header.loadUnaligned(fromByteOffset: H.workerEntries, as: UInt32.self)), workerCapacity)
    let tn = min(Int(header.loadUnaligned(fromByteOffset: H.taskEntries, as: UInt32.self)), taskCapacity)
    return (workersOffset..<(workersOffset + wn * workerSlotSize), tasksOffset..<(tasksOffset + tn * taskSlotSize))
  }

  /// Validates and decodes a copy of the file's bytes (which may be any length or garbage). Only
  /// the header and `usedRegions` of it are read.
  public static func read(_ bytes: UnsafeRawBufferPointer) -> Result<View, ReadError> {
    guard bytes.count >= headerSize else { return .failure(.tooSmall(bytes.count)) }
    guard Array(bytes[0..<8]) == magic else { return .failure(.badMagic) }
    func u32(_ o: Int) -> UInt32 { bytes.loadUnaligned(fromByteOffset: o, as: UInt32.self) }
    func i64(_ o: Int) -> Int64 { bytes.loadUnaligned(fromByteOffset: o, as: Int64.self) }
    guard u32(H.version) == version else { return .failure(.badVersion(u32(H.version))) }
    guard u32(H.byteOrder) == byteOrderMark else { return .failure(.badByteOrder) }
    guard u32(H.headerSize) == headerSize, u32(H.workerSlot) == workerSlotSize, u32(H.workerCap) == workerCapacity,
      u32(H.taskSlot) == taskSlotSize, u32(H.taskCap) == taskCapacity
    else { return .failure(.badGeometry) }
    guard bytes.count >= fileSize else { return .failure(.tooSmall(bytes.count)) }
    let wn = Int(u32(H.workerEntries))
    let tn = Int(u32(H.taskEntries))
    guard wn <= workerCapacity, tn <= taskCapacity else { return .failure(.badGeometry) }
    guard checksum(bytes.baseAddress!, workers: wn, tasks: tn) == u32(H.crc) else { return .failure(.checksum) }
    var counts = TaskState.Counts()
    for st in TaskState.allCases { counts[st, default: 0] = Int(i64(H.counts + 8 * st.ordinal)) }
    var qp = Priority.Counts()
    for p in Priority.allCases { qp[p, default: 0] = Int(u32(H.queuedByPriority + 4 * p.rawValue)) }
    var workers: [WorkerView] = []
    for i in 0..<wn {
      let o = workersOffset + i * workerSlotSize
      let st = Int(u32(o + 4))
      let task = Int(u32(o + 12))
      workers.append(
        WorkerView(
          slot: Int(u32(o)), state: st < workerStates.count ? workerStates[st].rawValue : "unknown",
          pid: Int32(bitPattern: u32(o + 8)), task: task == 0 ? nil : task, tasksDone: Int(i64(o + 16)),
          lastSeenMs: i64(o + 24), restarts: Int(u32(o + 32))))
    }
    var tasks: [TaskView] = []
    for i in 0..<tn {
      let o = tasksOffset + i * taskSlotSize
      let st = Int(bytes[o + 8])
      let pr = Int(bytes[o + 9])
      let w = Int(u32(o + 12))
      let started = i64(o + 24)
      tasks.append(
        TaskView(
          number: Int(i64(o)), state: st < TaskState.allCases.count ? TaskState.allCases[st] : .queued,
          priority: Priority(rawValue: pr) ?? .medium, attempt: Int(bytes.loadUnaligned(fromByteOffset: o + 10, as: UInt16.self)),
          worker: w == 0 ? nil : w, submittedMs: i64(o + 16), startedMs: started == 0 ? nil : started,
          tokensUsed: Int(i64(o + 32)), budget: Int(i64(o + 40)), pid: Int32(bitPattern: u32(o + 48))))
    }
    tasks.sort { $0.number < $1.number }
    let ph = Int(u32(H.phase))
    return .success(
      View(
        lastSeq: bytes.loadUnaligned(fromByteOffset: H.lastSeq, as: UInt64.self), pid: Int32(truncatingIfNeeded: i64(H.pid)),
        startedMs: i64(H.startedMs), updatedMs: i64(H.updatedMs), poolSize: Int(u32(H.poolSize)),
        tokensTotal: Int(i64(H.tokensTotal)), tokensReserved: Int(i64(H.tokensReserved)),
        tokensUsed: Int(i64(H.tokensUsed)), tokensAvailable: Int(i64(H.tokensAvailable)), counts: counts,
        queuedByPriority: qp, rejected: Int(i64(H.rejected)), nextTask: Int(i64(H.nextTask)),
        phase: ph < phases.count ? phases[ph] : "unknown", admitting: u32(H.admitting) == 1,
        activeTotal: Int(u32(H.activeTotal)),
        clusterUnreachableSinceMs: i64(H.clusterUnreachableSince) == 0 ? nil : i64(H.clusterUnreachableSince),
        clusterNode: u32(H.clusterNode) == 1, workers: workers, tasks: tasks))
  }

  /// Reads a live mapping: retries while a write is in progress (odd seqlock or a moved one).
  public static func readConsistent(_ base: UnsafeRawPointer, size: Int, attempts: Int = 200) -> Result<View, ReadError> {
    readConsistent(
      size: size, attempts: attempts,
      copy: { $0.copyMemory(from: UnsafeRawBufferPointer(start: base, count: min(size, $0.count))) },
      seqlock: { base.loadUnaligned(fromByteOffset: H.seqlock, as: UInt64.self) })
  }

  /// Reads a live file through `copy` (fills the buffer with the file's first bytes) and `seqlock`
  /// (reads the live seqlock word), so a reader can use pread(2) instead of a mapping: retries while
  /// a write is in progress (odd seqlock or a moved one). Errors of the two closures are rethrown.
  /// `copy` must fill the header and `usedRegions` of the buffer, or all of it (zeros past a short
  /// file); what it leaves unwritten is never read. Inlinable, so a caller in
  /// another module gets it specialized for its error type: unspecialized, building the generic
  /// metadata cost a `cortex status` more than reading and checking the file.
  @inlinable
  public static func readConsistent<E: Error>(
    size: Int, attempts: Int = 200, copy: (UnsafeMutableRawBufferPointer) throws(E) -> Void, seqlock: () throws(E) -> UInt64
  ) throws(E) -> Result<View, ReadError> {
    // Not zeroed first: `copy` writes every byte (a memset of the whole file was a fifth of a status).
    var copied = [UInt8](unsafeUninitializedCapacity: size) { _, count in count = size }
    func fill() throws(E) {
      var failure: E?
      copied.withUnsafeMutableBytes { b in
        do throws(E) { try copy(b) } catch { failure = error }
      }
      if let failure { throw failure }
    }
    if size < 48 {
      try fill()
      return copied.withUnsafeBytes { read($0) }
    }
    var last: ReadError = .busy
    for _ in 0..<attempts {
      let s1 = try seqlock()
      fence()
      if s1 & 1 == 1 { continue }
      try fill()
      fence()
      let s2 = try seqlock()
      if s1 != s2 { continue }
      let r = copied.withUnsafeBytes { read($0) }
      switch r {
      case .success: return r
      case .failure(let e):
        last = e
        if e != .checksum { return r }
      }
    }
    return .failure(last)
  }

  /// Reads a live file with positional reads (`pread(offset, into)`, returning the bytes read, 0
  /// or less at its end): the header, then only the table entries in use (`usedRegions`;
  /// reading the whole 320 KiB file was most of a `cortex status`), zeros past a short file
  /// (which the checksum rejects), and the seqlock word. What `cortex status` and the web view
  /// read the daemon's file with.
  @inlinable
  public static func readConsistent<E: Error>(
    size: Int, attempts: Int = 200, pread: (_ offset: Int, _ into: UnsafeMutableRawBufferPointer) throws(E) -> Int
  ) throws(E) -> Result<View, ReadError> {
    try readConsistent(
      size: size, attempts: attempts,
      copy: { (buffer: UnsafeMutableRawBufferPointer) throws(E) in
        func fill(_ range: Range<Int>) throws(E) {
          let r = range.clamped(to: 0..<buffer.count)
          var done = r.lowerBound
          while done < r.upperBound {
            let n = try pread(done, UnsafeMutableRawBufferPointer(rebasing: buffer[done..<r.upperBound]))
            if n <= 0 { break }
            done += n
          }
          if done < r.upperBound {
            UnsafeMutableRawBufferPointer(rebasing: buffer[done..<r.upperBound]).initializeMemory(as: UInt8.self, repeating: 0)
          }
        }
        try fill(0..<headerSize)
        let header = UnsafeRawBufferPointer(rebasing: buffer[0..<min(headerSize, buffer.count)])
        let (workers, tasks) = usedRanges(header: header)
        try fill(workers)
        try fill(tasks)
      },
      seqlock: { () throws(E) -> UInt64 in
        var word: UInt64 = 0
        let n = try withUnsafeMutableBytes(of: &word) { (b: UnsafeMutableRawBufferPointer) throws(E) in try pread(seqlockOffset, b) }
        return n == 8 ? word : 1  // odd: "being written", so the reader tries again
      })
  }

  /// A full memory fence between reading the seqlock and the data (callable from inlined code).
  @usableFromInline static func fence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
}

extension HotState.View {
  /// The JSON pieces `cortex status --json` and the web view's `/api/status` both give.
  public var countsJSON: JSON { .object(TaskState.allCases.map { ($0.rawValue, .int(Int64(counts[$0, default: 0]))) }) }
  public var queuedByPriorityJSON: JSON {
    .object(Priority.allCases.reversed().map { ($0.name, .int(Int64(queuedByPriority[$0, default: 0]))) })
  }
  public var budgetJSON: JSON {
    .object([
      ("total", .int(Int64(tokensTotal))), ("reserved", .int(Int64(tokensReserved))), ("used", .int(Int64(tokensUsed))),
      ("available", .int(Int64(tokensAvailable))),
    ])
  }
}
