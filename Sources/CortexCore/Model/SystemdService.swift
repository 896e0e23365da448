/// The systemd unit a daemon runs under, recorded in `service.json` (`{"unit":"cortex.service",
/// "manager":"system"}`, or `"user"` for a user's manager) when it starts as a service, and removed
/// when it starts outside systemd. A command that finds the daemon stopped then says to start the
/// unit (`systemctl start cortex`), not `cortex start`, which would run a second kind of daemon
/// in the service's directory, as whoever typed it and outside the unit's limits.
public struct SystemdService: Equatable, Sendable {
  public var unit: String
  /// The user's own manager (`systemctl --user`), not the system's.
  public var user: Bool

  public init(unit: String, user: Bool) {
    self.unit = unit
    self.user = user
  }

  /// The unit a process runs in, from its `/proc/PID/cgroup`: each line is `ID:CONTROLLERS:PATH`,
  /// and in the unified (`0::`) or `name=systemd` hierarchy the last path component that names a
  /// `.service` is the unit, under a user's manager when the path holds `user@UID.service`. nil
  /// when it is in none (a shell, a test playing systemd with `$NOTIFY_SOCKET`).
  public static func parse(cgroup: String) -> SystemdService? {
    for line in cgroup.split(separator: "\n") {
      let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
      guard f.count == 3, f[1].isEmpty || f[1] == "name=systemd" else { continue }
      let parts = f[2].split(separator: "/")
      guard let unit = parts.last(where: { $0.hasSuffix(".service") }), !unit.hasPrefix("user@") else { continue }
      return SystemdService(unit: String(unit), user: parts.contains { $0.hasPrefix("user@") && $0.hasSuffix(".service") })
    }
    return nil
  }

  public func json() -> JSON { .object([("unit", .string(unit)), ("manager", .string(user ? "user" : "system"))]) }

  public static func decode(_ v: JSON) -> SystemdService? {
    guard let unit = v["unit"]?.string, unit.hasSuffix(".service") else { return nil }
    return SystemdService(unit: unit, user: v["manager"]?.string == "user")
  }

  /// What to run to start it again.
  public var startAdvice: String {
    let name = unit.hasSuffix(".service") ? String(unit.dropLast(8)) : unit
    return "it runs as the systemd service \(unit)\(user ? " of your user manager" : ""); start it with: "
      + (user ? "systemctl --user start \(name)" : "sudo systemctl start \(name)")
  }
}
