// The lexer: bytes to tokens, on demand. Normal mode for statements and expressions;
// pattern mode (asked for by the parser) for host patterns and group names, whose
// characters (`-`, `[`, `.`) mean something else in expressions.

/// Turns source bytes into tokens. It never fails: bad input becomes an `.error` token whose
/// diagnostic ID and message the parser reports. Repositionable, so the parser can re-read a stretch in
/// pattern mode.
public struct Lexer {
  private let bytes: [UInt8]
  private let file: FileID
  /// The offset of the next byte to read.
  public var position: Int

  /// A lexer over a source file.
  public init(_ source: SourceFile) {
    bytes = source.bytes
    file = source.id
    position = 0
  }

  /// The longest duration or integer literal we accept, in digits; why: anything longer
  /// would overflow `Int` and is surely a typo.
  static let maxDigits = 18

  private func peek(_ ahead: Int = 0) -> UInt8? {
    let index = position + ahead
    return index < bytes.count ? bytes[index] : nil
  }

  private func token(_ kind: Token.Kind, from start: Int) -> Token {
    Token(kind, SourceRange(file: file, start: start, end: position))
  }

  /// Skips spaces, tabs, carriage returns, a backslash-newline (line continuation) and comments.
  private mutating func skipTrivia() {
    while let byte = peek() {
      switch byte {
      case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
        position += 1
      case UInt8(ascii: "\\") where peek(1) == UInt8(ascii: "\n"):
        position += 2
      case UInt8(ascii: "\\") where peek(1) == UInt8(ascii: "\r") && peek(2) == UInt8(ascii: "\n"):
        position += 3
      case UInt8(ascii: "#"):
        while let next = peek(), next != UInt8(ascii: "\n") { position += 1 }
      default:
        return
      }
    }
  }

  /// Reads the next token in normal mode.
  public mutating func next() -> Token {
    skipTrivia()
    let start = position
    guard let byte = peek() else { return token(.endOfInput, from: start) }
    position += 1
    switch byte {
    case UInt8(ascii: "\n"): return token(.newline, from: start)
    case UInt8(ascii: ";"): return token(.semicolon, from: start)
    case UInt8(ascii: "<"): return token(.blockOpen, from: start)
    case UInt8(ascii: ">"): return token(.blockClose, from: start)
    case UInt8(ascii: "["): return token(.bracketOpen, from: start)
    case UInt8(ascii: "]"): return token(.bracketClose, from: start)
    case UInt8(ascii: "("): return token(.parenOpen, from: start)
    case UInt8(ascii: ")"): return token(.parenClose, from: start)
    case UInt8(ascii: ","): return token(.comma, from: start)
    case UInt8(ascii: "."): return token(.dot, from: start)
    case UInt8(ascii: "="):
      if peek() == UInt8(ascii: "=") {
        position += 1
        return token(.equal, from: start)
      }
      return token(.assign, from: start)
    case UInt8(ascii: "!"):
      if peek() == UInt8(ascii: "=") {
        position += 1
        return token(.notEqual, from: start)
      }
      return token(.error(.invalidCharacter, "unexpected '!'; write 'not' for negation or '!=' for inequality"), from: start)
    case UInt8(ascii: "\""): return string(from: start)
    case UInt8(ascii: "'"): return rawString(from: start)
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return number(from: start)
    case UInt8(ascii: "$"):
      while let next = peek(), isNameByte(next) { position += 1 }
      return token(.error(.invalidCharacter, "unexpected '$' outside a string; refer to a variable by its bare name"), from: start)
    case _ where isNameStart(byte):
      while let next = peek(), isNameByte(next) { position += 1 }
      let text = String(decoding: bytes[start..<position], as: UTF8.self)
      if let keyword = Keyword(rawValue: text) { return token(.keyword(keyword), from: start) }
      return token(.identifier, from: start)
    case UInt8(ascii: "{"), UInt8(ascii: "}"):
      // The habit of most languages: said where a block was meant.
      return token(.error(.invalidCharacter, "unexpected '\(UnicodeScalar(byte))'; blocks are written < … >"), from: start)
    default:
      return invalidCharacter(byte, from: start)
    }
  }

  /// Reads a bad byte (or UTF-8 sequence) as one error token.
  private mutating func invalidCharacter(_ byte: UInt8, from start: Int) -> Token {
    if byte < 0x80 {
      let shown = byte >= 0x20 && byte < 0x7f ? String(UnicodeScalar(byte)) : "\\x" + hex(byte)
      return token(.error(.invalidCharacter, "unexpected character '\(shown)'"), from: start)
    }
    position = start
    if let scalar = decodeScalar() {
      return token(.error(.invalidCharacter, "unexpected character '\(scalar)'"), from: start)
    }
    position = start + 1
    return token(.error(.invalidUTF8, "invalid UTF-8 byte 0x\(hex(byte))"), from: start)
  }

  /// Decodes one UTF-8 scalar at `position`, advancing past it; nil (without advancing) if invalid.
  private mutating func decodeScalar() -> Unicode.Scalar? {
    var iterator = bytes[position...].makeIterator()
    var decoder = UTF8()
    if case .scalarValue(let scalar) = decoder.decode(&iterator) {
      position += UTF8.width(scalar)
      return scalar
    }
    return nil
  }

  /// Reads a `"…"` string; the opening quote has been read. Strings end on their line.
  private mutating func string(from start: Int) -> Token {
    while let byte = peek() {
      switch byte {
      case UInt8(ascii: "\""):
        position += 1
        return token(.string, from: start)
      case UInt8(ascii: "\\") where peek(1) != nil && peek(1) != UInt8(ascii: "\n"):
        position += 2
      case UInt8(ascii: "\n"):
        return token(.error(.unterminatedString, "unterminated string; strings end on their line (write '\\n' for a newline)"), from: start)
      default:
        position += 1
      }
    }
    return token(.error(.unterminatedString, "unterminated string"), from: start)
  }

  /// Reads a `'…'` raw string; the opening quote has been read.
  private mutating func rawString(from start: Int) -> Token {
    while let byte = peek() {
      switch byte {
      case UInt8(ascii: "'"):
        position += 1
        return token(.rawString, from: start)
      case UInt8(ascii: "\\") where peek(1) == UInt8(ascii: "'"):
        position += 2
      case UInt8(ascii: "\n"):
        return token(.error(.unterminatedString, "unterminated string; strings end on their line"), from: start)
      default:
        position += 1
      }
    }
    return token(.error(.unterminatedString, "unterminated string"), from: start)
  }

  /// Reads an integer, a duration (`30s`) or a percentage (`10%`); the first digit has been read.
  private mutating func number(from start: Int) -> Token {
    while let byte = peek(), isDigit(byte) { position += 1 }
    if peek() == UInt8(ascii: "."), let next = peek(1), isDigit(next) {
      // `1.5s`: read the whole literal, to point at it and say why.
      position += 1
      while let byte = peek(), isNameByte(byte) || byte == UInt8(ascii: "%") { position += 1 }
      let text = String(decoding: bytes[start..<position], as: UTF8.self)
      let isDuration = ["ms", "s", "m", "h", "d"].contains { text.hasSuffix($0) }
      return token(
        .error(.badNumber, "invalid number '\(text)'; numbers have no fractions" + (isDuration ? " (write the duration in a smaller unit, such as ms)" : "")),
        from: start)
    }
    let digitsEnd = position
    if peek() == UInt8(ascii: "%") {
      position += 1
      return digitsEnd - start > Lexer.maxDigits
        ? token(.error(.badNumber, "number is too large"), from: start) : token(.percent, from: start)
    }
    var suffixEnd = position
    while suffixEnd < bytes.count, isNameByte(bytes[suffixEnd]) { suffixEnd += 1 }
    let suffix = String(decoding: bytes[digitsEnd..<suffixEnd], as: UTF8.self)
    position = suffixEnd
    if digitsEnd - start > Lexer.maxDigits { return token(.error(.badNumber, "number is too large"), from: start) }
    switch suffix {
    case "": return token(.integer, from: start)
    case "ms", "s", "m", "h", "d": return token(.duration, from: start)
    default:
      let text = String(decoding: bytes[start..<suffixEnd], as: UTF8.self)
      return token(.error(.badNumber, "invalid number '\(text)'; durations end in ms, s, m, h or d"), from: start)
    }
  }

  /// Reads the next token in pattern mode: a host pattern (`pc[01-05,07]`, `rack[1-2]-n[01-04]`,
  /// `web1.example.com`, `@lab`) up to a space, `,` (outside brackets), `;`, `<`, `>` or a newline.
  /// Checking what is inside is the caller's business; this only finds the extent.
  /// Any other token (a string, a newline, …) is read as in normal mode.
  public mutating func nextPattern() -> Token {
    skipTrivia()
    let start = position
    guard let first = peek(), isPatternByte(first) || first == UInt8(ascii: "[") else { return next() }
    var depth = 0
    while let byte = peek() {
      if byte == UInt8(ascii: "[") {
        depth += 1
      } else if byte == UInt8(ascii: "]") {
        depth = max(0, depth - 1)
      } else if byte == UInt8(ascii: ",") && depth > 0 {
        // A comma inside brackets separates ranges.
      } else if !isPatternByte(byte) {
        break
      }
      position += 1
    }
    return token(.hostPattern, from: start)
  }

  /// Whether a pattern token's text ends inside brackets (`pc[1-3`), so that a `,` right
  /// after it would continue it rather than start the next pattern: the printer then writes
  /// a space first. The bracket count is `nextPattern`'s.
  public static func patternEndsInsideBrackets(_ text: String) -> Bool {
    var depth = 0
    for byte in text.utf8 {
      if byte == UInt8(ascii: "[") { depth += 1 } else if byte == UInt8(ascii: "]") { depth = max(0, depth - 1) }
    }
    return depth > 0
  }

  private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
  private func isNameStart(_ byte: UInt8) -> Bool {
    (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") || byte == UInt8(ascii: "_")
  }
  private func isNameByte(_ byte: UInt8) -> Bool { isNameStart(byte) || isDigit(byte) }
  /// Bytes that may appear in a host pattern outside brackets (validation comes later,
  /// so this is generous: anything that is not a separator).
  private func isPatternByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"), UInt8(ascii: ","),
      UInt8(ascii: ";"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "#"), UInt8(ascii: "\""),
      UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "="):
      false
    default: true
    }
  }
}

/// Two hex digits for a byte.
func hex(_ byte: UInt8) -> String {
  let digits = Array("0123456789ABCDEF")
  return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
}
