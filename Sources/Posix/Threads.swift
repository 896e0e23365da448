internal import CShim
internal import Glibc
import Synchronization

/// A single background thread that runs submitted jobs in order. Used so the daemon loop never
/// waits on file writes it does not need to wait on (task files, snapshots).
public final class BackgroundQueue: Sendable {
  private struct Pending: ~Copyable {
    var jobs: [@Sendable () -> Void] = []
    var stopping = false
  }
  private let state = Mutex(Pending())
  private let wake: (read: FileDescriptor, write: FileDescriptor)
  private let done: (read: FileDescriptor, write: FileDescriptor)
  private let idleCount = Atomic<Int>(0)
  private let submitted = Atomic<Int>(0)

  public init() throws(PosixError) {
    wake = try makePipe(nonBlocking: true)
    done = try makePipe()
    try startThread { [self] in run() }
  }

  /// Queues `job`; it runs after every job queued before it.
  public func async(_ job: @escaping @Sendable () -> Void) {
    submitted.add(1, ordering: .relaxed)
    let first = state.withLock { s -> Bool in
      s.jobs.append(job)
      return s.jobs.count == 1
    }
    if first { _ = try? wake.write.writeAll([1]) }
  }

  /// Number of jobs queued and not yet finished.
  public var backlog: Int { submitted.load(ordering: .relaxed) - idleCount.load(ordering: .relaxed) }

  /// Blocks until every job queued so far has run.
  public func drain() {
    let target = submitted.load(ordering: .acquiring)
    while idleCount.load(ordering: .acquiring) < target {
      _ = done.read.waitReadable(timeoutMs: 10)
      var b: [UInt8] = []
      _ = try? done.read.setNonBlocking(true)
      _ = try? done.read.read(appendingTo: &b, max: 64)
    }
  }

  private func run() {
    var byte: [UInt8] = []
    while true {
      let jobs = state.withLock { s -> [@Sendable () -> Void] in
        let j = s.jobs
        s.jobs.removeAll(keepingCapacity: true)
        return j
      }
      if jobs.isEmpty {
        // Sleep until woken, but never for long: a wake byte that could not be written (EINTR
        // storms, injected faults) must not strand queued jobs, or `drain` would wait forever.
        _ = wake.read.waitReadable(timeoutMs: 100)
        byte.removeAll(keepingCapacity: true)
        _ = try? wake.read.read(appendingTo: &byte, max: 64)
        continue
      }
      for job in jobs {
        job()
        idleCount.add(1, ordering: .releasing)
      }
      _ = try? done.write.setNonBlocking(true)
      _ = try? done.write.writeAll([1])
    }
  }
}

/// nanosleep(2) for `ms` milliseconds.
public func sleepMs(_ ms: Int) {
  var ts = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
  var rem = timespec()
  while Glibc.nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
}

public enum Memory {
  /// malloc_trim(3): gives free heap pages back to the kernel. The daemon calls it when a burst of
  /// work is over, so its resident size follows what it holds rather than its peak.
  public static func releaseFreePages() { _ = cshim_malloc_trim() }
}

/// Starts a detached thread running `body` (pthread_create(3)); for long-lived workers such as
/// the cluster link.
public func startThread(_ body: @escaping @Sendable () -> Void) throws(PosixError) {
  final class Box: Sendable {
    let body: @Sendable () -> Void
    init(_ b: @escaping @Sendable () -> Void) { body = b }
  }
  let box = Unmanaged.passRetained(Box(body))
  var tid = pthread_t()
  let rc = pthread_create(
    &tid, nil,
    { arg in
      let b = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
      b.body()
      return nil
    }, box.toOpaque())
  if rc != 0 {
    box.release()
    throw PosixError("pthread_create", code: rc)
  }
  pthread_detach(tid)
}

/// Names the calling thread (prctl PR_SET_NAME, at most 15 bytes): `top -H` and
/// `/proc/PID/task/TID/comm` then tell, say, the web view's thread from the loop.
public func nameThisThread(_ name: String) {
  _ = cshim_set_thread_name(String(name.utf8.prefix(15))!)
}

/// Lowers the calling thread's CPU priority (setpriority(2) on its thread id; Linux gives each
/// thread its own nice value): when the cores are busy, the process's other threads run first.
/// Returns false when the kernel refused.
@discardableResult
public func lowerThisThreadPriority(nice: Int32) -> Bool { cshim_set_thread_nice(nice) == 0 }
