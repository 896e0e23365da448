import CortexCore
import Posix

extension Worker {
  /// Kills what a task left running outside its process group once its leader is gone: a
  /// process that made its own session or group (`setsid`, a tool that daemonizes) escapes the
  /// group's kill, and when its parent exits it is handed to the worker, a subreaper. Each such
  /// child is killed with its group, and whatever that orphans in turn, until none is left, so
  /// that nothing a task started outlives it (SPEC §3). Returns what was killed, for the log;
  /// gives up after two seconds on something that keeps forking.
  func killLeftovers() -> [ProcessEntry] {
    var killed: [Int32: ProcessEntry] = [:]
    let deadline = Clock.monotonicMs() + 2000
    while Clock.monotonicMs() < deadline {
      while Processes.reap() != nil {}
      let left = Processes.children()
      if left.isEmpty { break }
      for pid in left {
        if killed[pid] == nil, let p = Processes.info(pid), !p.isZombie { killed[pid] = p }
        Processes.signalGroup(pid, Signal.kill)
        Processes.signal(pid, Signal.kill)
      }
      sleepMs(1)
    }
    return killed.values.sorted { $0.pid < $1.pid }
  }

  /// `killLeftovers`, said on the worker's stderr (the daemon's log) when there were any.
  func endLeftovers(of task: Int) {
    let killed = killLeftovers()
    guard !killed.isEmpty else { return }
    let named = killed.prefix(5).map { "\($0.pid) \($0.commandLine.first ?? "?")" }.joined(separator: ", ")
    writeStderr(
      "cortex worker \(slot): \(TaskID.format(task)) left \(killed.count) process\(killed.count == 1 ? "" : "es") running outside its process group (\(named)\(killed.count > 5 ? ", …" : "")); killed\n"
    )
  }
}
