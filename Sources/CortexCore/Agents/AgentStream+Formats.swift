/// The four output formats `AgentStream` reads. Field names are from each CLI's documentation
/// (docs/agents.md lists them with examples).
extension AgentStream {
  /// Claude Code `--output-format stream-json`: `system` (init), `assistant` and `user` messages,
  /// then one `result` with the answer, `is_error` and the session's `usage`. An assistant
  /// message's `usage` is repeated on each of its lines, so it counts once per `message.id`.
  /// Tokens are input + cache creation + output; cache reads are not counted (billed at a tenth).
  mutating func claude(_ type: String, _ v: JSON) -> [Event] {
    switch type {
    case "system":
      guard v["subtype"]?.string == "init" else { return [] }
      return [.progress("claude started" + (v["model"]?.string.map { " (\($0))" } ?? ""))]
    case "assistant":
      let m = v["message"]
      if let usage = m?["usage"] {
        let id = m?["id"]?.string ?? "line-\(lineNumber)"
        let old = messageTokens[id] ?? 0
        let new = max(old, Self.claudeTokens(usage))
        if messageTokens.updateValue(new, forKey: id) == nil { remember(id) }
        messageTotal = Numbers.addTokens(messageTotal, new - old)
        raise(to: messageTotal)
      }
      var out: [Event] = []
      for block in m?["content"]?.array ?? [] {
        switch block["type"]?.string {
        case "text":
          if let t = block["text"]?.string, !t.isEmpty {
            out.append(.text(t))
            out.append(.progress(Self.shorten(t, 120)))
          }
        case "tool_use":
          let name = block["name"]?.string ?? "tool"
          let target = block["input"]?["file_path"]?.string ?? block["input"]?["command"]?.string ?? ""
          let line = target.isEmpty ? name : "\(name) \(Self.shorten(target, 80))"
          out.append(.text("→ " + line))
          out.append(.progress(line))
        default: break
        }
      }
      return out
    case "result":
      finished = true
      if let usage = v["usage"] { raise(to: Self.claudeTokens(usage)) }
      let text = v["result"]?.string
      result = text
      if v["is_error"]?.bool == true || (v["subtype"]?.string).map({ $0 != "success" }) == true {
        agentError = text.map { Self.shorten($0, 200) } ?? (v["subtype"]?.string ?? "is_error")
      }
      var out: [Event] = []
      if let text { out.append(.text(text)) }
      var summary = agentError == nil ? "claude finished" : "claude failed"
      if let n = v["num_turns"]?.int { summary += ", \(n) turn\(n == 1 ? "" : "s")" }
      if let c = v["total_cost_usd"]?.double { summary += ", $" + Self.cents(c) }
      out.append(.progress(summary))
      return out
    default: return []
    }
  }

  /// Notes a new message id; past `recentMessages` of them, the oldest is forgotten (its tokens
  /// stay in `messageTotal`).
  mutating func remember(_ id: String) {
    messageOrder.append(id)
    guard messageOrder.count - messageOrderStart > Self.recentMessages else { return }
    messageTokens[messageOrder[messageOrderStart]] = nil
    messageOrderStart += 1
    if messageOrderStart >= Self.recentMessages {
      messageOrder.removeFirst(messageOrderStart)
      messageOrderStart = 0
    }
  }

  static func claudeTokens(_ u: JSON) -> Int {
    (count(u["input_tokens"]) ?? 0) + (count(u["cache_creation_input_tokens"]) ?? 0) + (count(u["output_tokens"]) ?? 0)
  }

  /// Codex `exec --json`: `thread.started`, `turn.started`, `item.started|updated|completed`
  /// (agent_message, reasoning, command_execution, file_change, …), `turn.completed` with the
  /// turn's `usage` (input_tokens, cached_input_tokens, output_tokens), `turn.failed`, `error`.
  /// Tokens are input + output summed over turns (cached input is part of input).
  mutating func codex(_ type: String, _ v: JSON) -> [Event] {
    switch type {
    case "turn.completed":
      finished = true
      let u = v["usage"]
      turnTokens = Numbers.addTokens(turnTokens, (Self.count(u?["input_tokens"]) ?? 0) + (Self.count(u?["output_tokens"]) ?? 0))
      raise(to: turnTokens)
      return [.progress("codex turn completed")]
    case "turn.failed":
      agentError = Self.shorten(v["error"]?["message"]?.string ?? "turn failed", 200)
      return [.text("turn failed: " + (agentError ?? ""))]
    case "error":
      agentError = Self.shorten(v["message"]?.string ?? "error", 200)
      return [.text("error: " + (agentError ?? ""))]
    case "item.completed":
      let item = v["item"]
      switch item?["type"]?.string ?? item?["item_type"]?.string {
      case "agent_message", "assistant_message":  // the second: earlier codex releases
        guard let t = item?["text"]?.string else { return [] }
        result = t
        return [.text(t), .progress(Self.shorten(t, 120))]
      case "command_execution":
        let c = item?["command"]?.string ?? "a command"
        return [.text("$ " + c), .progress("ran " + Self.shorten(c, 80))]
      case "file_change":
        let paths = (item?["changes"]?.array ?? []).compactMap { $0["path"]?.string }
        let line = "changed " + (paths.isEmpty ? "files" : paths.joined(separator: ", "))
        return [.text(line), .progress(Self.shorten(line, 120))]
      default: return []
      }
    default: return []
    }
  }

  /// Cortex's own protocol on stdout, one JSON object per line (docs/agents.md):
  /// `{"type":"progress","message":…}`, `{"type":"usage","tokens_used":N}` (the running total),
  /// `{"type":"text","text":…}`, `{"type":"result","ok":true,"summary":…}`, `{"type":"error","message":…}`.
  mutating func jsonl(_ type: String, _ v: JSON) -> [Event] {
    switch type {
    case "progress":
      guard let m = v["message"]?.string else { return [] }
      return [.progress(Self.shorten(m, 200))]
    case "usage":
      if let n = Self.count(v["tokens_used"]) { raise(to: n) }
      return []
    case "text":
      return v["text"]?.string.map { [.text($0)] } ?? []
    case "result":
      finished = true
      result = v["summary"]?.string
      if v["ok"]?.bool != true { agentError = Self.shorten(result ?? "result not ok", 200) }
      return result.map { [.text($0)] } ?? []
    case "error":
      agentError = Self.shorten(v["message"]?.string ?? "error", 200)
      return []
    default: return []
    }
  }

  /// aider prints text; after each model call a line like
  /// `Tokens: 3.0k sent, 42 received. Cost: $0.0063 message, $0.0063 session.` (maybe with
  /// `N cache write`, `N cache hit` parts, and `> ` in front). Tokens are sent + received, summed.
  mutating func aider(_ line: ArraySlice<UInt8>) -> [Event] {
    let text = String(decoding: line, as: UTF8.self)
    guard let used = Self.aiderTokens(text) else {
      // aider says what went wrong on stdout, in plain text.
      feedStderr(line)
      return [.text(text)]
    }
    goodLines += 1
    turnTokens = Numbers.addTokens(turnTokens, used)
    raise(to: turnTokens)
    return [.text(text), .progress(Self.shorten(text.drop { $0 == ">" || $0 == " " }.description, 120))]
  }

  /// The sent + received count of an aider `Tokens:` line, or nil when the line is not one.
  public static func aiderTokens(_ line: String) -> Int? {
    guard let r = line.firstRange(of: "Tokens: ") else { return nil }
    var rest = line[r.upperBound...]
    if let dot = rest.firstRange(of: ". Cost") { rest = rest[..<dot.lowerBound] } else if rest.hasSuffix(".") { rest = rest.dropLast() }
    var sent: Int?
    var received: Int?
    for part in rest.split(separator: ", ") {
      let words = part.split(separator: " ")
      guard words.count >= 2, let n = number(words[0]) else { continue }
      if words[1] == "sent" { sent = n }
      if words[1] == "received" { received = n }
    }
    guard let sent, let received else { return nil }
    return sent + received
  }

  /// "450", "12,450", "3.0k", "47k", "1.2M".
  static func number(_ s: Substring) -> Int? {
    var t = s.filter { $0 != "," }
    var scale = 1.0
    if t.hasSuffix("k") {
      scale = 1000
      t.removeLast()
    } else if t.hasSuffix("M") {
      scale = 1_000_000
      t.removeLast()
    }
    guard let d = Double(t), d.isFinite, d >= 0, d * scale <= Double(Numbers.maxTokens) else { return nil }
    return Int((d * scale).rounded())
  }

  static func cents(_ usd: Double) -> String {
    guard usd.isFinite, usd >= 0, usd < 1e9 else { return "?" }
    let c = Int((usd * 10000).rounded())
    let frac = String(c % 10000)
    return "\(c / 10000)." + String(repeating: "0", count: 4 - frac.count) + frac
  }
}
