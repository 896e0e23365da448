// libFuzzer targets for the decoders that read untrusted bytes. Built by scripts/fuzz together
// with the CortexCore sources (one module), one binary per target:
//   FUZZ_SPEC     the task-spec decoder (JSON text → TaskSpec), and the config decoder
//   FUZZ_FRAMING  the FIFO message framing (LineBuffer) and both protocol decoders
//   FUZZ_LOG      the event-log reader (LogSegments.scan), and the validator agreeing with the parser

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
        case .tooLong, .none: break
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
  #endif
  return 0
}
