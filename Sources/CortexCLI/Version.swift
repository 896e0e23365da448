/// The version `cortex --version` prints and `scripts/package` names the .deb after.
enum CortexVersion {
  static let string = "0.1.0"
}
