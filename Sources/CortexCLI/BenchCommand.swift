import CortexCore
import Posix

enum BenchCommand {
  static let usage = "cortex bench PROFILE"
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 { 0 }
}
