// Keeping password hashes out of text that is written down: the REPL's history file and the
// runbooks `:save` writes. A crypt hash is recognised by its shape (`$id$…` with a known
// method id), loosely on purpose: a false positive only redacts a little too much.

/// Finds and hides crypt hashes in CFIScript text.
public enum SecretText {
  /// What a redacted hash becomes.
  public static let redacted = "<redacted>"

  /// `$` + a crypt method id + `$` + the rest of the hash (8 characters at least: real
  /// hashes are far longer), up to a quote or blank.
  nonisolated(unsafe) private static let hash = /\$(?:1|2[abxy]|5|6|7|y|gy|sha1|md5)\$[^\s'"]{8,}/

  /// `text` with every crypt hash replaced by `<redacted>`.
  public static func redactingHashes(_ text: String) -> String {
    text.replacing(hash, with: redacted)
  }

  /// `text` with every string literal that is a hash replaced by a variable (`hash_1`,
  /// `hash_2`, … counting on from `start`), so that a saved runbook names its secrets instead
  /// of carrying them. Returns the new text and the variables it uses, in order; hashes
  /// outside string literals (in comments) are redacted.
  public static func hashesAsVariables(_ text: String, start: Int = 1) -> (text: String, variables: [String]) {
    let source = SourceFile(id: FileID(0), path: "", bytes: Array(text.utf8))
    var lexer = Lexer(source)
    var replacements: [(range: Range<Int>, name: String)] = []
    while true {
      let token = lexer.next()
      if token.kind == .endOfInput { break }
      guard token.kind == .string || token.kind == .rawString else { continue }
      let inner = source.text(token.range).dropFirst().dropLast()
      guard inner.wholeMatch(of: hash) != nil else { continue }
      replacements.append((token.range.start..<token.range.end, "hash_\(start + replacements.count)"))
    }
    var bytes = source.bytes
    for replacement in replacements.reversed() {
      bytes.replaceSubrange(replacement.range, with: Array(replacement.name.utf8))
    }
    return (redactingHashes(String(decoding: bytes, as: UTF8.self)), replacements.map(\.name))
  }
}
