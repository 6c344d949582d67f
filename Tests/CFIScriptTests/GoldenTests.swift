// GoldenTests.swift — golden-file tests of the CFIScript front end (loader, parser,
// resolver, AST printer, diagnostic renderer).
//
// Layout of `Golden/` (next to this file):
// - `NAME.cfi` directly in `Golden/` is a case. Next to it is exactly one expectation:
//   `NAME.ast` when the case has no diagnostics (the `ASTPrinter` dump of the program), or
//   `NAME.diag` when it has some (the rendered diagnostics, no colours).
// - Inputs too big or too odd to commit are generated here (`GoldenTests.generated`); their
//   expectations are committed like the others, under the generated name (`gen-….diag`).
// - Subfolders are not walked: `lib/` holds files that cases include (`lib/same` is a
//   symlink to `lib` itself, for include cycles through symlinks), `store/` is the store
//   (`store/lab/…`, `store/office/…`) used for store-path checks.
//
// Each case is loaded as `Loader.load(path: "NAME.cfi")` with a `readFile` rooted at
// `Golden/`, so the paths in diagnostics are relative to `Golden/` (`NAME.cfi:3:9: …`,
// `lib/common.cfi:1:1: …`) and the same on every machine. The resolver runs with
// `knownGroups: ["lab", "office"]` and `Store(root: Golden/store)`; the absolute path of
// `Golden/` in store messages is shown as `<golden>/`.
//
// `Golden/` is read in the source tree (via `#filePath`), not from the copy in the test
// bundle, so that recording writes where git sees it and edits need no rebuild.
//
// A case whose first lines say `KNOWN GAP` records what the front end does today where it
// should do better (said in the comment); re-record it when that is fixed.
//
// `CFI_GOLDEN_ONLY=PREFIX` restricts the run to the cases whose name starts with PREFIX.
//
// Recording: `CFI_RECORD=1 swift test --filter Golden` rewrites the expectations (removing
// a stale one of the other kind). Every case whose expectation was written then fails with
// "recorded …", and `recordingIsOff` fails, so a recording run is never mistaken for a pass.

import CFIScript
import CFISyntax
import Foundation
import Runtime
import TestSupport
import Testing

/// One golden case: a committed `.cfi` file or a generated input.
struct GoldenCase: Sendable, CustomTestStringConvertible {
  /// The file name of the input, relative to `Golden/` (also its display path).
  var name: String
  /// The input, when it is generated rather than read from `Golden/`.
  var generated: [UInt8]?

  var testDescription: String { name }
  /// The name without `.cfi`, which the expectation files share.
  var stem: String { String(name.dropLast(".cfi".count)) }
}

@Suite("Golden")
struct GoldenTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Golden").path
  static let recording = ProcessInfo.processInfo.environment["CFI_RECORD"] == "1"
  static let knownGroups: Set<String> = ["lab", "office"]

  /// Inputs built here: name → bytes.
  static let generated: [(String, @Sendable () -> [UInt8])] = [
    // A 1 MB line with an error near its end: the excerpt must be clipped around the caret.
    ("gen-long-line.cfi", { Array(("let x = \"" + String(repeating: "a", count: 1_000_000) + "\" + 1\n").utf8) }),
    // A 1 MB comment then an error on the next line: long lines elsewhere cost nothing.
    ("gen-long-comment.cfi", { Array(("# " + String(repeating: "ü", count: 500_000) + "\nprin \"x\"\n").utf8) }),
    // 10,000 nested blocks: a nesting error, no stack overflow.
    ("gen-nested-blocks.cfi", {
      Array(("on all < " + String(repeating: "try < ", count: 10_000) + String(repeating: ">", count: 10_001) + "\n").utf8)
    }),
    // 10,000 nested lists.
    ("gen-nested-lists.cfi", {
      Array(("let x = " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n").utf8)
    }),
    // 10,000 nested parentheses.
    ("gen-nested-parens.cfi", {
      Array(("let x = " + String(repeating: "(", count: 10_000) + "1" + String(repeating: ")", count: 10_000) + "\n").utf8)
    }),
    // 10,000 unclosed blocks.
    ("gen-unclosed-blocks.cfi", { Array(("on all < " + String(repeating: "if true < ", count: 10_000) + "\n").utf8) }),
    // 10,000 `not`s (parsed iteratively) and a 10,000-term `or` chain.
    ("gen-long-chains.cfi", {
      Array(
        ("let a = " + String(repeating: "not ", count: 10_000) + "true\nlet b = true"
          + String(repeating: " or false", count: 10_000) + "\nprint a b\n").utf8)
    }),
    // 2,000 errors of three kinds: the first 100 are shown, then how many more.
    ("gen-many-diagnostics.cfi", {
      Array(String(repeating: "prin \"x\"\nlet = 1\n\u{1}\n", count: 667).utf8)
    }),
    // Every byte value outside strings.
    ("gen-all-bytes.cfi", { Array(0...255).map(UInt8.init) }),
  ]

  /// Every case: the `.cfi` files directly in `Golden/`, then the generated ones.
  static func allCases() -> [GoldenCase] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    let files = names.filter { $0.hasSuffix(".cfi") }.sorted().map { GoldenCase(name: $0) }
    return files + generated.map { GoldenCase(name: $0.0, generated: $0.1()) }
  }

  /// The cases to run: all, or those `CFI_GOLDEN_ONLY` selects.
  static func cases() -> [GoldenCase] {
    guard let only = ProcessInfo.processInfo.environment["CFI_GOLDEN_ONLY"] else { return allCases() }
    return allCases().filter { $0.name.hasPrefix(only) }
  }

  /// Loads, resolves and prints one case: the AST dump, or the rendered diagnostics.
  static func output(of golden: GoldenCase) throws -> (text: String, isDiagnostics: Bool) {
    let root = directory
    let runbook = try Loader.load(path: golden.name) { path in
      if path == golden.name, let bytes = golden.generated { return FileContents(bytes: bytes) }
      return try Loader.openFromDisk(path.hasPrefix("/") ? path : root + "/" + path)
    }
    let context = ResolverContext(knownGroups: knownGroups, store: Store(root: root + "/store"))
    let all = runbook.diagnostics + Resolver.check(runbook, context: context)
    // Sorted by range; ties keep parser-then-resolver order.
    let diagnostics = all.enumerated().sorted { ($0.element.range, $0.offset) < ($1.element.range, $1.offset) }
      .map(\.element)
    if diagnostics.isEmpty {
      return (ASTPrinter.print(runbook.program, files: runbook.files), false)
    }
    let text = DiagnosticRenderer(files: runbook.files, colors: false).render(diagnostics)
    return (text.replacingOccurrences(of: root + "/", with: "<golden>/"), true)
  }

  @Test("golden case", arguments: cases())
  func golden(_ golden: GoldenCase) throws {
    let (actual, isDiagnostics) = try GoldenTests.output(of: golden)
    let base = GoldenTests.directory + "/" + golden.stem
    let path = base + (isDiagnostics ? ".diag" : ".ast")
    let other = base + (isDiagnostics ? ".ast" : ".diag")
    let manager = FileManager.default
    if GoldenTests.recording {
      let old = try? String(contentsOfFile: path, encoding: .utf8)
      if manager.fileExists(atPath: other) { try manager.removeItem(atPath: other) }
      if old != actual {
        try actual.write(toFile: path, atomically: true, encoding: .utf8)
        Issue.record("recorded \(golden.stem)\(isDiagnostics ? ".diag" : ".ast"); run again without CFI_RECORD")
      }
      return
    }
    if manager.fileExists(atPath: other) {
      Issue.record(
        """
        \(golden.name): expected \(isDiagnostics ? "diagnostics" : "no diagnostics") \
        (\((other as NSString).lastPathComponent) exists), found \(isDiagnostics ? "diagnostics" : "none"):
        \(actual)
        Review, then record with: CFI_RECORD=1 swift test --filter Golden
        """)
      return
    }
    guard let expected = try? String(contentsOfFile: path, encoding: .utf8) else {
      Issue.record(
        """
        \(golden.name) has no expectation \((path as NSString).lastPathComponent). Output:
        \(actual)
        Review it, then record with: CFI_RECORD=1 swift test --filter Golden
        """)
      return
    }
    #expect(actual == expected, "\(golden.name): \(GoldenFile.firstDifference(expected, actual))")
  }

  /// Fails while recording, so that a recording run never looks like a passing one.
  @Test func recordingIsOff() {
    #expect(!GoldenTests.recording, "CFI_RECORD=1: expectations were rewritten; review them and run again without it")
  }

  /// Every expectation file belongs to an input, and every input has exactly one.
  @Test func noOrphanExpectations() throws {
    let names = Set(GoldenTests.allCases().map(\.stem))
    for file in try FileManager.default.contentsOfDirectory(atPath: GoldenTests.directory) {
      let file = file as NSString
      guard ["ast", "diag"].contains(file.pathExtension) else { continue }
      #expect(names.contains(file.deletingPathExtension), "\(file) has no input")
    }
  }

  /// The corpus keeps its size and its share of error cases.
  @Test func corpusSize() throws {
    let cases = GoldenTests.allCases()
    let errors = try cases.filter { try GoldenTests.output(of: $0).isDiagnostics }.count
    #expect(cases.count >= 70, "only \(cases.count) golden cases")
    #expect(errors * 2 >= cases.count, "only \(errors) of \(cases.count) golden cases are errors")
  }

  /// Suggestions must not depend on the order of a `Set`, or the goldens would be flaky.
  @Test func suggestionTiesAreStable() {
    for _ in 0..<20 {
      let candidates = Set(["y", "x", "w", "packages", "pkgs"])
      #expect(closestMatch(to: "z", in: candidates) == "w")
      #expect(closestMatch(to: "z", in: Array(candidates).reversed()) == "w")
    }
  }
}
