import CortexCore
import Posix
import XCTest

/// Runs the real `cortex` binary (built next to this test bundle) in a fresh temporary directory,
/// and proves afterwards that nothing it started is left running.
final class Cortex {
  struct Run {
    var code: Int32
    var out: String
    var err: String
  }

  static let binary: String = {
    let dir = FileSystem.dirname(Processes.executablePath())
    // .build/<triple>/debug/CortexPackageTests.xctest → .build/<triple>/debug/cortex
    for candidate in [dir + "/cortex", FileSystem.dirname(dir) + "/cortex"] where FileSystem.exists(candidate) {
      return candidate
    }
    return dir + "/cortex"
  }()

  let root: String
  let scratch: String
  var paths: Paths { Paths(root: root) }
  /// Extra `NAME=value` entries for every command run (and a daemon it starts), e.g. `CORTEX_FAULT`.
  var environment: [String] = []
  /// A command every run goes through, e.g. `ip netns exec NAME` (a daemon it starts too).
  var launcher: [String] = []

  /// A fresh scratch directory; the coordination directory is `rootName` inside it.
  init(rootName: String = "coord") throws {
    guard FileSystem.exists(Cortex.binary) else {
      throw HarnessError(message: "no cortex binary at \(Cortex.binary); `swift test` builds it")
    }
    scratch = try FileSystem.makeTemporaryDirectory(prefix: "cortex-e2e-")
    root = scratch + "/" + rootName
  }

  /// Runs `cortex --dir ROOT ARGS...`, bounded by `timeoutS`; stdin from `input` when given.
  @discardableResult
  func run(_ args: [String], input: String? = nil, timeoutS: Int64 = 60, file: StaticString = #filePath, line: UInt = #line) -> Run {
    run(raw: ["--dir", root] + args, input: input, timeoutS: timeoutS, file: file, line: line)
  }

  /// Runs `cortex ARGS...` as given, in `directory` when set, with `environment` added.
  func run(
    raw args: [String], input: String? = nil, timeoutS: Int64 = 60, directory: String? = nil, environment: [String] = [],
    file: StaticString = #filePath, line: UInt = #line
  ) -> Run {
    let id = UInt64(Clock.monotonicNs())
    let outPath = "\(scratch)/out-\(id)", errPath = "\(scratch)/err-\(id)", inPath = "\(scratch)/in-\(id)"
    defer {
      for p in [outPath, errPath, inPath] { try? FileSystem.remove(p) }
    }
    do {
      try FileSystem.writeAtomically(inPath, Array((input ?? "").utf8), durable: false)
      let i = try FileDescriptor.open(inPath, .readOnly)
      let o = try FileDescriptor.open(outPath, [.writeOnly, .create, .truncate])
      let e = try FileDescriptor.open(errPath, [.writeOnly, .create, .truncate])
      // A name given here replaces the inherited one (getenv would find the first, e.g. PATH).
      let given = Set((self.environment + environment).map { String($0.prefix { $0 != "=" }) })
      let inherited = Environment.all().filter { !$0.hasPrefix("CORTEX_") && !given.contains(String($0.prefix { $0 != "=" })) }
      let env = inherited + ["NO_COLOR=1"] + self.environment + environment
      let pid = try Processes.spawn(
        launcher + [Cortex.binary] + args, environment: env, directory: directory, stdin: i, stdout: o, stderr: e, newProcessGroup: false)
      i.close()
      o.close()
      e.close()
      let deadline = Clock.monotonicMs() + timeoutS * 1000
      var status: ExitStatus? = nil
      while status == nil {
        if let (_, s) = Processes.reap(pid) {
          status = s
          break
        }
        if Clock.monotonicMs() > deadline {
          _ = Processes.signal(pid, Signal.kill)
          _ = Processes.wait(pid)
          XCTFail("cortex \(args.joined(separator: " ")) did not finish within \(timeoutS) s", file: file, line: line)
          return Run(code: -1, out: "", err: "timeout")
        }
        sleepMs(2)
      }
      let out = String(decoding: (try FileSystem.read(outPath)) ?? [], as: UTF8.self)
      let err = String(decoding: (try FileSystem.read(errPath)) ?? [], as: UTF8.self)
      switch status! {
      case .exited(let c): return Run(code: c, out: out, err: err)
      case .signaled(let s): return Run(code: 128 + s, out: out, err: err)
      }
    } catch {
      XCTFail("cannot run cortex: \(error)", file: file, line: line)
      return Run(code: -1, out: "", err: "\(error)")
    }
  }

  /// Runs and asserts the exit code.
  @discardableResult
  func ok(
    _ args: [String], input: String? = nil, code: Int32 = 0, timeoutS: Int64 = 60, file: StaticString = #filePath, line: UInt = #line
  ) -> Run {
    let r = run(args, input: input, timeoutS: timeoutS, file: file, line: line)
    XCTAssertEqual(r.code, code, "cortex \(args.joined(separator: " ")): stdout \(r.out) stderr \(r.err)", file: file, line: line)
    return r
  }

  /// `cortex init`, then edits config.json.
  func initialize(_ edit: [(String, JSON)] = []) throws {
    ok(["init", "--no-start"])
    try configure(edit)
  }

  /// Sets these keys of config.json (the daemon reads it when it starts).
  func configure(_ edit: [(String, JSON)]) throws {
    guard var cfg = try FileSystem.read(paths.config).flatMap({ try? JSON.parse($0) })?.object else {
      throw HarnessError(message: "config.json did not parse")
    }
    for (k, v) in edit {
      if let i = cfg.firstIndex(where: { $0.0 == k }) { cfg[i].1 = v } else { cfg.append((k, v)) }
    }
    try FileSystem.writeAtomically(paths.config, JSON.object(cfg).encodedBytes())
  }

  var daemonPID: Int32? {
    guard let b = (try? FileSystem.read(paths.pid)) ?? nil else { return nil }
    return Int32(String(decoding: b, as: UTF8.self).filter(\.isNumber))
  }

  /// Every event in the log, in file order; fails on a line that does not parse.
  func events(file: StaticString = #filePath, line: UInt = #line) -> [JSON] {
    var out: [JSON] = []
    let names = LogSegments.indexes((try? FileSystem.list(paths.events)) ?? [])
    for i in names {
      var bytes = ((try? FileSystem.read(paths.events + "/" + LogSegments.name(i))) ?? nil) ?? []
      // A line the daemon is writing at this moment has no newline yet: not part of the log yet.
      while let last = bytes.last, last != 10 { bytes.removeLast() }
      for l in bytes.split(separator: 10) {
        do { out.append(try JSON.parse(l)) } catch {
          XCTFail("\(LogSegments.name(i)): a line does not parse: \(error)", file: file, line: line)
        }
      }
    }
    return out
  }

  /// Waits until `cond` holds, polling; fails with `what` after `timeoutS`.
  @discardableResult
  func eventually(
    _ what: String, timeoutS: Int64 = 20, file: StaticString = #filePath, line: UInt = #line, _ cond: () throws -> Bool
  ) rethrows -> Bool {
    let deadline = Clock.monotonicMs() + timeoutS * 1000
    while Clock.monotonicMs() < deadline {
      if try cond() { return true }
      sleepMs(20)
    }
    XCTFail("timed out after \(timeoutS) s waiting for: \(what)", file: file, line: line)
    return false
  }

  /// Processes that still belong to this directory (daemon, workers, tasks).
  var leftovers: [ProcessEntry] { Processes.belonging(toDirectory: root) }

  /// Stops a running daemon, kills anything left (failing the test if there was), removes the files.
  func finish(file: StaticString = #filePath, line: UInt = #line) {
    if FileSystem.exists(paths.socket) { _ = run(["stop", "--timeout", "5"], timeoutS: 60) }
    var left: [ProcessEntry] = []
    let deadline = Clock.monotonicMs() + 5000
    repeat {
      left = leftovers.filter { !$0.isZombie || $0.parent == Processes.currentID }
      if left.isEmpty { break }
      sleepMs(20)
    } while Clock.monotonicMs() < deadline
    for p in left {
      _ = Processes.signal(p.pid, Signal.kill)
    }
    XCTAssertTrue(
      left.isEmpty, "processes left behind: \(left.map { "\($0.pid) \($0.state) \($0.commandLine.joined(separator: " "))" })", file: file,
      line: line)
    FileSystem.removeTree(scratch)
  }
}

extension JSON {
  var taskID: String? { self["task_id"]?.string }
  var type: String? { self["type"]?.string }
}

extension String {
  var trimmed: String {
    var s = Substring(self)
    while let f = s.first, f.isWhitespace { s.removeFirst() }
    while let l = s.last, l.isWhitespace { s.removeLast() }
    return String(s)
  }
}

struct HarnessError: Error, CustomStringConvertible {
  let message: String
  var description: String { message }
}

/// utime + stime of a process, in clock ticks (proc(5)): what a test measures to catch a spin.
func cpuTicks(_ pid: Int32) throws -> Int {
  let stat = String(decoding: try XCTUnwrap(FileSystem.read("/proc/\(pid)/stat")), as: UTF8.self)
  let fields = try XCTUnwrap(stat.split(separator: ")").last).split(separator: " ")
  // After "pid (comm)": state is field 3, utime 14 and stime 15.
  return try XCTUnwrap(Int(fields[11])) + XCTUnwrap(Int(fields[12]))
}

/// A TCP port nothing listens on now: the kernel's pick for 127.0.0.1:0, released. A port made up
/// from the clock could be one another test, a server or an outgoing connection holds.
func freeTCPPort() throws -> Int {
  let fd = try TCPSocket.listen(address: "127.0.0.1", port: 0)
  defer { fd.close() }
  return TCPSocket.localPort(fd)
}
