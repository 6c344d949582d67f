// LexerTests.swift — table-driven tests of the lexer: the kind and text of every token, in
// normal mode and in pattern mode (host patterns and group names).

import CFIScript
import CFISyntax
import Testing

@Suite("Lexer")
struct LexerTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var source: String
    /// Read every token with `nextPattern()` instead of `next()`.
    var pattern = false
    /// Each token as `kind text` (see `describe`), without the end of input.
    var tokens: [String]
    var testDescription: String { name }
  }

  static let cases: [Case] = [
    Case(name: "empty", source: "", tokens: []),
    Case(
      name: "punctuation", source: "; < > [ ] ( ) , . = == !=",
      tokens: [
        "; ;", "< <", "> >", "[ [", "] ]", "( (", ") )", ", ,", ". .", "= =", "== ==", "!= !=",
      ]),
    Case(
      name: "names and keywords", source: "let letter _x x1 all host to except on",
      tokens: ["keyword let", "name letter", "name _x", "name x1", "name all", "name host", "name to", "name except", "keyword on"]),
    Case(
      name: "every keyword",
      source: Keyword.allCases.map(\.rawValue).joined(separator: " "),
      tokens: Keyword.allCases.map { "keyword \($0.rawValue)" }),
    Case(
      name: "newlines, CRLF and comments", source: "a # comment \"x\"\r\nb\n\n# only\nc",
      tokens: ["name a", "newline \n", "name b", "newline \n", "newline \n", "newline \n", "name c"]),
    Case(name: "line continuation", source: "a \\\n b \\\r\n c", tokens: ["name a", "name b", "name c"]),
    Case(
      name: "numbers, durations, percentages", source: "0 42 250ms 30s 5m 1h 2d 10% 007",
      tokens: [
        "integer 0", "integer 42", "duration 250ms", "duration 30s", "duration 5m", "duration 1h", "duration 2d",
        "percent 10%", "integer 007",
      ]),
    Case(
      name: "bad numbers", source: "30x 5min 1.5s 0.5",
      tokens: [
        "error(invalid number '30x'; durations end in ms, s, m, h or d) 30x",
        "error(invalid number '5min'; durations end in ms, s, m, h or d) 5min",
        "error(invalid number '1.5s'; numbers have no fractions (write the duration in a smaller unit, such as ms)) 1.5s",
        "error(invalid number '0.5'; numbers have no fractions) 0.5",
      ]),
    Case(
      name: "number too large", source: "1234567890123456789 123456789012345678",
      tokens: ["error(number is too large) 1234567890123456789", "integer 123456789012345678"]),
    Case(
      name: "strings with escapes and interpolation", source: #""a \"b\" \\ \$ \n $x ${y.z}" """#,
      tokens: [#"string "a \"b\" \\ \$ \n $x ${y.z}""#, #"string """#]),
    Case(
      name: "raw strings", source: #"'$y$j9T$' 'it\'s' 'a\b' ''"#,
      tokens: ["raw '$y$j9T$'", #"raw 'it\'s'"#, #"raw 'a\b'"#, "raw ''"]),
    Case(
      name: "unterminated strings", source: "\"abc\n'def\n\"xyz",
      tokens: [
        "error(unterminated string; strings end on their line (write '\\n' for a newline)) \"abc", "newline \n",
        "error(unterminated string; strings end on their line) 'def", "newline \n",
        "error(unterminated string) \"xyz",
      ]),
    Case(
      name: "escaped quote at end of line", source: "\"a\\\"\nb",
      tokens: ["error(unterminated string; strings end on their line (write '\\n' for a newline)) \"a\\\"", "newline \n", "name b"]),
    Case(
      name: "bang and dollar", source: "!x $y",
      tokens: [
        "error(unexpected '!'; write 'not' for negation or '!=' for inequality) !", "name x",
        "error(unexpected '$' outside a string; refer to a variable by its bare name) $y",
      ]),
    Case(
      name: "invalid characters", source: "* → \u{0}",
      tokens: [
        "error(unexpected character '*') *", "error(unexpected character '→') →", "error(unexpected character '\\x00') \u{0}",
      ]),
    Case(
      name: "pattern mode: ranges", source: "pc[01-20] pc[01-05,07,10-12], rack[1-2]-n[01-04]", pattern: true,
      tokens: ["pattern pc[01-20]", "pattern pc[01-05,07,10-12]", ", ,", "pattern rack[1-2]-n[01-04]"]),
    Case(
      name: "pattern mode: names, groups, separators", source: "web1.example.com,@lab <x>;y # c", pattern: true,
      tokens: ["pattern web1.example.com", ", ,", "pattern @lab", "< <", "pattern x", "> >", "; ;", "pattern y"]),
    Case(
      name: "pattern mode: strings and bad brackets", source: "\"pc[1-3]\" pc[01- ]x[ -bad", pattern: true,
      tokens: [#"string "pc[1-3]""#, "pattern pc[01-", "pattern ]x[", "pattern -bad"]),
    Case(
      name: "pattern mode: bracket stops at a newline", source: "pc[01-\nx", pattern: true,
      tokens: ["pattern pc[01-", "newline \n", "pattern x"]),
    Case(
      name: "normal mode reads a pattern as pieces", source: "pc[01-05]",
      tokens: ["name pc", "[ [", "integer 01", "error(unexpected character '-') -", "integer 05", "] ]"]),
  ]

  /// A token as `kind text`.
  static func describe(_ token: Token, in source: SourceFile) -> String {
    let text = source.text(token.range)
    let kind: String
    switch token.kind {
    case .endOfInput: kind = "end"
    case .newline: kind = "newline"
    case .identifier: kind = "name"
    case .keyword: kind = "keyword"
    case .string: kind = "string"
    case .rawString: kind = "raw"
    case .integer: kind = "integer"
    case .duration: kind = "duration"
    case .percent: kind = "percent"
    case .hostPattern: kind = "pattern"
    case .error(let problem): kind = "error(\(problem.message))"
    default: kind = text  // punctuation: the text is the kind
    }
    return "\(kind) \(text)"
  }

  /// All tokens of `text` (without the end of input), in one mode.
  static func tokens(_ text: String, pattern: Bool) -> [String] {
    let source = SourceFile(id: FileID(0), path: "test.cfi", text: text)
    var lexer = Lexer(source)
    var result: [String] = []
    for _ in 0..<10_000 {
      let token = pattern ? lexer.nextPattern() : lexer.next()
      if token.kind == .endOfInput { return result }
      result.append(describe(token, in: source))
    }
    Issue.record("the lexer did not reach the end of input")
    return result
  }

  @Test(arguments: cases)
  func tokens(_ test: Case) {
    #expect(LexerTests.tokens(test.source, pattern: test.pattern) == test.tokens)
  }

  /// Each kind of bad input has its diagnostic ID, which is what the parser reports.
  @Test(arguments: [
    ("!x", DiagnosticID.invalidCharacter), ("$y", .invalidCharacter), ("*", .invalidCharacter),
    ("\u{0}", .invalidCharacter), ("\"abc", .unterminatedString), ("'abc\n", .unterminatedString),
    ("30x", .badNumber), ("1.5s", .badNumber), ("1234567890123456789", .badNumber),
  ])
  func errorIDs(_ text: String, _ id: DiagnosticID) {
    let source = SourceFile(id: FileID(0), path: "test.cfi", text: text)
    var lexer = Lexer(source)
    guard case .error(let problem) = lexer.next().kind else {
      Issue.record("'\(text)' should be an error token")
      return
    }
    #expect(problem.id == id)
  }

  @Test func invalidUTF8HasItsID() {
    var lexer = Lexer(SourceFile(id: FileID(0), path: "b", bytes: [0xFF]))
    guard case .error(let problem) = lexer.next().kind else {
      Issue.record("0xFF should be an error token")
      return
    }
    #expect(problem.id == .invalidUTF8)
  }

  /// `LineState` agrees with the lexer on where strings and comments end, escapes included.
  @Test(arguments: [
    // A raw string's only escape is \' (so \\ is no escape there): it ends with a quote no
    // backslash stands before.
    (#"print 'it\'s"#, "'" as Character?, false),
    (#"print 'it\'s'"#, nil, false),
    (#"print 'a\'"#, "'", false),
    (#"print 'a\' # no"#, "'", false),
    (#"print 'a\\' # still inside"#, "'", false),
    (#"print 'a\' # x' # yes"#, nil, true),
    (#"print "a\"b"#, "\"", false),
    (#"print "a\\" # c"#, nil, true),
    (#"print "a\"b" # c \"#, nil, true),
    ("print \"a\" \\", nil, false),
    ("print \"# not a comment", "\"", false),
    ("print 'x' # \"quoted\"", nil, true),
    ("print \"abc\n", nil, false),
    ("", nil, false),
  ] as [(String, Character?, Bool)])
  func lineStateAgreesWithTheLexer(_ text: String, _ quote: Character?, _ comment: Bool) {
    let state = LineState(atEndOf: text)
    #expect(state.openQuote == quote, "\(text)")
    #expect(state.inComment == comment, "\(text)")
  }

  /// Every byte value, alone and after a letter, lexes to the end without getting stuck.
  @Test func everyByteMakesProgress() {
    for byte in 0...255 {
      for prefix: [UInt8] in [[], [UInt8(ascii: "a")], [UInt8(ascii: "\"")], [UInt8(ascii: "1")]] {
        let source = SourceFile(id: FileID(0), path: "b", bytes: prefix + [UInt8(byte)])
        for pattern in [false, true] {
          var lexer = Lexer(source)
          var count = 0
          var last = -1
          while true {
            let token = pattern ? lexer.nextPattern() : lexer.next()
            #expect(token.range.end <= source.bytes.count && token.range.start >= 0)
            if token.kind == .endOfInput { break }
            #expect(token.range.start > last, "no progress on byte \(byte)")
            last = token.range.start
            count += 1
            if count > 10 { break }
          }
          #expect(count <= 3)
        }
      }
    }
  }
}
