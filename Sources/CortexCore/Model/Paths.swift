/// The coordination directory's layout (SPEC §2).
public struct Paths: Sendable {
  public let root: String
  public init(root: String) { self.root = root }

  public var config: String { root + "/config.json" }
  public var hotState: String { root + "/hot-state.mmap" }
  public var workerPool: String { root + "/worker-pool.json" }
  public var taskQueue: String { root + "/task-queue.json" }
  /// The snapshot before `task-queue.json`, kept so a damaged newest one never strands the state
  /// (retention removes only what this older one covers).
  public var taskQueuePrevious: String { root + "/task-queue.prev.json" }
  /// Compact records of finished tasks (`FinishedRecord`).
  public var finishedRecords: String { root + "/" + FinishedRecord.fileName }
  /// Sealed segments with their sizes and checksums (`Manifest`).
  public var manifest: String { events + "/" + Manifest.fileName }
  /// Where retention moves segments when `retention.archive` is set.
  public var archive: String { events + "/archive" }
  public var tokenBudget: String { root + "/token-budget.json" }
  public var events: String { root + "/events" }
  public var tasks: String { root + "/tasks" }
  public var inbox: String { root + "/inbox" }
  public var inboxAccepted: String { root + "/inbox/accepted" }
  public var inboxRejected: String { root + "/inbox/rejected" }
  public var fifo: String { root + "/fifo" }
  public var socket: String { root + "/cortex.sock" }
  public var lock: String { root + "/daemon.lock" }
  public var pid: String { root + "/daemon.pid" }
  public var metrics: String { root + "/metrics.prom" }
  public var daemonLog: String { root + "/daemon.log" }
  /// Groups, their limits and the pauses (SPEC §15), for `cortex status` and `top`.
  public var groups: String { root + "/groups.json" }
  /// Secret values of tasks (mode 0600), see `Redaction`.
  public var secrets: String { root + "/secrets.jsonl" }
  /// The systemd unit the daemon last ran under (`SystemdService`), for the advice of a command
  /// that finds it stopped; absent when it last ran outside systemd.
  public var service: String { root + "/service.json" }
  /// Terminal states a cluster node has not yet delivered to the database (cluster mode).
  public var clusterOutbox: String { root + "/cluster-outbox.jsonl" }

  public func taskDir(_ n: Int) -> String { tasks + "/" + TaskID.format(n) }
  public func fifoIn(_ slot: Int) -> String { fifo + "/" + WorkerID.format(slot) + ".in" }
  public func fifoOut(_ slot: Int) -> String { fifo + "/" + WorkerID.format(slot) + ".out" }

  /// Directories `cortex init` creates (mode 0700).
  public var directories: [String] { [root, events, tasks, inbox, inboxAccepted, inboxRejected, fifo] }

  /// The longest path a Unix socket address holds: sun_path is 108 bytes with its final NUL.
  public static let maxSocketPathBytes = 107

  /// Why `cortex.sock` cannot be bound or reached under this root, with the remedy; nil when fine.
  public var socketPathProblem: String? {
    let n = socket.utf8.count
    guard n > Self.maxSocketPathBytes else { return nil }
    return
      "the socket path \(socket) is \(n) bytes, more than the \(Self.maxSocketPathBytes) a Unix socket allows; use a shorter --dir (a symbolic link to this directory will do)"
  }
}
