/// Fleet control requests (SPEC §15):
/// `{"op":"pause","group":"openai"}` (no group: the whole queue) · `{"op":"resume"}` ·
/// `{"op":"group_set","group":"openai","parallel":4}` · `{"op":"groups"}` ·
/// `{"op":"retry","ids":["task-000012"]}` or `{"op":"retry","all_failed":true}` ·
/// `{"op":"edit","id":"task-000012","set":{"priority":"high","env":{"K":"V"}}}`.
extension Request {
  static func decodeFleet(_ op: String, _ req: JSON) throws(Failure) -> FleetCommand? {
    func field(_ e: SpecError) -> Failure { .invalid(e, index: nil, of: 1) }
    func group(required: Bool) throws(Failure) -> String? {
      guard let g = req["group"], !g.isNull else {
        if required { throw .usage("\(op) needs \"group\"") }
        return nil
      }
      guard let name = g.string else { throw field(SpecError("group", "must be a string, not \(g.kindName)")) }
      do throws(SpecError) { return try FleetNames.checkGroup("group", name) } catch { throw field(error) }
    }
    switch op {
    case "pause": return .pause(group: try group(required: false))
    case "resume": return .resume(group: try group(required: false))
    case "groups": return .groups
    case "group_set":
      let name = try group(required: true)!
      guard let p = req["parallel"] else { throw .usage("group_set needs \"parallel\"") }
      do throws(SpecError) {
        return .setParallel(group: name, try Numbers.int("parallel", p, min: 0, max: 1_000_000))
      } catch { throw field(error) }
    case "retry":
      if let a = req["all_failed"], !a.isNull, a.bool == nil {
        throw field(SpecError("all_failed", "must be true or false, not \(a.kindName)"))
      }
      let all = req["all_failed"]?.bool == true
      if all && (req["ids"]?.array?.isEmpty ?? true) { return .retry([], allFailed: true) }
      return .retry(try taskIDs(req), allFailed: all)
    case "edit":
      let n: Int
      do throws(SpecError) { n = try taskID(req) } catch { throw field(error) }
      guard let set = req["set"], let pairs = set.object, !pairs.isEmpty else {
        throw .usage("edit needs \"set\": the fields to change (\(Scheduler.editableFields.sorted().joined(separator: ", ")))")
      }
      var fields: [String] = []
      for (k, v) in pairs {
        guard Scheduler.editableFields.contains(k) else {
          throw field(
            SpecError(k, "cannot be edited (editable: \(Scheduler.editableFields.sorted().joined(separator: ", ")))"))
        }
        if v.isNull { throw field(SpecError(k, "needs a value")) }
        fields.append(k)
      }
      do throws(SpecError) {
        return .edit(n, try submitted(set), fields: fields)
      } catch { throw field(error) }
    default: return nil
    }
  }
}
