import CortexCore
import Posix

/// The reading half of `cortex retry` (Scheduler+Retry decides): the specs of finished tasks the
/// scheduler no longer holds come from their `tasks/<id>/spec.json`, read on the files thread
/// (FileReads) before the request is handed over, so the scheduler stays free of I/O and the
/// loop goes on serving clients and starting tasks while they are read.
extension Daemon {
  /// Hands retry request `ids`/`allFailed` of `client` to the scheduler once it has the
  /// `spec.json` of every task it covers that the scheduler knows only by its compact record (a
  /// retry of held tasks reads nothing and is decided at once). Those not in `stored` yet are read
  /// on the files thread, and this is called again with them (`takeFileReads`): the tasks are
  /// looked up again then, as a task held in full when the request came may have been let go
  /// meanwhile (the scheduler keeps only the newest finished ones).
  func retryWithStoredSpecs(_ client: ClientID, _ ids: [Int], allFailed: Bool, stored: [Int: Scheduler.StoredSpec], now t: Int64) {
    let missing = scheduler.retrySpecsNeeded(ids, allFailed: allFailed).filter { stored[$0] == nil }
    guard !missing.isEmpty else {
      feed(.control(client, .retry(ids, allFailed: allFailed, stored: stored)), now: t)
      groupsFileDue = true
      return
    }
    let p = paths
    let reads = fileReads
    files.async {
      var all = stored
      for n in missing { all[n] = Self.storedSpec(p, n) }
      reads.post(.retrySpecs(client: client, ids: ids, allFailed: allFailed, stored: all))
    }
  }

  /// Task `n`'s spec as its `spec.json` has it (redacted), or why it cannot be had, naming the file.
  static func storedSpec(_ paths: Paths, _ n: Int) -> Scheduler.StoredSpec {
    let path = paths.taskDir(n) + "/spec.json"
    let bytes: [UInt8]
    do throws(PosixError) {
      guard let b = try FileSystem.read(path) else {
        guard FileSystem.exists(paths.taskDir(n)) else {
          return .absent(
            "no spec is kept for it: \(paths.taskDir(n)) does not exist (a synthetic task has none; retention or cortex clean removes finished ones)"
          )
        }
        return .unreadable("\(path) does not exist")
      }
      bytes = b
    } catch {
      return .unreadable("\(path) cannot be read: \(error)")
    }
    let v: JSON
    do { v = try JSON.parse(bytes) } catch { return .unreadable("\(path) is not valid JSON: \(error)") }
    do throws(SpecError) { return .spec(try TaskSpec.decode(v)) } catch {
      return .unreadable("\(path) is not a valid task spec: \(error)")
    }
  }

  /// For a snapshot written before it kept `retried`: the tasks that some task the scheduler
  /// does not hold retries, from the `retry_of` in their `spec.json`. Only tasks after the oldest
  /// failed or timed-out one are read (a retry is numbered after what it retries), and only a
  /// file that mentions `retry_of` is parsed. Runs once, at the first start after an upgrade.
  static func findRetried(_ paths: Paths, _ s: Scheduler) -> [Int] {
    let runs = s.finishedStates.runs
    guard let first = runs.first(where: { $0.state == .failed || $0.state == .timedOut })?.first else { return [] }
    let key = Array(#""retry_of""#.utf8)
    var found: [Int] = []
    for r in runs where r.last > first {
      for n in max(r.first, first + 1)...r.last where s.tasks[n] == nil {
        guard let b = (try? FileSystem.read(paths.taskDir(n) + "/spec.json")) ?? nil, ByteSearch.contains(key, in: b),
          let old = (try? JSON.parse(b))?["retry_of"]?.string.flatMap(TaskID.parse)
        else { continue }
        found.append(old)
      }
    }
    return found
  }
}
