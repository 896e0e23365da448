import CortexCore
import Posix

/// `cortex certify SUMMARY.json [--gates FILE]`: checks observed values against gates.
/// Exit 0 certified · 1 not certified (which gates failed, by how much) · 2 invalid evidence
/// (unreadable summary, a missing metric, a summary bound to another binary) · 65 a bad gates file.
enum CertifyCommand {
  static let usage = "cortex certify SUMMARY.json [--gates FILE] [--any-binary]"

  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 {
    let gatesPath = try args.option("--gates") ?? "docs/bench/gates.json"
    let anyBinary = args.flag("--any-binary")
    let words = try args.positionals()
    guard words.count == 1 else { throw CLIError.usage("give one summary file", usage) }
    let read: [UInt8]?
    do throws(PosixError) { read = try FileSystem.read(words[0]) } catch {
      throw CLIError(2, "invalid evidence: cannot read \(quoted(words[0])): \(error)")
    }
    guard let sb = read else { throw CLIError(2, "invalid evidence: cannot read \(quoted(words[0])): it does not exist") }
    let summary: JSON
    do { summary = try JSON.parse(sb) } catch { throw CLIError(2, "invalid evidence: \(words[0]) is not JSON: \(error)") }
    guard let gb = (try? FileSystem.read(gatesPath)) ?? nil else {
      throw CLIError(ExitCode.invalidSpec, "cannot read the gates file \(gatesPath) (give one with --gates FILE)")
    }
    let gates: [Gate]
    do { gates = try Gate.parse(try JSON.parse(gb)) } catch let e as SpecError {
      throw CLIError(ExitCode.invalidSpec, "\(gatesPath): \(e)")
    } catch {
      throw CLIError(ExitCode.invalidSpec, "\(gatesPath) does not parse: \(error)")
    }
    guard summary["binding"]?.object != nil else { throw CLIError(2, "invalid evidence: the summary has no binding") }
    if !anyBinary {
      let mine = ((try? FileSystem.read(ctx.executable)) ?? nil).map(SHA256.hex) ?? ""
      let theirs = summary["binding"]?["binary_sha256"]?.string ?? ""
      if mine != theirs {
        throw CLIError(
          2,
          "invalid evidence: the summary was produced by another binary (sha256 \(theirs.prefix(16))…, this one is \(mine.prefix(16))…); re-run the benchmark or pass --any-binary"
        )
      }
    }
    let v = Gate.evaluate(summary, gates)
    var s = ""
    for p in v.passed { s += "pass     \(p)\n" }
    for f in v.failed { s += "FAIL     \(f)\n" }
    for m in v.missing { s += "MISSING  \(m)\n" }
    if ctx.json {
      ctx.printJSON(
        .object([
          ("certified", .bool(v.failed.isEmpty && v.missing.isEmpty)), ("passed", .array(v.passed.map { .string($0) })),
          ("failed", .array(v.failed.map { .string($0) })), ("missing", .array(v.missing.map { .string($0) })),
        ]))
    } else {
      ctx.out(s)
    }
    if !v.missing.isEmpty {
      ctx.err("cortex certify: invalid evidence: \(v.missing.count) metric(s) missing\n")
      return 2
    }
    if !v.failed.isEmpty {
      ctx.err("cortex certify: NOT certified: \(v.failed.count) of \(gates.count) gates failed\n")
      return 1
    }
    ctx.err("cortex certify: certified (\(gates.count) gates)\n")
    return 0
  }
}

extension CertifyCommand {
  static let help = CommandHelp(
    "certify", abstract: "check a benchmark summary against gates (0 certified, 1 not, 2 invalid evidence)", usage: usage,
    flags: [
      .option("--gates", value: "FILE", help: "the gates", default: "docs/bench/gates.json", completes: .file),
      .flag("--any-binary", help: "accept a summary made by another binary"),
    ], operands: .file,
    examples: [
      (
        "cortex certify SUMMARY.json",
        "judge a summary this binary's benchmark wrote (cortex bench soak, ramp, ...), against docs/bench/gates.json"
      ),
      (
        "cortex certify docs/bench/soak-20261124112227.summary.json --gates docs/bench/gates-soak.json --any-binary",
        "judge the committed soak, made by another build (without --any-binary: exit 2, invalid evidence)"
      ),
    ])
}
