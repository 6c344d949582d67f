// swift-tools-version: 6.0
// cfi-sh: configuration infrastructure shell for pools of Linux machines.
// Dependencies point down: cfi-sh → CFIScript → CFISyntax, CFIScript → Runtime. See README.md.
import PackageDescription

let strict: [SwiftSetting] = [
  .enableUpcomingFeature("MemberImportVisibility"),
  .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
  name: "cfi-sh",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "cfi-sh", targets: ["cfi-sh"]),
    .library(name: "CFIScript", targets: ["CFIScript"]),
    .library(name: "CFISyntax", targets: ["CFISyntax"]),
    .library(name: "Runtime", targets: ["Runtime"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    // The state database (run history, known and pending hosts, deliveries): SQLite in the store.
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    // HMAC-SHA1 of the host names in a hashed known_hosts line (OpenSSH's HashKnownHosts).
    .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
  ],
  targets: [
    // libavahi-client (mDNS discovery). No pkgConfig: avahi-client.pc adds only -D_REENTRANT (obsolete
    // with glibc; SwiftPM dropped it with a warning) and its headers and libraries are in the system
    // paths; the module map links avahi-client and avahi-common.
    .systemLibrary(name: "CAvahi", providers: [.apt(["libavahi-client-dev"])]),
    // GNU readline (the REPL's line editor, Sources/cfi-sh/LineEditor.swift).
    // No pkgConfig: readline.pc pulls in tinfo's -D flags, which SwiftPM drops with a warning.
    .systemLibrary(name: "CReadline", providers: [.apt(["libreadline-dev"])]),
    .target(
      name: "Runtime",
      dependencies: [
        "CAvahi", .product(name: "Subprocess", package: "swift-subprocess"), .product(name: "GRDB", package: "GRDB.swift"),
        .product(name: "Crypto", package: "swift-crypto"),
      ],
      exclude: ["README.md"],
      swiftSettings: strict),
    // The language's text (lexer, parser, AST, printer); it depends on nothing of ours, so
    // that "Syntax imports nothing" is a compile error rather than a habit.
    .target(name: "CFISyntax", exclude: ["README.md"], swiftSettings: strict),
    .target(
      name: "CFIScript", dependencies: ["CFISyntax", "Runtime"], exclude: ["Interpreter/README.md"],
      swiftSettings: strict),
    .executableTarget(
      name: "cfi-sh",
      dependencies: [
        "CFIScript", "CFISyntax", "Runtime", "CReadline",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      exclude: ["README.md"],
      swiftSettings: strict),
    .testTarget(
      name: "RuntimeTests", dependencies: ["Runtime", "TestSupport"], exclude: ["Golden", "EnrollmentGolden", "BootstrapGolden"],
      swiftSettings: strict),
    .testTarget(
      name: "CFIScriptTests", dependencies: ["CFIScript", "CFISyntax", "Runtime", "TestSupport"],
      exclude: ["Golden", "FuzzInputs"], swiftSettings: strict),
    // Benchmarks (not tests): `make bench`, results in bench/README.md.
    .executableTarget(name: "cfi-bench-parse", dependencies: ["CFIScript", "CFISyntax", "Runtime"], path: "bench/parse"),
    .target(name: "TestSupport", dependencies: ["Runtime", "CFISyntax"], path: "Tests/TestSupport", swiftSettings: strict),
    .testTarget(
      name: "cfi-shTests", dependencies: ["cfi-sh", "TestSupport"], exclude: ["Golden", "DeliveriesGolden", "LogGolden"], swiftSettings: strict),
    // Tests on a real fleet: hosts in network namespaces started by scripts/lab (root only).
    .testTarget(
      name: "FleetTests", dependencies: ["cfi-sh", "Runtime", "TestSupport"], exclude: ["Golden"], swiftSettings: strict),
  ],
  swiftLanguageModes: [.v6]
)
