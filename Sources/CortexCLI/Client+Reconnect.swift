import CortexCore
import Posix

extension Client {
  /// How long a `wait` keeps trying to reach a daemon that went away under it.
  static let rewaitWindowMs: Int64 = 30_000
  /// A connection that a daemon served this long before it was lost counts as the daemon having
  /// answered again: the window starts over at the next loss. (A daemon that accepts and dies at
  /// once, over and over, still runs out the window.)
  static let servedMs: Int64 = 1000
  /// How long the daemon may be gone before `wait` says it waits for one to come back.
  static let quietMs: Int64 = 2000

  /// `wait` for `ids` on `client`; when the connection is lost (a `cortex restart`, or a crash and
  /// a new start: SPEC §14), connects again and asks again, for up to `rewaitWindowMs`. Waiting
  /// changes nothing, so asking twice is safe; the tasks themselves carry on meanwhile.
  static func waitSurvivingRestarts(_ ctx: Context, _ client: Client, _ ids: [String]) throws(CLIError) -> JSON {
    try askSurvivingRestarts(ctx, client, .object([("op", .string("wait")), ("ids", .array(ids.map { .string($0) }))]), ids)
  }

  /// Sends `request` (one that is safe to ask twice: `wait`, `cancel`) on `client`, and asks
  /// again on a new connection when the daemon goes away before answering, as `wait` does. A
  /// cancel is logged before the worker is told (`task.stopping`), so the next daemon still
  /// stops the task, and asked again it answers once the task has ended.
  static func askSurvivingRestarts(_ ctx: Context, _ client: Client, _ request: JSON, _ ids: [String]) throws(CLIError) -> JSON {
    var c = client
    var lostAt: Int64? = nil
    var connectedAt = Clock.monotonicMs()
    var notice = DatabaseNotice(ctx: ctx, ids: ids)
    while true {
      do throws(CLIError) {
        try c.send(request)
        return try Client.check(try c.receive { notice.check() })
      } catch {
        let op = request["op"]?.string ?? "wait"
        if error.answer?["reason"]?.string == "daemon_stopped" { throw stoppedFirst(error, ctx, ids, op: op) }
        guard error.code == ExitCode.notRunning, error.answer == nil else { throw error }
        // The window ran from the first loss for the whole wait: a second restart more than 30 s
        // after the first gave up at once, although the daemon was back within milliseconds.
        if Clock.monotonicMs() - connectedAt >= Self.servedMs { lostAt = nil }
        let t = lostAt ?? Clock.monotonicMs()
        lostAt = t
        var next: Client? = nil
        var said = false
        while next == nil {
          if Clock.monotonicMs() - t > Self.rewaitWindowMs { throw gaveUp(error, ctx, ids, op: op) }
          // A restart is back within a second; past that, say what this waits for (a daemon
          // killed, and restarted or not: it waited 30 s without a word).
          if !said && Clock.monotonicMs() - t > Self.quietMs {
            said = true
            ctx.err(
              "cortex: \(error.description) (killed, or crashed?); waiting up to \(rewaitWindowMs / 1000) s for a daemon to answer again\n")
          }
          sleepMs(20)
          next = try? Client(ctx)
        }
        c = next!
        connectedAt = Clock.monotonicMs()
      }
    }
  }

  /// The daemon answered `daemon_stopped`: it stopped (`cortex stop`, SIGTERM) before it could
  /// answer, and no daemon is coming back by itself. Said at once (it used to wait out the 30 s
  /// window first), with what it means for the command; exit 69.
  static func stoppedFirst(_ error: CLIError, _ ctx: Context, _ ids: [String], op: String) -> CLIError {
    let (which, again) = named(ids)
    let what =
      op == "cancel"
      ? "before the cancel of \(which) was confirmed: \(cancelKept) (asking again is harmless)"
      : "before \(which) ended: unfinished tasks are not lost (a stop requeues running ones, for its next start or, in cluster mode, for any node)"
    return CLIError(
      ExitCode.notRunning,
      "the daemon stopped (cortex stop, or SIGTERM) \(what); \(ctx.startAdvice), then cortex \(op) \(again); cortex show \(ids.first ?? "ID") says where it stands",
      answer: error.answer)
  }

  /// What becomes of a cancel the daemon did not get to confirm.
  static let cancelKept = "the cancel of a running task is on record and the next daemon applies it"

  /// How a message names the tasks (`task-000001`, `3 tasks`), and what to give the command again.
  static func named(_ ids: [String]) -> (which: String, again: String) {
    ids.count == 1 ? (ids[0], ids[0]) : ("\(ids.count) tasks", "ID...")
  }

  /// The daemon went away while waiting (a `cortex stop`, a crash) and none answered again
  /// within `rewaitWindowMs`: the tasks are not lost (a stop requeues what runs, and a start
  /// picks them up), so say so and how to ask again, after what went wrong.
  static func gaveUp(_ error: CLIError, _ ctx: Context, _ ids: [String], op: String = "wait") -> CLIError {
    let (which, again) = named(ids)
    let what =
      op == "cancel"
      ? "so the cancel of \(which) is not confirmed (\(cancelKept))"
      : "so stopped waiting for \(which). Accepted tasks are kept (a stop requeues running ones)"
    return CLIError(
      error.code,
      "\(error.description); no daemon answered again within \(rewaitWindowMs / 1000) s, \(what): \(ctx.startAdvice), then cortex \(op) \(again)",
      answer: error.answer)
  }
}

/// While a `wait` or `cancel` waits for its answer on a node in cluster mode, which reads the
/// outcome from the cluster's database: says on stderr when the node cannot reach that database
/// (from the hot state, as `cortex status` does), and when it answers again. The wait goes on:
/// the tasks are not affected, and their end is known once the database answers.
struct DatabaseNotice {
  let ctx: Context
  let ids: [String]
  /// The outage last reported (when it began, wall ms), nil while none is.
  var said: Int64? = nil

  mutating func check() {
    guard let view = try? DaemonControl.hotState(ctx.paths) else { return }
    let which = ids.count == 1 ? ids[0] : "\(ids.count) tasks"
    if let since = view.clusterUnreachableSinceMs, said == nil {
      said = since
      ctx.err(
        "cortex: this node cannot reach the cluster's database (unreachable for \(formatMs(max(0, Clock.wallMs() - since)))): "
          + "the end of \(which) is read from it, so this waits until it answers; the tasks go on (Ctrl-C stops waiting, not them)\n")
    } else if view.clusterUnreachableSinceMs == nil, said != nil {
      said = nil
      ctx.err("cortex: the cluster's database answers again; still waiting for \(which)\n")
    }
  }
}
