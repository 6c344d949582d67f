// Where the end of a piece of text stands, without a full parse: inside a string (which
// quote) or a comment. The REPL asks this of a line being typed (completion, `\` at the end).

/// What the end of a text is inside of.
public struct LineState: Equatable, Sendable {
  /// The quote of the string the text ends inside, if any.
  public var openQuote: Character?
  /// Whether the text ends inside a `#` comment.
  public var inComment: Bool

  /// Scans `text` (`\` escapes only inside "…" strings; `#` outside strings starts a comment
  /// that runs to the end of the line).
  public init(atEndOf text: some StringProtocol) {
    openQuote = nil
    inComment = false
    var escaped = false
    for character in text {
      if inComment {
        if character == "\n" { inComment = false }
      } else if escaped {
        escaped = false
      } else if let quote = openQuote {
        if character == "\\" && quote == "\"" { escaped = true } else if character == quote || character == "\n" { openQuote = nil }
      } else if character == "\"" || character == "'" {
        openQuote = character
      } else if character == "#" {
        inComment = true
      }
    }
  }
}
