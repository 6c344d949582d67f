// ParserRobustnessTests.swift — property tests of the front end on bad input: random bytes,
// random token soup and random mutations of the golden inputs (all from a seeded generator,
// so a failure reproduces) go through the loader, the resolver, the renderer and the
// printer. Each must return, every diagnostic (and note) must point inside its file, an
// input with no diagnostics must print, and one that parses must survive ScriptPrinter. Also: line endings and trailing trivia do not change
// the tree of a valid golden.

import CFIScript
import CFISyntax
import Foundation
import Runtime
import Testing

/// SplitMix64: a small, seedable generator, so the inputs are the same on every run.
struct SeededGenerator: RandomNumberGenerator {
  private var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite("Parser robustness")
struct ParserRobustnessTests {
  /// Pieces of the language, so random inputs get past the first token often enough.
  static let fragments: [String] = [
    "let ", "x", " = ", "on ", "all", "group ", "host ", "lab", "office", " except ", "pc[01-05]", "pc[", "01-",
    "]", "[", ",", "<", ">", " < ", " > ", "\n", ";", "(", ")", "\"", "'", "\"a $x ${host.name} \\n\"", "'$y$'",
    "\\", "$", "${", "}", "run ", "copy ", " to ", "sync", "script ", "password ", "install ", "remove ", "upgrade",
    "pkgsync", "if ", "else ", "for ", " in ", "def ", "f(", "include \"lib/common.cfi\"", "include \"",
    "try ", "set ", "parallel", "max_fail", "10%", "30s", "250ms", "42", "true", "false", "and ", "or ", "not ",
    "==", "!=", "host.name", ".", "print ", "fail ", "lines(\"packages.list\")", "@lab", "# comment\n", "\r\n",
    "\u{FF}", "→", "\t", " ", "  ", "99999999999999999999", "1.5s",
  ]

  static let goldenInputs: [(String, [UInt8])] = {
    let directory = GoldenTests.directory
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.filter { $0.hasSuffix(".cfi") }.sorted().compactMap { name in
      (try? Loader.readFromDisk(directory + "/" + name)).map { (name, $0) }
    }
  }()

  /// Loads `bytes` as `fuzz.cfi` in `Golden/` (so includes find `lib/`), resolves it, renders
  /// the diagnostics or prints the tree, and checks the ranges and, when it parses, that the
  /// printer gives it back (`FrontEndInvariants`). Returns the diagnostic count and what broke;
  /// it records nothing itself, so that it can run on a watched thread (`FuzzCorpusTests`).
  static func problems(_ bytes: [UInt8]) -> (diagnostics: Int, problems: [String]) {
    let root = GoldenTests.directory
    let load = { (bytes: [UInt8]) in
      Loader.load(text: bytes, name: "fuzz.cfi") { path in
        try Loader.openFromDisk(path.hasPrefix("/") ? path : root + "/" + path)
      }
    }
    let runbook = load(bytes)
    let context = ResolverContext(knownGroups: GoldenTests.knownGroups, store: Store(root: root + "/store"))
    let diagnostics = runbook.diagnostics + Resolver.check(runbook, context: context)
    var problems = [
      FrontEndInvariants.reprintMismatch(runbook, reparse: load),
      FrontEndInvariants.rangesOutsideFiles(diagnostics, files: runbook.files),
    ].compactMap { $0 }
    if diagnostics.isEmpty {
      _ = ASTPrinter.print(runbook.program, files: runbook.files)
    } else if DiagnosticRenderer(files: runbook.files, colors: true).render(diagnostics).isEmpty {
      problems.append("\(diagnostics.count) diagnostics rendered as nothing")
    }
    return (diagnostics.count, problems)
  }

  /// `problems`, each recorded as an issue of the running test. Returns the diagnostic count.
  @discardableResult
  static func check(_ bytes: [UInt8], label: String) -> Int {
    let (count, problems) = ParserRobustnessTests.problems(bytes)
    for problem in problems { Issue.record("\(label): \(problem)") }
    return count
  }

  /// Random bytes, weighted towards the ones that matter to the lexer.
  static func randomBytes(_ generator: inout SeededGenerator) -> [UInt8] {
    let special = Array("<>[](),;=!\"'\\$#{}.-%@\n\r\t 0123456789".utf8)
    return (0..<Int.random(in: 0...120, using: &generator)).map { _ in
      Bool.random(using: &generator) ? special.randomElement(using: &generator)! : UInt8.random(in: 0...255, using: &generator)
    }
  }

  /// A random run of language fragments.
  static func randomFragments(_ generator: inout SeededGenerator) -> [UInt8] {
    let count = Int.random(in: 1...40, using: &generator)
    return Array((0..<count).map { _ in fragments.randomElement(using: &generator)! }.joined().utf8)
  }

  /// A golden input with a few random edits: deletions, insertions, duplications, truncation.
  static func mutated(_ input: [UInt8], _ generator: inout SeededGenerator) -> [UInt8] {
    var bytes = input
    for _ in 0..<Int.random(in: 1...4, using: &generator) {
      let position = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &generator)
      switch Int.random(in: 0..<6, using: &generator) {
      case 0 where !bytes.isEmpty:  // delete a stretch
        let end = min(bytes.count, position + Int.random(in: 1...8, using: &generator))
        bytes.removeSubrange(min(position, end)..<end)
      case 1:  // insert a fragment
        bytes.insert(contentsOf: Array(fragments.randomElement(using: &generator)!.utf8), at: position)
      case 2:  // insert a random byte
        bytes.insert(UInt8.random(in: 0...255, using: &generator), at: position)
      case 3 where !bytes.isEmpty:  // duplicate a stretch
        let end = min(bytes.count, position + Int.random(in: 1...30, using: &generator))
        bytes.insert(contentsOf: bytes[min(position, end)..<end], at: position)
      case 4:  // truncate
        bytes.removeSubrange(position..<bytes.count)
      default:  // replace a byte
        if position < bytes.count { bytes[position] = UInt8.random(in: 0...255, using: &generator) }
      }
    }
    return bytes
  }

  @Test("random bytes and token soup", .timeLimit(.minutes(2)))
  func randomInputs() {
    var generator = SeededGenerator(seed: 0xC0FFEE)
    var withErrors = 0
    for index in 0..<2_000 {
      let bytes = index % 2 == 0 ? ParserRobustnessTests.randomBytes(&generator) : ParserRobustnessTests.randomFragments(&generator)
      if ParserRobustnessTests.check(bytes, label: "random input #\(index) \(Array(bytes))") > 0 { withErrors += 1 }
    }
    #expect(withErrors > 1_000, "the generator should mostly make bad input")
  }

  @Test("mutated golden inputs", .timeLimit(.minutes(2)))
  func mutatedGoldens() throws {
    let inputs = ParserRobustnessTests.goldenInputs
    try #require(inputs.count > 50)
    var generator = SeededGenerator(seed: 42)
    var withErrors = 0
    for index in 0..<2_000 {
      let (name, input) = inputs[index % inputs.count]
      let bytes = ParserRobustnessTests.mutated(input, &generator)
      let label = "mutation #\(index) of \(name): \(String(decoding: bytes, as: UTF8.self).debugDescription)"
      if ParserRobustnessTests.check(bytes, label: label) > 0 { withErrors += 1 }
    }
    #expect(withErrors > 1_000, "the mutations should mostly break the input")
  }

  @Test("every prefix of some golden inputs", .timeLimit(.minutes(2)))
  func prefixes() {
    let chosen = ["actions.cfi", "if-else.cfi", "strings-escapes.cfi", "targets.cfi", "def-call.cfi", "several-errors.cfi"]
    for (name, input) in ParserRobustnessTests.goldenInputs where chosen.contains(name) {
      for length in 0...input.count {
        ParserRobustnessTests.check(Array(input[..<length]), label: "\(name) cut at \(length)")
      }
    }
  }

  /// For each valid golden: CRLF line endings, a trailing comment and extra blank lines
  /// give the same tree (the printout has line:column, which these keep).
  @Test("trivia does not change the tree of valid goldens")
  func triviaInvariance() throws {
    var checked = 0
    for (name, input) in ParserRobustnessTests.goldenInputs {
      // No includes here (they would fail, and the case is skipped).
      let original = Loader.load(text: input, name: name) { _ in throw CocoaError(.fileNoSuchFile) }
      guard !original.hasErrors, !input.isEmpty, !input.contains(UInt8(ascii: "\r")) else { continue }
      let printed = ASTPrinter.print(original.program, files: original.files)
      var crlf: [UInt8] = []
      for byte in input {
        if byte == UInt8(ascii: "\n") { crlf.append(UInt8(ascii: "\r")) }
        crlf.append(byte)
      }
      let trailing = input + Array("\n\n# the end\n\n".utf8)
      for (variant, bytes) in [("CRLF", crlf), ("trailing trivia", trailing)] {
        let other = Loader.load(text: bytes, name: name) { _ in throw CocoaError(.fileNoSuchFile) }
        #expect(!other.hasErrors, "\(name) with \(variant): \(other.diagnostics.map(\.message))")
        #expect(ASTPrinter.print(other.program, files: other.files) == printed, "\(name) with \(variant)")
      }
      checked += 1
    }
    #expect(checked >= 20)
  }
}
