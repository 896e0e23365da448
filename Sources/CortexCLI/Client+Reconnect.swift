import CortexCore
import Posix

extension Client {
  /// How long a `wait` keeps trying to reach a daemon that went away under it.
  static let rewaitWindowMs: Int64 = 30_000

  /// `wait` for `ids` on `client`; when the connection is lost (a `cortex restart`, or a crash and
  /// a new start: SPEC §14), connects again and asks again, for up to `rewaitWindowMs`. Waiting
  /// changes nothing, so asking twice is safe; the tasks themselves carry on meanwhile.
  static func waitSurvivingRestarts(_ ctx: Context, _ client: Client, _ ids: [String]) throws(CLIError) -> JSON {
    let request = JSON.object([("op", .string("wait")), ("ids", .array(ids.map { .string($0) }))])
    var c = client
    var lostAt: Int64? = nil
    while true {
      do throws(CLIError) {
        return try Client.check(try c.request(request))
      } catch {
        guard error.code == ExitCode.notRunning, error.answer == nil else { throw error }
        let t = lostAt ?? Clock.monotonicMs()
        lostAt = t
        var next: Client? = nil
        while next == nil {
          if Clock.monotonicMs() - t > Self.rewaitWindowMs { throw gaveUp(error, ctx, ids) }
          sleepMs(20)
          next = try? Client(ctx)
        }
        c = next!
      }
    }
  }

  /// The daemon went away while waiting (a `cortex stop`, a crash) and none answered again
  /// within `rewaitWindowMs`: the tasks are not lost (a stop requeues what runs, and a start
  /// picks them up), so say so and how to wait again, after what went wrong.
  static func gaveUp(_ error: CLIError, _ ctx: Context, _ ids: [String]) -> CLIError {
    let which = ids.count == 1 ? ids[0] : "\(ids.count) tasks"
    let again = ids.count == 1 ? ids[0] : "ID..."
    return CLIError(
      error.code,
      "\(error.description); no daemon answered again within \(rewaitWindowMs / 1000) s, so stopped waiting for \(which). "
        + "Accepted tasks are kept (a stop requeues running ones): \(ctx.startAdvice), then cortex wait \(again)",
      answer: error.answer)
  }
}
