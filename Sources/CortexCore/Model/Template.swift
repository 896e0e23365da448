/// A worker type's `command` or `shell` template: which of its braces are Cortex's placeholders.
///
/// Only `{description}` and `{task_id}` are placeholders. Every other brace is the template's own
/// text and stays as written, because commands are full of them: a shell's `${f}` and `{ …; }`,
/// awk's `'{print $1}'`, a JSON or JavaScript argument. (Before, any `{…}` was taken for a
/// placeholder, so such a template was refused at every submit, or at load when quoted, with no
/// way to write it.) A brace word that looks like a misspelt placeholder (`{descripton}`,
/// `{taskid}`) is refused when the config is read, naming the one it is most likely meant to be.
///
/// A placeholder in doubled braces is its literal text: `{{description}}` is `{description}`,
/// `{{task_id}}` is `{task_id}`. Only those two are escapes: doubled braces around anything else
/// stay as written (a Go template's `{{.Name}}`, Jinja's `{{ x }}`, awk's `{if(x){print}}`), so
/// no template that worked before changes but one that had a placeholder in doubled braces.
public enum Template {
  /// The placeholders Cortex fills, without their braces.
  public static let names = ["description", "task_id"]

  /// A part of a template: text kept as written, or a placeholder to fill.
  public enum Piece: Equatable {
    case text(Substring)
    case description
    case taskID
  }

  /// What the text at a `{` is: a placeholder (`{description}`), an escaped one (`{{description}}`,
  /// whose `literal` is `{description}`), or nil for a brace of the template's own; with where it ends.
  enum Brace {
    case placeholder(Piece, end: Substring.Index)
    case escaped(literal: Substring, end: Substring.Index)
  }

  static func brace(_ s: Substring) -> Brace? {
    guard s.first == "{" else { return nil }
    let after = s.dropFirst()
    if after.first == "{" {
      let inner = after.dropFirst()
      guard let name = names.first(where: { inner.hasPrefix($0 + "}}") }) else { return nil }
      let close = inner.index(inner.startIndex, offsetBy: name.count + 1)
      return .escaped(literal: s[after.startIndex..<close], end: s.index(after: close))
    }
    guard let name = names.first(where: { after.hasPrefix($0 + "}") }) else { return nil }
    return .placeholder(name == "description" ? .description : .taskID, end: after.index(after.startIndex, offsetBy: name.count + 1))
  }

  /// The template as text and placeholders, in order (an escaped placeholder is text).
  public static func pieces(_ template: String) -> [Piece] {
    var out: [Piece] = []
    var rest = Substring(template)
    var textStart = rest.startIndex
    while let open = rest.firstIndex(of: "{") {
      switch brace(rest[open...]) {
      case .placeholder(let p, let end):
        if textStart < open { out.append(.text(template[textStart..<open])) }
        out.append(p)
        rest = rest[end...]
        textStart = end
      case .escaped(let literal, let end):
        if textStart < open { out.append(.text(template[textStart..<open])) }
        out.append(.text(literal))
        rest = rest[end...]
        textStart = end
      case nil:
        rest = rest[rest.index(after: open)...]
      }
    }
    if textStart < template.endIndex { out.append(.text(template[textStart...])) }
    return out
  }

  /// The first `{word}` that is no placeholder but looks like a misspelt one, with the one it is
  /// likely meant to be (`("{descripton}", "{description}")`), or nil.
  public static func misspelt(_ template: String) -> (found: String, meant: String)? {
    var rest = Substring(template)
    while let open = rest.firstIndex(of: "{") {
      let after = rest[rest.index(after: open)...]
      guard let close = after.firstIndex(of: "}") else { return nil }
      let word = String(after[..<close])
      if !names.contains(word), !word.isEmpty, word.count <= 40,
        word.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }),
        let near = Suggest.nearest(word.lowercased(), among: names)
      {
        return ("{\(word)}", "{\(near)}")
      }
      rest = after
    }
    return nil
  }
}
