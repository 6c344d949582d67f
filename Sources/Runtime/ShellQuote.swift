import Foundation

// Quoting for the remote shell. ssh joins its arguments with spaces and hands the result to
// the remote user's shell, so every word we send must be quoted for `sh`. rsync's `-e` string
// is split by rsync itself, with other rules: it has its own quoting.

/// Shell quoting for POSIX `sh`, and for rsync's `-e`.
public enum ShellQuote {
  /// `word` as one `sh` word: unchanged when it is plainly safe, else in single quotes
  /// (with `'` written as `'\''`).
  public static func quote(_ word: String) -> String {
    isSafe(word) ? word : quoted(word, quote: "'\\''")
  }

  /// Words quoted and joined into one command line.
  public static func join(_ words: [String]) -> String {
    words.map(quote).joined(separator: " ")
  }

  /// Words joined into the remote-shell command of rsync's `-e`. rsync splits that string
  /// itself, not with a shell: only spaces separate words, single and double quotes group,
  /// a quote inside quotes of its kind is written twice, and a backslash is an ordinary
  /// character (so sh's `'\''` would break it).
  public static func rsyncShell(_ words: [String]) -> String {
    words.map { isSafe($0) ? $0 : quoted($0, quote: "''") }.joined(separator: " ")
  }

  /// `word` in single quotes, each `'` in it written as `quote`. Scalar by scalar, never by
  /// Character: a `'` followed by a combining mark is one Character (`'\u{301}`), which a
  /// replacement of the Character `'` leaves alone, and that `'` would end the quotes.
  private static func quoted(_ word: String, quote: String) -> String {
    "'" + word.replacingScalars(["'": quote]) + "'"
  }

  /// Whether `word` needs no quoting: it is not empty and has only characters that neither
  /// a shell nor rsync's splitter treats specially.
  private static func isSafe(_ word: String) -> Bool {
    !word.isEmpty
      && word.utf8.allSatisfy { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
          UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
          UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "@"):
          true
        default: false
        }
      }
  }
}
