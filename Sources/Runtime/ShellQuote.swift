import Foundation

// Quoting for the remote shell. ssh joins its arguments with spaces and hands the result to
// the remote user's shell, so every word we send must be quoted for `sh`.

/// Shell quoting for POSIX `sh`.
public enum ShellQuote {
  /// `word` as one `sh` word: unchanged when it is plainly safe, else in single quotes
  /// (with `'` written as `'\''`).
  public static func quote(_ word: String) -> String {
    let safe = !word.isEmpty && word.utf8.allSatisfy { byte in
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
        UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "@"):
        true
      default: false
      }
    }
    return safe ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }

  /// Words quoted and joined into one command line.
  public static func join(_ words: [String]) -> String {
    words.map(quote).joined(separator: " ")
  }
}
