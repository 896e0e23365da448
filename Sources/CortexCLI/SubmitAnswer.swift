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
    let resume = t?["state"]?.string == "queued" ? heldByPause(t, pauses(client)) : nil
    switch t?["state"]?.string {
    case "assigned", "running":
      s += "; \(t?["worker_id"]?.string ?? "a worker") is executing it"
    case "queued" where resume != nil:
      s += "; queued\(t?["queue_position"]?.int.map { " at position \($0)" } ?? ""), held by a pause: it starts after \(resume!)"
    case "queued":
      if let p = t?["queue_position"]?.int {
        let est =
          t?["held_by"]?.string
          ?? t?["estimated_start_in_ms"]?.int.flatMap { $0 > 0 ? "in about " + formatMs($0) : nil }
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

  /// `cortex wait` and `submit --wait` on a task a pause holds would block with no word, as if
  /// hung: say which tasks wait for a `cortex resume` (for the first few ids; one `show` each).
  static func notePauses(_ ctx: Context, _ client: Client, _ ids: [String]) {
    let groups = pauses(client)
    guard groups?["paused"]?.bool == true || groups?["groups"]?.array?.contains(where: { $0["paused"]?.bool == true }) == true else {
      return
    }
    for id in ids.prefix(20) {
      let t = (try? client.request(.object([("op", .string("show")), ("id", .string(id))])))?["task"]
      guard let resume = heldByPause(t, groups) else { continue }
      ctx.err("cortex: \(id) is held by a pause: it starts after \(resume)\n")
    }
  }

  /// The daemon's `groups` answer: whether the queue is paused, and each group's pause.
  static func pauses(_ client: Client) -> JSON? { try? Client.check(try client.request(.object([("op", .string("groups"))]))) }

  /// For a queued task that a pause holds (the whole queue's, or its group's), the command that
  /// lets it start; else nil. (Its `waiting` says "paused" only for the head of its group; the
  /// tasks behind it wait just the same.)
  static func heldByPause(_ t: JSON?, _ groups: JSON?) -> String? {
    guard let t, t["state"]?.string == "queued" else { return nil }
    let g = t["group"]?.string ?? FleetNames.defaultGroup
    if groups?["groups"]?.array?.contains(where: { $0["name"]?.string == g && $0["paused"]?.bool == true }) == true {
      return groups?["paused"]?.bool == true ? "cortex resume" : "cortex resume \(g)"
    }
    return t["waiting"]?.string == "paused" || groups?["paused"]?.bool == true ? "cortex resume" : nil
  }
}
