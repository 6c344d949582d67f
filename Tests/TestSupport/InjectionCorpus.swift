// Strings made to break quoting (quotes, backslashes, `$`, backticks, `;&|<>`, globs, `~#!`,
// newlines, tabs, a leading `-`, multi-byte UTF-8), the runbook that sends them to hosts
// through `run` and as `script` arguments, and the decoding of what the hosts print back.
// The unit tests run it on LocalTransport (the bulk), the fleet tests over real ssh.

import CFISyntax
import Foundation

/// SplitMix64: a seeded generator, so that a failing case can be replayed from its seed.
public struct SeededRandom: RandomNumberGenerator {
  private var state: UInt64

  public init(seed: UInt64) { state = seed }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// A test's seed: `CFI_TEST_SEED` when set (to replay a failure), else a fresh one. The test
  /// prints it.
  public static func testSeed() -> UInt64 {
    if let text = ProcessInfo.processInfo.environment["CFI_TEST_SEED"], let seed = UInt64(text) { return seed }
    return UInt64.random(in: 0...UInt64.max)
  }
}

public enum InjectionCorpus {
  /// What the strings are made of: every character a shell, ssh's command line, rsync's or
  /// CFIScript's own quoting treats specially, and some that are only many bytes long.
  static let pieces: [String] = [
    "'", "\"", "\\", "$", "`", ";", "&", "|", "<", ">", "(", ")", "{", "}", "*", "?", "[", "]", "~", "#", "!",
    "\n", "\t", " ", "  ", "-", "--", "=", "%", "%s", "%b", "\\n", "\\0", "$(id)", "`id`", "${HOME}", "$1", "$@",
    "'\\''", "\\'", "\"$\"", "a", "Z", "0", "x y", "é", "ß", "日本", "🙂", "\u{301}", "\u{2028}",
    // Shaped like a crypt hash: the script holding it travels on stdin, not the command line.
    "$6$cfiSalt$abcdefgh",
  ]

  /// `count` strings from `seed`: 0 to 12 pieces each, a fifth of them starting with `-`.
  public static func strings(count: Int, seed: UInt64) -> [String] {
    var random = SeededRandom(seed: seed)
    return (0..<count).map { _ in
      var text = Int.random(in: 0..<5, using: &random) == 0 ? "-" : ""
      for _ in 0..<Int.random(in: 0...12, using: &random) { text += pieces.randomElement(using: &random)! }
      return text
    }
  }

  /// The store file (`group/injection-args.sh`) `runbook` runs: prints each argument with
  /// `printf %s`, each followed by a NUL (which no argument can hold).
  public static let scriptName = "injection-args.sh"
  public static let scriptBody = "#!/bin/sh\nfor a; do printf %s \"$a\"; printf '\\0'; done\n"

  /// A runbook for every host of `on all`: `strings` in batches of `batch`, each batch through
  /// one `run` (`printf %s WORD; printf '\0'; …`, each WORD a variable holding the string
  /// quoted for sh) and one `script` (the strings themselves as variables, each an argument).
  /// Every string reaches the runbook as a CFIScript literal written by `ScriptPrinter`.
  public static func runbook(_ strings: [String], batch: Int) -> String {
    var lines: [String] = []
    for (index, string) in strings.enumerated() {
      lines.append("let q\(index) = \(ScriptPrinter.quoted(shellWord(string)))")
      lines.append("let s\(index) = \(ScriptPrinter.quoted(string))")
    }
    lines.append("on all <")
    for start in stride(from: 0, to: strings.count, by: batch) {
      let indices = start..<min(start + batch, strings.count)
      lines.append("  run \"" + indices.map { "printf %s $q\($0); printf '\\\\0'" }.joined(separator: "; ") + "\"")
      lines.append("  script \"\(scriptName)\" " + indices.map { "s\($0)" }.joined(separator: " "))
    }
    lines.append(">")
    return lines.joined(separator: "\n") + "\n"
  }

  /// `text` as one sh word, written here rather than taken from the product: the test must not
  /// share the quoting it checks. Scalar by scalar: a `'` followed by a combining mark is one
  /// Character to Swift, and a replacement by Characters would miss it.
  public static func shellWord(_ text: String) -> String {
    var word = "'"
    for scalar in text.unicodeScalars {
      if scalar == "'" { word += "'\\''" } else { word.unicodeScalars.append(scalar) }
    }
    return word + "'"
  }

  /// The strings a host printed: the output of every step of one kind, in order, cut at NULs.
  public static func decode(_ outputs: [String]) -> [String] {
    outputs.flatMap { output -> [String] in
      var parts = output.utf8.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
      if parts.last == "" { parts.removeLast() }
      return parts
    }
  }

  /// The first `limit` strings that did not come back as sent, as Swift literals, for a
  /// failure message (empty when all did).
  public static func mismatches(sent: [String], received: [String], limit: Int = 5) -> String {
    guard sent != received else { return "" }
    var lines = ["sent \(sent.count) strings, received \(received.count)"]
    for (index, pair) in zip(sent, received).enumerated() where pair.0 != pair.1 {
      lines.append("#\(index): sent \(pair.0.debugDescription), received \(pair.1.debugDescription)")
      if lines.count > limit { break }
    }
    return lines.joined(separator: "\n")
  }
}
