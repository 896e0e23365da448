import CortexCore
import CortexDaemon
import Posix

/// `cortex status`: maps hot-state.mmap read-only and prints a consistent view without talking
/// to the daemon; says whether the daemon is running.
enum StatusCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    try args.noPositionals()
    let running = daemonRunning(ctx.paths)
    let view = try DaemonControl.hotState(ctx)
    let now = Clock.wallMs()
    let stale = notResponding(view, pid: running, now: now)
    let configured = clusterNode(ctx.paths)
    let cluster = clusterShown(configured: configured, view: view, running: running != nil)
    if ctx.json {
      var v = json(view, running: running != nil, responding: running != nil && stale == nil, now: now, ctx).object ?? []
      if let g = GroupsFile.read(ctx.paths) {
        v.append(("queue_paused", g["queue_paused"] ?? .bool(false)))
        v.append(("groups", g["groups"] ?? .array([])))
        // In cluster mode: the held groups' counts in the whole cluster (`groups` counts this node's).
        if let c = g["cluster_groups"] { v.append(("cluster_groups", c)) }
      }
      // A node's own budget is a placeholder (2^60, so that the database's check is the one that
      // refuses): the cluster's budget is `cortex cluster status --json`.
      if let node = cluster, let i = v.firstIndex(where: { $0.0 == "budget" }) {
        v[i].1 = .object([("scope", .string("cluster")), ("see", .string("cortex cluster status"))])
        var c: [(String, JSON)] = [("node", .string(node ?? Host.name))]
        c.append(("database", .string(view.clusterUnreachableSinceMs == nil ? "reachable" : "unreachable")))
        if let since = view.clusterUnreachableSinceMs { c.append(("unreachable_since", .string(Timestamp.rfc3339(ms: since)))) }
        v.append(("cluster", .object(c)))
      }
      ctx.printJSON(.object(v))
      return 0
    }
    var s = ""
    if let pid = running, let stale {
      s += "daemon     \(ctx.bold("NOT RESPONDING")): pid \(pid) holds the lock, but \(stale); phase \(view.phase)\n"
    } else if let pid = running {
      s +=
        "daemon     running, pid \(pid), up \(formatMs(now - view.startedMs)), phase \(view.phase)\(view.admitting ? "" : ", NOT ADMITTING (disk full or log unwritable; see daemon.log)"); updated \(formatMs(max(0, now - view.updatedMs))) ago\n"
    } else {
      s +=
        "daemon     not running (state below as of \(Timestamp.rfc3339(ms: view.updatedMs)); \(ctx.startAdvice))\n"
    }
    // Counted and joined by hand: a `Dictionary(grouping:)` of the workers and `joined` each made
    // the runtime build generic types at first use, a tenth of the command's instructions.
    let pool = view.poolWorkers
    var parts = ""
    for k in ["busy", "idle", "starting", "restarting", "stopping", "parked", "stopped"] {
      var n = 0
      for w in pool where w.state == k { n += 1 }
      if n > 0 { parts += (parts.isEmpty ? "" : ", ") + "\(n) \(k)" }
    }
    s += "workers    \(view.poolSize) in the pool: " + parts + "\n"
    let c = view.counts
    var byPriority = ""
    for p in Priority.allCases.reversed() { byPriority += (byPriority.isEmpty ? "" : ", ") + "\(p.name) \(view.queuedByPriority[p] ?? 0)" }
    s +=
      "queue      \(c[.queued] ?? 0) queued (" + byPriority + "), \(c[.assigned] ?? 0) assigned, \(c[.running] ?? 0) running\n"
    s +=
      "finished   \(c[.succeeded] ?? 0) succeeded, \(c[.failed] ?? 0) failed, \(c[.cancelled] ?? 0) cancelled, \(c[.timedOut] ?? 0) timed out; \(view.rejected) refused at submit\n"
    if let node = cluster {
      s +=
        "cluster    node \(node ?? "(host name)"); the token budget, the queue and the other nodes are the cluster's: cortex cluster status\n"
      if let since = view.clusterUnreachableSinceMs {
        s +=
          "           \(ctx.bold("POSTGRESQL UNREACHABLE")) for \(formatMs(max(0, now - since))) (as of the hot state): new submits are refused; "
          + "running tasks go on, their results are kept and delivered when it is back (see daemon.log)\n"
      }
    } else {
      s +=
        "budget     \(view.tokensAvailable) of \(view.tokensTotal) tokens available (\(view.tokensReserved) reserved, \(view.tokensUsed) used)\n"
      if let node = configured {
        s += "note       config.json makes this directory cluster node \(node ?? Host.name), "
        s += "but the running daemon is a single host until a stop and a start\n"
      }
    }
    // In cluster mode task ids come from the database's sequence: this node's counter is not
    // the next id (it said task-000006 while the cluster's next was task-000007).
    s += "log        seq \(view.lastSeq)" + (cluster == nil ? "; next task \(TaskID.format(view.nextTask))" : "") + "\n"
    s += GroupsFile.summary(GroupsFile.read(ctx.paths), clusterUnreachable: view.clusterUnreachableSinceMs != nil)
    let running_ = view.tasks.filter { $0.state == .running || $0.state == .assigned }.prefix(10)
    if !running_.isEmpty {
      s +=
        "\n"
        + table(
          ["TASK", "STATE", "WORKER", "ATTEMPT", "TIME", "TOKENS"],
          running_.map { t in
            [
              TaskID.format(t.number), ctx.paint(t.state.rawValue), t.worker.map(WorkerID.format) ?? "-", String(t.attempt),
              t.startedMs.map { formatMs(now - $0) } ?? "-", "\(t.tokensUsed)/\(t.budget)",
            ]
          })
    }
    ctx.out(s)
    return 0
  }

  /// Cluster mode's node name as config.json gives it (nil inside: the host's name), or nil on
  /// a single host. Read from the file's JSON, not through `Daemon.loadConfig`, whose full
  /// decoding was a fifth of a `cortex status`'s instructions.
  /// What status shows as the node's cluster setting: config.json's while no daemon runs, but a
  /// running daemon's own mode when one does (the hot state says it): `init --cluster` on a
  /// directory whose single-host daemon runs made status show a cluster node that was not one.
  static func clusterShown(configured: String??, view: HotState.View, running: Bool) -> String?? {
    guard running else { return configured }
    return view.clusterNode ? (configured ?? .some(nil)) : nil
  }

  static func clusterNode(_ paths: Paths) -> String?? {
    guard let bytes = (try? FileSystem.read(paths.config)) ?? nil, contains(bytes, #""cluster""#), let v = try? JSON.parse(bytes),
      let c = v["cluster"], c.object != nil
    else { return nil }
    return .some(c["node"]?.string)
  }

  /// Whether `text` occurs in `bytes` (a config without the word is not parsed at all).
  static func contains(_ bytes: [UInt8], _ text: String) -> Bool {
    let t = Array(text.utf8)
    guard !t.isEmpty, bytes.count >= t.count else { return false }
    var i = 0
    while i + t.count <= bytes.count {
      if bytes[i] == t[0] {
        var j = 1
        while j < t.count && bytes[i + j] == t[j] { j += 1 }
        if j == t.count { return true }
      }
      i += 1
    }
    return false
  }

  /// A running daemon refreshes the hot state at least every second; older than this, it is not
  /// responding (stopped with SIGSTOP, or hung).
  static let staleMs: Int64 = 5000

  /// Why a daemon that holds the lock looks stuck, or nil.
  static func notResponding(_ v: HotState.View, pid: Int32?, now: Int64) -> String? {
    guard pid != nil, v.phase != "stopped" else { return nil }
    let age = now - v.updatedMs
    guard age > staleMs else { return nil }
    return "it last updated the hot state \(formatMs(age)) ago (it does every second: stopped with SIGSTOP, or hung?)"
  }

  /// The daemon's pid when one holds the directory's lock, else nil.
  static func daemonRunning(_ paths: Paths) -> Int32? {
    guard let fd = try? FileDescriptor.open(paths.lock, .readWrite) else { return nil }
    defer { fd.close() }
    if (try? fd.tryLockExclusive()) == true { return nil }  // nobody holds it (closing releases it)
    let pid = ((try? FileSystem.read(paths.pid)) ?? nil).flatMap { Int32(String(decoding: $0, as: UTF8.self).filter(\.isNumber)) }
    return pid ?? 0
  }

  static func json(_ v: HotState.View, running: Bool, responding: Bool, now: Int64, _ ctx: Context) -> JSON {
    .object([
      ("running", .bool(running)), ("responding", .bool(responding)), ("pid", .int(Int64(v.pid))), ("phase", .string(v.phase)),
      ("admitting", .bool(v.admitting)), ("seq", .int(Int64(v.lastSeq))), ("updated", .string(Timestamp.rfc3339(ms: v.updatedMs))),
      ("updated_ms_ago", .int(max(0, now - v.updatedMs))),
      ("pool_size", .int(Int64(v.poolSize))),
      (
        "workers",
        .object(Dictionary(grouping: v.poolWorkers, by: \.state).map { ($0.key, .int(Int64($0.value.count))) }.sorted { $0.0 < $1.0 })
      ),
      ("tasks", v.countsJSON),
      ("queued_by_priority", v.queuedByPriorityJSON),
      ("rejected", .int(Int64(v.rejected))),
      ("budget", v.budgetJSON),
    ])
  }
}

extension StatusCommand {
  static let help = CommandHelp(
    "status", abstract: "daemon, pool, queue and budget at a glance (reads hot-state.mmap)", usage: "cortex status",
    details: """
      Reads hot-state.mmap without asking the daemon, so it answers while the daemon is busy, hung or \
      stopped (then it says so and shows the last state). Exit 69 when the daemon has never run here. \
      In cluster mode the groups table counts the running and queued tasks of a group the cluster \
      pauses or limits in the whole cluster (as the node last read them, every 2 s), and says so \
      under the table; the rest is this node's.
      """,
    examples: [("cortex --json status | jq .tasks.queued", "the queue length")])
}
