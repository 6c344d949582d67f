// swift-tools-version: 6.0
// The fuzzer of cfi-sh's front end (lexer, parser, include loader, resolver, renderer, printer):
// a libFuzzer target, built by `make fuzz` with `-sanitize=fuzzer` (see README.md). A package
// of its own so that the main build and `swift test` never need the fuzzer's flags.
import PackageDescription

let package = Package(
  name: "cfi-fuzz",
  dependencies: [.package(name: "cfi-sh", path: "..")],
  targets: [
    .executableTarget(
      name: "FuzzFrontEnd",
      dependencies: [
        .product(name: "CFIScript", package: "cfi-sh"), .product(name: "CFISyntax", package: "cfi-sh"),
      ],
      swiftSettings: [.enableUpcomingFeature("ExistentialAny")])
  ],
  swiftLanguageModes: [.v6]
)
