import CortexCore
import Posix

/// `cortex clean [--older-than DUR] [--state S]`: removes `tasks/<id>/` (spec, output, result) of
/// finished tasks, as Pueue's `clean` does; by default of every finished task. Their compact
/// records stay: `cortex show` and `cortex wait` still answer for them. The daemon does it (it
/// knows which tasks are finished) and logs `tasks.cleaned`.
enum CleanCommand {
  static let usage = "cortex clean [--older-than DUR] [--state succeeded|failed|cancelled|timed_out|rejected]"
  static let help = CommandHelp(
    "clean", abstract: "remove finished tasks' files (show and wait still answer for them)", usage: usage,
    details: """
      Removes tasks/<id>/ (spec, output, result) of finished tasks; by default of every finished task. \
      Their compact records stay in finished-tasks.bin, so show and wait still answer for them. The \
      idempotency keys of those tasks are forgotten with their files (synthetic tasks' too): \
      submitted again, such a key makes a new task. The daemon does it and logs tasks.cleaned \
      (and idempotency.forgotten).
      """,
    flags: [
      .option("--older-than", value: "DUR", help: "only tasks that finished more than DUR ago (7d, 12h)", default: "every finished task"),
      .option(
        "--state", value: "S", help: "only tasks that ended in state S",
        choices: ["succeeded", "failed", "cancelled", "timed_out", "rejected"]),
    ],
    examples: [
      ("cortex clean --older-than 7d", "free the disk used by last week's tasks"),
      ("cortex clean --state succeeded", "keep only the files of tasks that did not succeed"),
    ])

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    var req: [(String, JSON)] = [("op", .string("clean"))]
    if let d = try args.option("--older-than") {
      guard let ms = DurationText.parseMs(d) else {
        throw CLIError.usage("--older-than needs a duration like 7d or 12h, not \(quoted(d))", usage)
      }
      req.append(("older_than_s", .double(Double(ms) / 1000)))
    }
    if let s = try args.option("--state") {
      guard let st = TaskState(rawValue: s), st.isTerminal else {
        throw CLIError.usage(
          "--state must be a finished state (succeeded, failed, cancelled, timed_out, rejected), not \(quoted(s))", usage)
      }
      req.append(("state", .string(st.rawValue)))
    }
    try args.noPositionals()
    let v = try Client.check(try Client(ctx).request(.object(req)))
    if ctx.json {
      ctx.printJSON(v)
    } else {
      let n = v["removed"]?.int ?? 0
      let bytes = v["bytes"]?.int ?? 0
      let keys = v["keys_forgotten"]?.int ?? 0
      let forgot = keys == 0 ? "" : "; forgot \(keys) idempotency key\(keys == 1 ? "" : "s") (submitted again, a key makes a new task)"
      ctx.err(
        "cortex: removed the files of \(n) finished task\(n == 1 ? "" : "s") (\(formatBytes(bytes)))\(forgot); show and wait still answer for them\n"
      )
    }
    return 0
  }

  static func formatBytes(_ b: Int64) -> String {
    if b < 1024 { return "\(b) bytes" }
    let units = ["KiB", "MiB", "GiB", "TiB"]
    var v = Double(b) / 1024
    var u = 0
    while v >= 1024 && u < units.count - 1 {
      v /= 1024
      u += 1
    }
    return String(Double(Int(v * 10)) / 10) + " " + units[u]
  }
}
