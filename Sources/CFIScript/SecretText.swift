// Keeping password hashes out of text that is written down: the REPL's history file, the
// audit log's record of an entry and the runbooks `:save` writes. What looks like a hash is
// Runtime's to say (`Secret.hashRanges`, loose on purpose), and it becomes `Secret.redacted`,
// the one placeholder; this file adds what needs the language: hashes in string literals
// turned into variables for `:save`.

import CFISyntax
import Foundation
import Runtime

/// Finds and hides crypt hashes in CFIScript text.
public enum SecretText {
  /// The crypt hashes in `text` (unescaped), with their ranges, in order.
  private static func hashes(in text: String) -> [(range: Range<String.Index>, hash: String)] {
    Secret.hashRanges(in: text).map { ($0, String(text[$0]).replacingOccurrences(of: "\\", with: "")) }
  }

  /// `text` with every crypt hash replaced by `Secret.redacted`.
  public static func redactingHashes(_ text: String) -> String { Secret.redactingHashes(in: text) }

  /// `text` with every crypt hash in a string literal replaced by a variable (`hash_1`,
  /// `hash_2`, …; one per distinct hash, names the text does not use yet), so that a saved
  /// runbook names its secrets instead of carrying them: a string that is a hash becomes the
  /// variable, a hash inside a longer string becomes `${hash_1}` in a "…" string. Returns the
  /// new text and the variables it uses, in order; hashes outside strings (comments) are
  /// redacted.
  public static func hashesAsVariables(_ text: String) -> (text: String, variables: [String]) {
    let source = SourceFile(id: FileID(0), path: "", bytes: Array(text.utf8))
    var lexer = Lexer(source)
    var names: [String: String] = [:]
    var variables: [String] = []
    func variable(for hash: String) -> String {
      if let name = names[hash] { return name }
      var number = variables.count + 1
      while text.contains("hash_\(number)") { number += 1 }
      let name = "hash_\(number)"
      names[hash] = name
      variables.append(name)
      return name
    }
    var replacements: [(range: Range<Int>, text: String)] = []
    while true {
      let token = lexer.next()
      if token.kind == .endOfInput { break }
      let raw = token.kind == .rawString
      guard raw || token.kind == .string else { continue }
      let literal = source.text(token.range)
      guard literal.count >= 2 else { continue }
      let inner = raw ? literal.dropFirst().dropLast().replacingOccurrences(of: "\\'", with: "'") : String(literal.dropFirst().dropLast())
      let matches = hashes(in: inner)
      guard !matches.isEmpty else { continue }
      if matches.count == 1, matches[0].range == inner.startIndex..<inner.endIndex {
        replacements.append((token.range.start..<token.range.end, variable(for: matches[0].hash)))
        continue
      }
      // A "…" string: its text as it is (escapes and all) between the hashes.
      var rewritten = "\""
      var position = inner.startIndex
      for match in matches {
        let before = inner[position..<match.range.lowerBound]
        rewritten += raw ? ScriptPrinter.escaped(before) : String(before)
        rewritten += "${\(variable(for: match.hash))}"
        position = match.range.upperBound
      }
      rewritten += (raw ? ScriptPrinter.escaped(inner[position...]) : String(inner[position...])) + "\""
      replacements.append((token.range.start..<token.range.end, rewritten))
    }
    var bytes = source.bytes
    for replacement in replacements.reversed() {
      bytes.replaceSubrange(replacement.range, with: Array(replacement.text.utf8))
    }
    return (redactingHashes(String(decoding: bytes, as: UTF8.self)), variables)
  }
}
