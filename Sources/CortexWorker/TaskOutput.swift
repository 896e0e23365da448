import CortexCore
import Posix

/// A command task's stdout and stderr on their way to `output.log`: the task writes into a pipe,
/// the worker copies into the file up to `retention.max_output_bytes`, writes one marker line at
/// the limit, and reads and drops the rest, so a task that prints without end cannot fill the
/// disk (and is never blocked on a full pipe). Without a limit the task writes the file itself.
struct TaskOutput {
  let pipe: FileDescriptor
  let file: FileDescriptor
  let limit: Int
  /// Bytes in `output.log` (an earlier attempt's included: retries append to the same file).
  var written: Int
  var cut = false

  /// How much of `count` new bytes still fits under `limit`, and whether the output is cut now.
  static func fit(_ count: Int, written: Int, limit: Int) -> (keep: Int, cutNow: Bool) {
    let room = max(0, limit - written)
    return count <= room ? (count, false) : (room, true)
  }

  static func marker(limit: Int) -> String {
    "\n--- cortex: output cut at \(limit) bytes (retention.max_output_bytes in config.json); the rest was discarded ---\n"
  }

  /// Copies what the pipe holds now. Returns false at end of file (every writer closed it).
  mutating func pump() -> Bool {
    var chunk: [UInt8] = []
    while true {
      chunk.removeAll(keepingCapacity: true)
      let n: Int
      do throws(PosixError) {
        n = try pipe.read(appendingTo: &chunk, max: 1 << 16)
      } catch {
        return error.isWouldBlock  // nothing more for now; any other error ends the copy
      }
      if n == 0 { return false }
      if cut { continue }
      let (keep, cutNow) = Self.fit(n, written: written, limit: limit)
      if keep > 0 {
        try? file.writeAll(keep == n ? chunk : Array(chunk[..<keep]))
        written += keep
      }
      if cutNow {
        cut = true
        try? file.writeAll(Self.marker(limit: limit))
      }
    }
  }

  func close() {
    pipe.close()
    file.close()
  }
}
