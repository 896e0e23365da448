// libFuzzer targets for the decoders that read untrusted bytes. Built by scripts/fuzz together
// with the CortexCore sources (one module), one binary per target:
//   FUZZ_SPEC     the task-spec decoder (JSON text → TaskSpec), and the config decoder
//   FUZZ_FRAMING  the FIFO message framing (LineBuffer) and both protocol decoders
//   FUZZ_LOG      the event-log reader (LogSegments.scan), and the validator agreeing with the parser
//   FUZZ_REQUEST  the control-socket request decoder (Request.decode), each decoded request then
//                 handled by a real Scheduler (so a number that decodes but traps later is found)
//   FUZZ_REPORT   the CORTEX_REPORT_FD line parser (ReportLine.parse) and worker messages fed to a
//                 Scheduler with a running task

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  #if FUZZ_SPEC
    if let v = try? JSON.parse(bytes) {
      if let spec = try? TaskSpec.decode(v) {
        // Whatever decodes must round-trip.
        guard let again = try? TaskSpec.decode(spec.json()), again == spec else { fatalError("spec does not round-trip") }
        _ = spec.redactedJSON().encoded()
      }
      _ = try? Config.decode(v)
    }
  #elseif FUZZ_FRAMING
    var lines = LineBuffer(maxLine: 4096)
    var rest = bytes[...]
    while !rest.isEmpty {
      let n = min(rest.count, Int(rest.first!) % 64 + 1)
      lines.append(Array(rest.prefix(n)))
      rest = rest.dropFirst(n)
      while true {
        switch lines.next() {
        case .line(let l):
          if let m = try? WorkerToDaemon.decode(l) {
            var enc = m.encodedLine()
            enc.removeLast()
            guard (try? WorkerToDaemon.decode(enc[...])) == m else { fatalError("worker message does not round-trip") }
          }
          _ = try? DaemonToWorker.decode(l)
          continue
        case .tooLong, .dropped, .none: break
        }
        break
      }
    }
  #elseif FUZZ_LOG
    let a = LogSegments.scan(bytes) { _ in }
    let b = LogSegments.scan(bytes, parseAfter: UInt64(bytes.count % 7)) { _ in }
    if a.validEnd > bytes.count || b.validEnd > bytes.count { fatalError("validEnd past the end") }
    for line in bytes.split(separator: 10, omittingEmptySubsequences: false) {
      let parsed = (try? JSON.parse(line)) != nil
      if parsed != JSONValidator.isValid(line) { fatalError("validator and parser disagree") }
    }
  #elseif FUZZ_REQUEST
    guard let v = try? JSON.parse(bytes) else { return 0 }
    let req: Request
    do throws(Request.Failure) { req = try Request.decode(v) } catch {
      _ = error.reply.encoded()
      return 0
    }
    var s = fuzzScheduler()
    var out: [Action] = []
    let now: Int64 = 1_800_000_000_000
    switch req {
    case .submit(let specs, _, _): s.handle(.submit(7, specs), now: now, into: &out)
    case .wait(let ids): s.handle(.wait(7, ids), now: now, into: &out)
    case .cancel(let ids): s.handle(.cancel(7, ids), now: now, into: &out)
    case .scale(let n): s.handle(.scale(7, n), now: now, into: &out)
    case .stop(let ms): s.handle(.stop(timeoutMs: ms), now: now, into: &out)
    case .ping, .list, .show, .workers, .budget: break
    }
    s.handle(.tick, now: now + 1000, into: &out)
    _ = s.nextWakeMs()
    var w = JSONWriter()
    for a in out { if case .log(let e) = a { e.encode(seq: 1, tsMs: now, into: &w) } }
  #elseif FUZZ_REPORT
    for line in bytes.split(separator: 10) {
      let r = ReportLine.parse(line)
      if let t = r.tokensUsed, t < 0 || t > Numbers.maxTokens { fatalError("tokens out of range") }
      if let p = r.progress, !(0...1).contains(p) { fatalError("progress out of range") }
    }
    // The same bytes as worker messages, delivered for a task that is running on worker 1.
    var s = fuzzScheduler()
    var out: [Action] = []
    let now: Int64 = 1_800_000_000_000
    s.handle(.submit(7, [TaskSpec.fuzzSynthetic]), now: now, into: &out)
    for line in bytes.split(separator: 10) {
      guard let m = try? WorkerToDaemon.decode(line) else { continue }
      s.handle(.worker(1, m), now: now + 5, into: &out)
    }
    s.handle(.tick, now: now + 10_000, into: &out)
    var w = JSONWriter()
    for a in out { if case .log(let e) = a { e.encode(seq: 1, tsMs: now, into: &w) } }
  #endif
  return 0
}

#if FUZZ_REQUEST || FUZZ_REPORT
  /// A scheduler with two ready workers (pids 101 and 102).
  func fuzzScheduler() -> Scheduler {
    var c = Config()
    c.workers = 2
    var s = Scheduler(config: c, seed: 1)
    var out: [Action] = []
    let now: Int64 = 1_800_000_000_000
    s.start(now: now, into: &out)
    for w in 1...2 {
      s.handle(.workerSpawned(w, pid: Int32(100 + w)), now: now, into: &out)
      s.handle(.worker(w, .ready(pid: Int32(100 + w))), now: now, into: &out)
    }
    return s
  }

  extension TaskSpec {
    static var fuzzSynthetic: TaskSpec {
      var t = TaskSpec()
      t.synthetic = .init(durationMs: 100, tokens: 10)
      return t
    }
  }
#endif
