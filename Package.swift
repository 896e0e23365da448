// swift-tools-version: 6.2
import PackageDescription

/// One set of strict settings for every Swift target: Swift 6 mode, warnings are errors, and
/// imports are internal unless said otherwise, so Glibc types cannot leak out of `Posix`.
let strict: [SwiftSetting] = [
  .enableUpcomingFeature("InternalImportsByDefault"),
  .treatAllWarnings(as: .error),
]

let package = Package(
  name: "Cortex",
  products: [.executable(name: "cortex", targets: ["cortex"])],
  targets: [
    .target(name: "CShim"),
    .target(name: "Posix", dependencies: ["CShim"], swiftSettings: strict),
    .target(name: "CortexCore", swiftSettings: strict),
    .target(name: "CortexDaemon", dependencies: ["CortexCore", "Posix", "CortexCluster", "CortexWeb"], swiftSettings: strict),
    .target(name: "CortexWeb", dependencies: ["CortexCore", "Posix"], swiftSettings: strict),
    .target(name: "CortexWorker", dependencies: ["CortexCore", "Posix"], swiftSettings: strict),
    .target(name: "CortexCluster", dependencies: ["CortexCore", "Posix"], swiftSettings: strict),
    .target(
      name: "CortexCLI", dependencies: ["CortexCore", "Posix", "CortexDaemon", "CortexWorker", "CortexCluster"],
      swiftSettings: strict),
    .executableTarget(name: "cortex", dependencies: ["CortexCLI"], swiftSettings: strict),
    .testTarget(name: "CortexCoreTests", dependencies: ["CortexCore"], swiftSettings: strict),
    .testTarget(name: "PosixTests", dependencies: ["Posix", "CortexCore", "CortexDaemon"], swiftSettings: strict),
    .testTarget(name: "CortexWebTests", dependencies: ["CortexWeb", "CortexCore"], swiftSettings: strict),
    .testTarget(name: "EndToEndTests", dependencies: ["CortexCore", "Posix", "CortexCluster"], swiftSettings: strict),
  ],
  swiftLanguageModes: [.v6]
)
