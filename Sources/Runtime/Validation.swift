// Validating inputs before anything runs: crypt hashes and Debian package names.
// (chpasswd -e accepts any string and would lock the account; apt takes options too.)

/// Crypt(5) hashes that `password` accepts.
public enum CryptHash {
  /// What to tell the operator when a hash is refused.
  public static let invalidMessage =
    "not a valid crypt hash (expected $y$, $gy$, $7$, $2b$, $6$ or $5$; make one with 'mkpasswd -m yescrypt')"

  private static let alphabet = "[./A-Za-z0-9]"
  /// One regular expression per method, from crypt(5).
  private static let patterns: [String] = [
    ("^\\$y\\$\(alphabet)+\\$\(alphabet){0,86}\\$\(alphabet){43}$"),
    ("^\\$gy\\$\(alphabet)+\\$\(alphabet){0,86}\\$\(alphabet){43}$"),
    ("^\\$7\\$\(alphabet){11,97}\\$\(alphabet){43}$"),
    ("^\\$2[aby]\\$[0-9]{2}\\$\(alphabet){53}$"),
    ("^\\$6\\$(?:rounds=[1-9][0-9]*\\$)?[^$:\\n]{1,16}\\$\(alphabet){86}$"),
    ("^\\$5\\$(?:rounds=[1-9][0-9]*\\$)?[^$:\\n]{1,16}\\$\(alphabet){43}$"),
  ]

  /// Whether `hash` is a crypt hash of an accepted method.
  public static func isValid(_ hash: String) -> Bool {
    // Compiled per call: Regex is not Sendable, and passwords are set rarely.
    patterns.contains { pattern in (try? Regex(pattern)).map { hash.wholeMatch(of: $0) != nil } ?? false }
  }
}

/// Debian package names (Debian Policy §5.6.1), optionally with `:arch`.
public enum PackageName {
  /// Whether `name` is a valid package name: lowercase letters, digits, `+`, `-`, `.`,
  /// at least two characters, starting with a letter or digit (so never an option).
  public static func isValid(_ name: String) -> Bool {
    let parts = name.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count <= 2, let base = parts.first, base.utf8.count >= 2 else { return false }
    func isLowerAlnum(_ byte: UInt8) -> Bool {
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
    guard isLowerAlnum(base.utf8.first!),
      base.utf8.allSatisfy({ isLowerAlnum($0) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") })
    else { return false }
    if parts.count == 2 {
      return !parts[1].isEmpty && parts[1].utf8.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }
    return true
  }
}
