/// A request on the control socket, decoded and range-checked in one place before the daemon
/// acts on it. Every field that is wrong is named in the failure; nothing here can trap.
public enum Request: Equatable, Sendable {
  case ping
  /// A batch, or a part of one (`more`: parts follow; `count`: the whole batch's size).
  case submit([TaskSpec], more: Bool, count: Int?)
  case wait([Int])
  case cancel([Int])
  case list(state: String?, type: String?, limit: Int)
  case show(Int)
  case workers
  case budget
  case scale(Int)
  case stop(timeoutMs: Int64)
  /// pause, resume, group_set, groups, retry, edit (Request+Fleet.swift).
  case fleet(FleetCommand)
  /// Remove finished tasks' files (`cortex clean`).
  case clean(Retention.CleanRule)

  /// Why a request was refused: a usage error (exit 64) or an invalid field (exit 65).
  public enum Failure: Error, Equatable, Sendable {
    case usage(String)
    case invalid(SpecError, index: Int?, of: Int)
    /// A task of a submit (`index` from 0 within this request; `count` the batch's declared size).
    case invalidTask(SpecError, index: Int, count: Int?, more: Bool)

    /// The reply sent for it.
    public var reply: JSON {
      switch self {
      case .usage(let msg): .object([("ok", .bool(false)), ("code", .int(64)), ("error", .string(msg))])
      case .invalid(let e, let index, let count): Scheduler.invalid(e, index: index, of: count)
      case .invalidTask(let e, let index, let count, let more):
        Scheduler.invalid(e, position: index + 1, of: count ?? (more ? nil : index + 1))
      }
    }
  }

  /// The longest `stop` drain a client may ask for (one day).
  public static let maxStopTimeoutS = 86_400.0
  public static let listStates: Set<String> = Set(TaskState.allCases.map(\.rawValue) + ["active", "done"])

  /// What a client may not send but a spec already on record may hold: checked here, not in
  /// `TaskSpec.decode`, so a queue written before the check still loads. A label with no name
  /// could never be filtered or grouped by.
  static func admitted(_ s: TaskSpec) throws(SpecError) -> TaskSpec {
    if s.labels.contains(where: { $0.0.isEmpty }) { throw SpecError("labels", "every label needs a name; the key \"\" is empty") }
    return s
  }

  /// A spec a client submits (socket, `--from`, inbox): no field given twice, decoded, admitted.
  public static func submitted(_ v: JSON) throws(SpecError) -> TaskSpec {
    try refuseRepeatedFields(v)
    return try admitted(try TaskSpec.decode(v))
  }

  /// `{"command":["a"],"command":["b"]}` decoded silently to its last `command` (and
  /// `JSON[key]` reads the first): a field given twice is refused, naming it. Checked here, on
  /// what clients send, not in the JSON parser or `TaskSpec.decode`, which also read the log.
  static func refuseRepeatedFields(_ v: JSON) throws(SpecError) {
    guard let pairs = v.object else { return }
    if let k = firstRepeat(pairs) { throw SpecError(k, "is given twice; give each field of a task spec once") }
    if let syn = v["synthetic"]?.object, let k = firstRepeat(syn) {
      throw SpecError("synthetic.\(k)", "is given twice; give each field once")
    }
  }

  static func firstRepeat(_ pairs: [(String, JSON)]) -> String? {
    guard pairs.count > 1 else { return nil }
    if pairs.count <= 12 {
      // A spec has a handful of fields: comparing them costs less than hashing them.
      for i in 1..<pairs.count where pairs[..<i].contains(where: { $0.0 == pairs[i].0 }) { return pairs[i].0 }
      return nil
    }
    var seen = Set<String>()
    seen.reserveCapacity(pairs.count)
    for (k, _) in pairs where !seen.insert(k).inserted { return k }
    return nil
  }

  public static func decode(_ req: JSON) throws(Failure) -> Request {
    guard req.object != nil else { throw .usage("a request must be a JSON object, not \(req.kindName)") }
    guard let opValue = req["op"], !opValue.isNull else { throw .usage("request has no \"op\"") }
    guard let op = opValue.string else { throw .usage("\"op\" must be a string naming the operation, not \(opValue.kindName)") }
    func field(_ e: SpecError) -> Failure { .invalid(e, index: nil, of: 1) }
    switch op {
    case "ping": return .ping
    case "workers": return .workers
    case "budget": return .budget
    case "submit":
      guard let list = req["tasks"]?.array else { throw field(SpecError("tasks", "must be an array of task specs")) }
      if let m = req["more"], !m.isNull, m.bool == nil {
        throw field(SpecError("more", "must be true or false, not \(m.kindName)"))
      }
      let more = req["more"]?.bool == true
      var count: Int? = nil
      if let c = req["count"], !c.isNull {
        do throws(SpecError) { count = try Numbers.int("count", c, min: 1, max: 100_000_000) } catch { throw field(error) }
      }
      var specs: [TaskSpec] = []
      specs.reserveCapacity(list.count)
      for (i, v) in list.enumerated() {
        do throws(SpecError) {
          specs.append(try submitted(v))
        } catch {
          throw .invalidTask(error, index: i, count: count ?? (more ? nil : list.count), more: more)
        }
      }
      return .submit(specs, more: more, count: count)
    case "wait", "cancel":
      let ids = try taskIDs(req)
      return op == "wait" ? .wait(ids) : .cancel(ids)
    case "list":
      var state: String? = nil
      if let s = req["state"], !s.isNull {
        guard let name = s.string, listStates.contains(name) else {
          throw field(SpecError("state", "unknown state \(s.encoded()) (use \(listStates.sorted().joined(separator: ", ")))"))
        }
        state = name
      }
      var type: String? = nil
      if let t = req["type"], !t.isNull {
        guard let name = t.string else { throw field(SpecError("type", "must be a string, not \(t.kindName)")) }
        type = name
      }
      var limit = 0
      if let l = req["limit"], !l.isNull {
        do throws(SpecError) { limit = try Numbers.int("limit", l, min: 0, max: 100_000_000) } catch { throw field(error) }
      }
      return .list(state: state, type: type, limit: limit)
    case "show":
      do throws(SpecError) { return .show(try taskID(req)) } catch { throw field(error) }
    case "scale":
      guard let w = req["workers"] else { throw .usage("scale needs \"workers\"") }
      do throws(SpecError) { return .scale(try Numbers.int("workers", w, min: 1, max: 1024)) } catch { throw field(error) }
    case "stop":
      var seconds = 30.0
      if let t = req["timeout_s"], !t.isNull {
        do throws(SpecError) {
          seconds = try Numbers.seconds("timeout_s", t, min: 0, max: maxStopTimeoutS, exclusiveMin: false)
        } catch { throw field(error) }
      }
      return .stop(timeoutMs: Numbers.ms(fromSeconds: seconds))
    case "clean":
      var rule = Retention.CleanRule()
      do throws(SpecError) {
        if let o = req["older_than_s"], !o.isNull {
          let s = try Numbers.seconds("older_than_s", o, min: 0, max: Double(Numbers.maxDurationMs / 1000), exclusiveMin: false)
          rule.olderThanMs = Numbers.ms(fromSeconds: s)
        }
        if let v = req["state"], !v.isNull {
          guard let st = v.string.flatMap(TaskState.init(rawValue:)), st.isTerminal else {
            throw SpecError("state", "must be a finished state (succeeded, failed, cancelled, timed_out, rejected), not \(v.encoded())")
          }
          rule.state = st
        }
      } catch { throw field(error) }
      return .clean(rule)
    default:
      if let f = try decodeFleet(op, req) { return .fleet(f) }
      throw .usage("unknown op \(quoted(op))")
    }
  }

  /// The task `"id"` names; a wrong one is quoted back (its first 80 characters).
  static func taskID(_ req: JSON) throws(SpecError) -> Int {
    guard let v = req["id"], !v.isNull else { throw SpecError("id", "needs a task id like task-000012") }
    guard let s = v.string, let n = TaskID.parse(s) else {
      let given = v.string ?? v.encoded()
      throw SpecError("id", "\(quoted(given.prefix(80) + (given.count > 80 ? "…" : ""))) is not a task id like task-000012")
    }
    return n
  }

  static func taskIDs(_ req: JSON) throws(Failure) -> [Int] {
    guard let given = req["ids"], !given.isNull else { throw .usage("needs \"ids\": an array of task ids like task-000012") }
    guard let list = given.array else { throw .usage("\"ids\" must be an array of task ids like task-000012, not \(given.kindName)") }
    if list.isEmpty { throw .usage("\"ids\" is empty: name at least one task") }
    // A task named twice is one task: `retry X X` made two retries of X, `cancel X X` answered twice.
    var ids: [Int] = []
    var seen = Set<Int>()
    seen.reserveCapacity(list.count)
    for v in list {
      guard let s = v.string, let n = TaskID.parse(s) else {
        throw .invalid(SpecError("id", "\(quoted(v.string ?? v.encoded())) is not a task id like task-000012"), index: nil, of: 1)
      }
      if seen.insert(n).inserted { ids.append(n) }
    }
    return ids
  }
}
