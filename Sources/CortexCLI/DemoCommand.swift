import CortexCore
import Posix

enum DemoCommand {
  static func run(_ args: inout Args, _ ctx: Context) throws(CLIError) -> Int32 { 0 }
}
