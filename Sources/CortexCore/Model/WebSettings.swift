/// `"web"` in `config.json` (SPEC §12): where the daemon serves its web view and HTTP API.
/// Default: on, `127.0.0.1`, port 0 (the kernel picks a free port, written to `web.url`). Any other
/// address must be configured explicitly; `"enabled": false` turns the server off.
public struct WebSettings: Equatable, Sendable {
  public var enabled = true
  public var bind = "127.0.0.1"
  public var port = 0

  public init() {}

  public func json() -> JSON {
    .object([("enabled", .bool(enabled)), ("bind", .string(bind)), ("port", .int(Int64(port)))])
  }

  public static func decode(_ v: JSON) throws(SpecError) -> WebSettings {
    guard let o = v.object else { throw SpecError("web", "must be an object like {\"bind\": \"127.0.0.1\", \"port\": 8080}") }
    var s = WebSettings()
    for (k, val) in o {
      switch k {
      case "enabled":
        guard let b = val.bool else { throw SpecError("web.enabled", "must be true or false") }
        s.enabled = b
      case "bind":
        let a = try TaskSpec.nonEmptyString("web.bind", val)
        let parts = a.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts.allSatisfy({ p in p.count <= 3 && !p.isEmpty && p.allSatisfy(\.isNumber) && Int(p)! <= 255 }) else {
          throw SpecError("web.bind", "must be an IPv4 address like 127.0.0.1 (0.0.0.0 for every interface), not \(quoted(a))")
        }
        s.bind = a
      case "port": s.port = try Numbers.int("web.port", val, min: 0, max: 65_535)
      default: throw SpecError("web.\(k)", "unknown setting")
      }
    }
    return s
  }
}
