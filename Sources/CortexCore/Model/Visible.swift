/// `s` with its control characters written out (`\n`, `\t`, `\r`, else `\xHH`): text that a
/// task or its submitter chose (a description, a progress message, a name in an error) printed
/// for people keeps a table row or a message on its own line and cannot send escape sequences
/// to the terminal.
public func visible<S: StringProtocol>(_ s: S) -> String {
  guard s.unicodeScalars.contains(where: isControl) else { return String(s) }
  var out = ""
  for u in s.unicodeScalars {
    guard isControl(u) else {
      out.unicodeScalars.append(u)
      continue
    }
    switch u {
    case "\n": out += "\\n"
    case "\t": out += "\\t"
    case "\r": out += "\\r"
    default: out += "\\x" + (u.value < 16 ? "0" : "") + String(u.value, radix: 16)
    }
  }
  return out
}

/// A value someone gave, quoted into a message: `'a\nb'`. The one way user values go into error
/// messages, so a name with a newline or an escape sequence cannot forge lines or colors.
public func quoted<S: StringProtocol>(_ s: S) -> String { "'" + visible(s) + "'" }

private func isControl(_ u: Unicode.Scalar) -> Bool { u.value < 0x20 || (u.value >= 0x7F && u.value < 0xA0) }
