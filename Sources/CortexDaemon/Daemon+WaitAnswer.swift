import CortexCore
import Posix

/// `wait` answers for tasks the scheduler holds only as a finished state (SPEC §13), made the
/// same as for a task held in memory: exit code, signal and end time from their compact records
/// (on the loop: one `pread` each), and why they ended, the reason and its sentence (`detail`),
/// from their result.json while it exists, read on the files thread (FileReads) so that a wait
/// of thousands of old ids never holds the loop. Such an answer goes out once its files are
/// read; a client waits for one answer at a time, so none overtakes another.
extension Daemon {
  /// Sends `v` to client `c`, a `wait` answer once completed as above.
  func sendReply(_ c: ClientID, _ v: JSON, now t: Int64) {
    let (answer, toRead) = completeWaitReply(v)
    guard !toRead.isEmpty else { return reply(c, answer, now: t) }
    let p = paths
    let reads = fileReads
    files.async {
      var why: [Int: [(String, JSON)]] = [:]
      for n in toRead {
        guard let bytes = (try? FileSystem.read(p.taskDir(n) + "/result.json")) ?? nil, let r = try? JSON.parse(bytes) else { continue }
        why[n] = ["reason", "detail"].compactMap { k in r[k].flatMap { $0.isNull ? nil : (k, $0) } }
      }
      reads.post(.waitReasons(client: c, answer: answer, reasons: why))
    }
  }

  /// A `wait` answer's tasks held only as a finished state filled from their compact records,
  /// and those whose result.json may say why they ended (they had a task directory).
  func completeWaitReply(_ v: JSON) -> (answer: JSON, toRead: [Int]) {
    guard let pairs = v.object, let tasks = v["tasks"]?.array, tasks.contains(where: { $0["compact"]?.bool == true }) else {
      return (v, [])
    }
    var toRead: [Int] = []
    let filled = tasks.map { t -> JSON in
      guard t["compact"]?.bool == true, let n = t["id"]?.string.flatMap(TaskID.parse), var o = t.object else { return t }
      let (record, removed) = compactRecord(n)
      o.removeAll { $0.0 == "compact" }
      if let r = record {
        o.removeAll { $0.0 == "exit_code" || $0.0 == "signal" }
        o.append(("exit_code", r.exitCode.map { .int(Int64($0)) } ?? .null))
        o.append(("signal", r.signal.map { .int(Int64($0)) } ?? .null))
        o.append(("ended", .string(Timestamp.rfc3339(ms: r.endedMs))))
      }
      if let removed { o.append(("retention", .string(removed))) }
      if record?.hadDirectory ?? true { toRead.append(n) }
      return .object(o)
    }
    return (.object(pairs.map { $0.0 == "tasks" ? ("tasks", .array(filled)) : $0 }), toRead)
  }

  /// `answer` with each task's reason and detail as its result.json said them (before `ended`,
  /// where a task held in memory has them last).
  static func withReasons(_ answer: JSON, _ why: [Int: [(String, JSON)]]) -> JSON {
    guard let pairs = answer.object, let tasks = answer["tasks"]?.array else { return answer }
    let filled = tasks.map { t -> JSON in
      guard let n = t["id"]?.string.flatMap(TaskID.parse), let said = why[n], !said.isEmpty, var o = t.object else { return t }
      o.removeAll { $0.0 == "reason" || $0.0 == "detail" }
      o.insert(contentsOf: said, at: o.firstIndex { $0.0 == "ended" } ?? o.count)
      return .object(o)
    }
    return .object(pairs.map { $0.0 == "tasks" ? ("tasks", .array(filled)) : $0 })
  }
}
