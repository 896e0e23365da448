import Posix

extension Cortex {
  /// Runs `tmux -S SOCKET ARGS` (a server private to the test, its socket in the scratch
  /// directory) and returns what it printed ("" when it could not be started).
  @discardableResult
  func tmux(socket: String, _ args: [String]) -> String {
    let out = scratch + "/tmux.out"
    guard let o = try? FileDescriptor.open(out, [.writeOnly, .create, .truncate]),
      let pid = try? Processes.spawn(
        ["tmux", "-S", socket] + args, environment: Environment.all(), stdin: nil, stdout: o, stderr: o, newProcessGroup: false)
    else { return "" }
    o.close()
    _ = Processes.wait(pid)
    return String(decoding: ((try? FileSystem.read(out)) ?? nil) ?? [], as: UTF8.self)
  }

  /// Drops `bytes` into the inbox as `name`, the way a writer should: written aside under a
  /// dot name (which the daemon ignores), then renamed.
  func dropInInbox(_ name: String, _ bytes: [UInt8]) throws {
    try FileSystem.writeAtomically(paths.inbox + "/." + name + ".tmp", bytes, durable: false)
    try FileSystem.rename(paths.inbox + "/." + name + ".tmp", paths.inbox + "/" + name)
  }
}
