import CortexCore
import Posix

/// The dashboard's address as `cortex start` prints it: `web.url` with the token from `web.token`
/// (0600) attached once; the server turns it into a cookie and drops it from the address bar.
enum WebAddress {
  /// `page` ("/tasks/task-000001") goes between the address and the token.
  static func read(_ paths: Paths, page: String = "") -> String? {
    guard let u = (try? FileSystem.read(paths.root + "/web.url")) ?? nil,
      let t = (try? FileSystem.read(paths.root + "/web.token")) ?? nil
    else { return nil }
    let url = String(decoding: u, as: UTF8.self).trimmingCharacters(in: " \n")
    let token = String(decoding: t, as: UTF8.self).trimmingCharacters(in: " \n")
    guard !url.isEmpty, !token.isEmpty else { return nil }
    let base = !page.isEmpty && url.hasSuffix("/") ? String(url.dropLast()) : url
    return base + page + "?token=" + token
  }
}

extension String {
  fileprivate func trimmingCharacters(in set: String) -> String {
    var s = Substring(self)
    while let f = s.first, set.contains(f) { s.removeFirst() }
    while let l = s.last, set.contains(l) { s.removeLast() }
    return String(s)
  }
}
