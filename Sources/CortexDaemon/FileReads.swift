import CortexCore
import Posix
import Synchronization

/// Reads of finished tasks' files that a request needs, done on the daemon's files thread so
/// that the loop never waits for the disk (thousands of `spec.json` for one `retry
/// --all-failed` stalled every client and every start; a `wait` of old ids reads their
/// result.json). Each job posts its answer here; the
/// loop watches `wakeFD` (`Daemon.kindFileReads`) and carries on with the answers it takes.
final class FileReads: Sendable {
  /// What a job read, with what the loop needs to go on.
  enum Answer: Sendable {
    /// The stored specs of a `retry` request from `client` (Daemon+Retry).
    case retrySpecs(client: ClientID, ids: [Int], allFailed: Bool, stored: [Int: Scheduler.StoredSpec])
    /// A `wait` answer for `client` and, by task, the reason and detail its result.json gave
    /// (Daemon+WaitAnswer).
    case waitReasons(client: ClientID, answer: JSON, reasons: [Int: [(String, JSON)]])
  }

  private let answers = Mutex<[Answer]>([])
  private let wakePipe: (read: FileDescriptor, write: FileDescriptor)

  init() throws(PosixError) { wakePipe = try makePipe(nonBlocking: true) }

  /// Readable when answers are waiting.
  var wakeFD: FileDescriptor { wakePipe.read }

  /// From the files thread: queues an answer and wakes the loop (once per batch of answers).
  func post(_ a: Answer) {
    let first = answers.withLock { q -> Bool in
      q.append(a)
      return q.count == 1
    }
    if first { _ = try? wakePipe.write.writeAll([1]) }
  }

  /// On the loop: the answers posted so far, oldest first.
  func take() -> [Answer] {
    var b: [UInt8] = []
    _ = try? wakePipe.read.read(appendingTo: &b, max: 256)
    return answers.withLock { q in
      defer { q.removeAll() }
      return q
    }
  }
}

extension Daemon {
  /// The loop's side of FileReads: each answer goes on where its request left off.
  func takeFileReads(now t: Int64) {
    for a in fileReads.take() {
      switch a {
      case .retrySpecs(let client, let ids, let allFailed, let stored):
        retryWithStoredSpecs(client, ids, allFailed: allFailed, stored: stored, now: t)
      case .waitReasons(let client, let answer, let reasons):
        reply(client, Self.withReasons(answer, reasons), now: t)
      }
    }
  }
}
