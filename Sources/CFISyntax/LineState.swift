// Where the end of a piece of text stands, without a full parse: inside a string (which
// quote) or a comment. The REPL asks this of a line being typed (completion, `\` at the end).
// It reads the text with the lexer itself, so that what counts as the end of a string
// (`\'` in a raw string, `\"` in a "…" string) has one definition.

/// What the end of a text is inside of.
public struct LineState: Equatable, Sendable {
  /// The quote of the string the text ends inside, if any.
  public var openQuote: Character?
  /// Whether the text ends inside a `#` comment.
  public var inComment: Bool

  /// Lexes `text` to its end: it ends inside a string when its last token is a string the
  /// end of input cut short, and inside a comment when the blanks after its last token hold
  /// a `#` (a newline would have been a token of its own).
  public init(atEndOf text: some StringProtocol) {
    let source = SourceFile(id: FileID(0), path: "", bytes: Array(text.utf8))
    var lexer = Lexer(source)
    var last: Token?
    while true {
      let token = lexer.next()
      if token.kind == .endOfInput { break }
      last = token
    }
    openQuote = nil
    if let last, case .error(let problem) = last.kind, problem.id == .unterminatedString,
      last.range.end == source.bytes.count
    {
      openQuote = Character(UnicodeScalar(source.bytes[last.range.start]))
    }
    let trailing = source.bytes[(last?.range.end ?? 0)...]
    inComment = openQuote == nil && trailing.contains(UInt8(ascii: "#"))
  }
}
