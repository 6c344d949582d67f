// Validating inputs before anything runs: crypt hashes and Debian package names.
// (chpasswd -e accepts any string and would lock the account; apt takes options too.)

/// Crypt(5) hashes that `password` accepts.
public enum CryptHash {
  /// What to tell the operator when a hash is refused.
  public static let invalidMessage =
    "not a valid crypt hash (expected $y$, $gy$, $7$, $2b$, $6$ or $5$; make one with 'mkpasswd -m yescrypt')"

  /// Whether `hash` is a crypt hash of an accepted method (the shapes of crypt(5)).
  public static func isValid(_ hash: String) -> Bool {
    let fields = hash.split(separator: "$", omittingEmptySubsequences: false).map(String.init)
    // "$id$…": an empty first field, the method, then its fields.
    guard fields.count >= 4, fields[0].isEmpty, let last = fields.last else { return false }
    let middle = Array(fields[2..<(fields.count - 1)])
    switch (fields[1], middle.count) {
    case ("y", 2), ("gy", 2):  // $y$params$salt$hash
      return isBase64(middle[0], 1...) && isBase64(middle[1], 0...86) && isBase64(last, 43...43)
    case ("7", 1):  // $7$params+salt$hash
      return isBase64(middle[0], 11...97) && isBase64(last, 43...43)
    case ("2a", 1), ("2b", 1), ("2y", 1):  // $2b$cost$salt+hash
      return middle[0].count == 2 && middle[0].allSatisfy(\.isASCII) && middle[0].allSatisfy(\.isNumber)
        && isBase64(last, 53...53)
    case ("6", 1), ("6", 2), ("5", 1), ("5", 2):  // $6$[rounds=N$]salt$hash
      if middle.count == 2 {
        let rounds = middle[0]
        guard rounds.hasPrefix("rounds="), let count = Int(rounds.dropFirst(7)), count > 0 else { return false }
      }
      let salt = middle[middle.count - 1]
      let length = fields[1] == "6" ? 86 : 43
      return (1...16).contains(salt.count) && !salt.contains(":") && !salt.contains("\n") && isBase64(last, length...length)
    default:
      return false
    }
  }

  /// Whether `text` is in crypt's base-64 alphabet (`./0-9A-Za-z`) with a length in `lengths`.
  private static func isBase64(_ text: String, _ lengths: some RangeExpression<Int>) -> Bool {
    lengths.contains(text.utf8.count)
      && text.utf8.allSatisfy { byte in
        byte == UInt8(ascii: ".") || byte == UInt8(ascii: "/") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
          || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
      }
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
