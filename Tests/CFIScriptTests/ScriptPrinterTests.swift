// ScriptPrinterTests.swift — the canonical printer of CFIScript: what it prints parses back to
// the same tree, for every golden case that parses, and strings survive whatever they hold.

import CFIScript
import CFISyntax
import Foundation
import Testing

@Suite("Script printer")
struct ScriptPrinterTests {
  /// The golden cases without diagnostics (those with a `.ast` expectation).
  static func parsingCases() -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: GoldenTests.directory)) ?? []
    return names.filter { $0.hasSuffix(".ast") }.sorted().map { String($0.dropLast(".ast".count)) + ".cfi" }
  }

  /// Loads `name` from `Golden/`, its own text replaced by `text` if given.
  static func load(_ name: String, text: String? = nil) throws -> LoadedRunbook {
    let root = GoldenTests.directory
    return try Loader.load(path: name) { path in
      if path == name, let text { return FileContents(bytes: Array(text.utf8)) }
      return try Loader.openFromDisk(path.hasPrefix("/") ? path : root + "/" + path)
    }
  }

  @Test("print(parse(x)) parses to the same tree", arguments: parsingCases())
  func roundTrip(_ name: String) throws {
    let original = try ScriptPrinterTests.load(name)
    #expect(original.diagnostics.isEmpty)
    let mismatch = try FrontEndInvariants.reprintMismatch(original) { bytes in
      try ScriptPrinterTests.load(name, text: String(decoding: bytes, as: UTF8.self))
    }
    #expect(mismatch == nil, "\(mismatch ?? "")")
  }

  static let nastyStrings = [
    "", "plain", "$", "$x", "${x}", "\\", "\\\\", "a\\", "\"", "'", "\\'", "it's \"quoted\"", "line\nbreak", "\n",
    "tab\there", "100%", "#not a comment", "<>;,", "ü → 日本", "emoji 🧪", "\r", "$y$j9T$abc/def$", "a\\$b",
  ]

  /// A string literal's value, read back by the parser.
  static func reparsed(_ literal: String) -> String? {
    let source = SourceFile(id: FileID(0), path: "t.cfi", text: "let x = \(literal)\n")
    let (program, diagnostics) = Parser.parse(source)
    guard diagnostics.isEmpty, program.statements.count == 1, case .let(_, let value) = program.statements[0].kind
    else { return nil }
    return value.literalString
  }

  @Test(arguments: nastyStrings)
  func stringsRoundTrip(_ text: String) {
    #expect(ScriptPrinterTests.reparsed(ScriptPrinter.quoted(text)) == text, "\(ScriptPrinter.quoted(text))")
    if let raw = ScriptPrinter.rawQuoted(text) {
      #expect(ScriptPrinterTests.reparsed(raw) == text, "\(raw)")
    } else {
      #expect(text.contains("\n") || text.hasSuffix("\\"), "only line breaks and a final '\\' need a \"…\" string")
    }
  }

  @Test func interpolationKeepsItsVariables() throws {
    let text = ##"let x = "a $b ${c}d ${host.name}.e \$f""## + "\n"
    let (program, diagnostics) = Parser.parse(SourceFile(id: FileID(0), path: "t.cfi", text: text))
    #expect(diagnostics.isEmpty)
    let printed = ScriptPrinter.program(program)
    #expect(printed == text)
  }

  @Test func actionsAndTargetsAsLabels() throws {
    let text = """
      on host pc01,pc02   except  pc03 <
        copy   "etc/x"   to "/etc/x"
        install "htop" pkgs
        password root '$6$x'
        run (a == b)
      >
      """
    let (program, _) = Parser.parse(SourceFile(id: FileID(0), path: "t.cfi", text: text))
    guard case .on(let target, let body) = program.statements.first?.kind else {
      Issue.record("expected an on block")
      return
    }
    #expect(ScriptPrinter.target(target) == "host pc01, pc02 except pc03")
    let labels = body.statements.compactMap { statement -> String? in
      if case .action(let action) = statement.kind { ScriptPrinter.action(action, redacting: "<redacted>") } else { nil }
    }
    #expect(labels == [#"copy "etc/x" to "/etc/x""#, #"install "htop" pkgs"#, #"password "root" <redacted>"#, "run (a == b)"])
  }
}
