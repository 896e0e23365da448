import CortexCore
import Posix

/// The daemon's end of one worker slot: its two FIFOs (both opened O_RDWR so opening never blocks
/// and the daemon never sees a spurious hang-up), buffered output, and the current process.
final class WorkerChannel {
  let slot: Int
  let input: FileDescriptor  // daemon → worker (.in)
  let output: FileDescriptor  // worker → daemon (.out)
  var lines = LineBuffer(maxLine: 1 << 20)
  var outbox: [UInt8] = []
  var pid: Int32 = 0
  var wantsWritable = false
  /// Set while the worker is one re-adopted from a previous daemon (see Daemon+Readopt).
  var pidFD: FileDescriptor?

  init(slot: Int, paths: Paths) throws(PosixError) {
    self.slot = slot
    let inPath = paths.fifoIn(slot)
    let outPath = paths.fifoOut(slot)
    try FileSystem.makeFIFO(inPath)
    try FileSystem.makeFIFO(outPath)
    input = try FileDescriptor.open(inPath, [.readWrite, .nonBlocking])
    output = try FileDescriptor.open(outPath, [.readWrite, .nonBlocking])
  }

  /// Spawns `cortex worker` for this slot in its own process group (so a terminal's Ctrl-C reaches
  /// only the daemon, which then stops the pool in order).
  /// `token` goes in its environment (`CORTEX_WORKER_TOKEN`): its proof of identity to a later
  /// daemon (SPEC §14).
  func spawn(
    executable: String, paths: Paths, heartbeatMs: Int, orphanTimeoutMs: Int, token: String, log: FileDescriptor?
  ) throws(PosixError) -> Int32 {
    discardStale()
    let devnull = try FileDescriptor.open("/dev/null", .readOnly)
    defer { devnull.close() }
    let env = Environment.all().filter { !$0.hasPrefix("CORTEX_WORKER_TOKEN=") && !$0.hasPrefix(Daemon.listenFDVariable + "=") }
    pid = try Processes.spawn(
      [
        executable, "worker", "--dir", paths.root, "--slot", String(slot), "--heartbeat-ms", String(heartbeatMs),
        "--orphan-timeout-ms", String(orphanTimeoutMs),
      ],
      environment: env + ["CORTEX_WORKER_TOKEN=" + token], stdin: devnull, stdout: log ?? devnull, stderr: log ?? devnull,
      newProcessGroup: true)
    return pid
  }

  /// Drops what a previous worker left in the FIFOs: unread commands and a partial line.
  func discardStale() {
    var scratch: [UInt8] = []
    while let n = try? input.read(appendingTo: &scratch, max: 65536), n > 0 { scratch.removeAll(keepingCapacity: true) }
    outbox.removeAll()
    lines.reset()
  }

  /// Queues a message and writes as much as the FIFO takes now.
  func send(_ line: [UInt8]) {
    outbox.append(contentsOf: line)
    flush()
  }

  /// Writes buffered output; leaves the rest for when the FIFO is writable.
  func flush() {
    while !outbox.isEmpty {
      let n: Int
      do throws(PosixError) {
        n = try input.writeSome(outbox)
      } catch {
        wantsWritable = true
        return
      }
      outbox.removeFirst(n)
    }
    wantsWritable = false
  }

  /// Reads what the worker wrote; returns false at EOF or error (never with O_RDWR).
  func readAvailable() -> Bool {
    var chunk: [UInt8] = []
    while true {
      do throws(PosixError) {
        let n = try output.read(appendingTo: &chunk, max: 65536)
        if n == 0 { return false }
        lines.append(chunk)
        chunk.removeAll(keepingCapacity: true)
        if n < 65536 { return true }
      } catch {
        return error.isWouldBlock
      }
    }
  }

  func close() {
    pidFD?.close()
    pidFD = nil
    input.close()
    output.close()
  }
}
