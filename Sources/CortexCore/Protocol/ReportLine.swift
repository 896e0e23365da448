/// One line a running task writes to `CORTEX_REPORT_FD` (SPEC §3): `{"tokens_used": 1200}`,
/// `{"progress": 0.4, "message": "..."}`. The task is untrusted: a line that is not a JSON
/// object, or a field out of range, is refused with the field named; the other fields of the
/// same line still count.
public struct ReportLine: Equatable, Sendable {
  public var tokensUsed: Int?
  public var progress: Double?
  public var message: String?
  /// `{"rate_limited": true, "retry_after_s": N}`: the provider refused it for its rate limit.
  public var rateLimited = false
  public var retryAfterS: Double?
  /// `{"error": "sentence", "reason": "word"}`: why the task is failing, in its own words (an agent
  /// adapter says its agent printed garbage). The task's outcome carries it; `reason` defaults
  /// to `task_error`.
  public var error: String?
  public var reason: String?
  /// What was refused in this line, e.g. "tokens_used: must be from 0 to 1099511627776, not -5".
  public var refused: [String] = []

  /// The longest message kept from a report line (longer ones are cut).
  public static let maxMessageBytes = 1024

  public init(tokensUsed: Int? = nil, progress: Double? = nil, message: String? = nil) {
    self.tokensUsed = tokensUsed
    self.progress = progress
    self.message = message
  }

  public var isEmpty: Bool { tokensUsed == nil && progress == nil && message == nil && !rateLimited && error == nil }

  public static func parse(_ line: ArraySlice<UInt8>) -> ReportLine {
    var r = ReportLine()
    let v: JSON
    do { v = try JSON.parse(line) } catch {
      r.refused.append("line: not JSON (\(error))")
      return r
    }
    guard v.object != nil else {
      r.refused.append("line: must be a JSON object, not \(v.kindName)")
      return r
    }
    if let t = v["tokens_used"], !t.isNull {
      do throws(SpecError) { r.tokensUsed = try Numbers.int("tokens_used", t, min: 0, max: Numbers.maxTokens) } catch {
        r.refused.append(error.description)
      }
    }
    if let p = v["progress"], !p.isNull {
      do throws(SpecError) { r.progress = try Numbers.double("progress", p, min: 0, max: 1) } catch {
        r.refused.append(error.description)
      }
    }
    if let rl = v["rate_limited"], !rl.isNull {
      if let b = rl.bool { r.rateLimited = b } else { r.refused.append("rate_limited: must be true or false, not \(rl.kindName)") }
    }
    if let ra = v["retry_after_s"], !ra.isNull {
      do throws(SpecError) { r.retryAfterS = try Numbers.seconds("retry_after_s", ra, max: 86_400, exclusiveMin: false) } catch {
        r.refused.append(error.description)
      }
    }
    if let e = v["error"], !e.isNull {
      if let s = e.string, !s.isEmpty { r.error = cut(s) } else { r.refused.append("error: must be a non-empty string, not \(e.kindName)") }
    }
    if let w = v["reason"], !w.isNull {
      if let s = w.string, !s.isEmpty, s.utf8.count <= 64, s.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || $0 == 95 }) {
        r.reason = s
      } else {
        r.refused.append("reason: must be a word of a-z and _ (at most 64), not \(w.string.map { "\(quoted($0))" } ?? w.kindName)")
      }
    }
    if let m = v["message"], !m.isNull {
      if let s = m.string {
        r.message = cut(s)
      } else {
        r.refused.append("message: must be a string, not \(m.kindName)")
      }
    }
    return r
  }

  /// At most `maxMessageBytes` of `s`.
  static func cut(_ s: String) -> String {
    s.utf8.count <= maxMessageBytes ? s : String(decoding: s.utf8.prefix(maxMessageBytes), as: UTF8.self) + "…"
  }
}
