import CortexCore
import Posix

/// What `cortex task create` says after the id (issue 17 item 4, the reference vision's answer):
/// where the task went — the worker running it, or its place in the queue and estimated start —
/// and where to follow it. On stderr; stdout keeps only the id, so `id=$(cortex task create …)`
/// still works. `cortex submit` (the scripts' spelling) stays terse unless given `--verbose`.
enum SubmitAnswer {
  /// True when this process was started as `cortex … task create …` (the vision's spelling).
  static var invokedAsTaskCreate: Bool {
    let words = CommandLine.arguments.prefix { $0 != "--" }
    return zip(words, words.dropFirst()).contains { $0 == "task" && $1 == "create" }
  }

  static func lines(_ ctx: Context, _ client: Client, _ id: String) -> String {
    var s = "\(id) created"
    let t = (try? client.request(.object([("op", .string("show")), ("id", .string(id))])))?["task"]
    switch t?["state"]?.string {
    case "assigned", "running":
      s += "; \(t?["worker_id"]?.string ?? "a worker") is executing it"
    case "queued":
      if let p = t?["queue_position"]?.int {
        let est =
          t?["estimated_start_in_ms"]?.int.flatMap { $0 > 0 ? "in about " + formatMs($0) : nil }
          ?? "when a worker is free (no estimate yet)"
        s += "; queued at position \(p), estimated start \(est)"
      } else {
        s += "; queued" + (t?["waiting"]?.string.map { " (\($0))" } ?? "")
      }
    case let state?:
      s += "; already \(state)"
    case nil: break
    }
    // The directory was named on the command line: the follow-up command needs it too.
    let dir = ctx.lookup?.source == .option ? "--dir \(ctx.paths.root) " : ""
    s += "\nfollow it: cortex \(dir)log -f \(id)"
    if let url = WebAddress.read(ctx.paths, page: "/tasks/" + id) { s += "\nprogress: " + url }
    return s + "\n"
  }
}
