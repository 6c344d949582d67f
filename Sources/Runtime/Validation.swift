// Validating inputs before anything runs: crypt hashes, Debian package names, unit names.
// (chpasswd -e accepts any string and would lock the account; apt takes options too.)

/// Crypt(5) hashes that `password` accepts.
public enum CryptHash {
  /// What to tell the operator when a hash is refused.
  public static let invalidMessage =
    "not a valid crypt hash (expected $y$, $gy$, $7$, $2b$, $6$ or $5$; make one with 'mkpasswd -m yescrypt')"

  /// Whether `hash` is a crypt hash of an accepted method (the shapes of crypt(5)).
  public static func isValid(_ hash: String) -> Bool {
    // On the UTF-8 bytes, no allocation: the resolver checks every literal hash of a runbook.
    var hash = hash
    return hash.withUTF8 { bytes in
      withUnsafeTemporaryAllocation(of: Range<Int>.self, capacity: maxFields) { fields in
        isValid(bytes, fields: fields)
      }
    }
  }

  /// The most `$`-separated fields an accepted hash has (`$6$rounds=N$salt$hash`: 5).
  private static let maxFields = 6

  private static func isValid(_ bytes: UnsafeBufferPointer<UInt8>, fields: UnsafeMutableBufferPointer<Range<Int>>) -> Bool {
    // "$id$…": an empty first field, the method, then its fields.
    var count = 0
    var start = 0
    for index in 0...bytes.count where index == bytes.count || bytes[index] == UInt8(ascii: "$") {
      guard count < maxFields else { return false }
      fields[count] = start..<index
      count += 1
      start = index + 1
    }
    guard count >= 4, fields[0].isEmpty else { return false }
    func field(_ index: Int) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: bytes[fields[index]]) }
    let method = field(1)
    let middle = count - 3
    let last = field(count - 1)
    func isMethod(_ name: StaticString) -> Bool {
      method.count == name.utf8CodeUnitCount && zip(method, UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)).allSatisfy { $0 == $1 }
    }
    if (isMethod("y") || isMethod("gy")) && middle == 2 {  // $y$params$salt$hash
      return isBase64(field(2), 1...) && isBase64(field(3), 0...86) && isBase64(last, 43...43)
    }
    if isMethod("7") && middle == 1 {  // $7$params+salt$hash
      return isBase64(field(2), 11...97) && isBase64(last, 43...43)
    }
    if (isMethod("2a") || isMethod("2b") || isMethod("2y")) && middle == 1 {  // $2b$cost$salt+hash
      let cost = field(2)
      return cost.count == 2 && cost.allSatisfy(isDigit) && isBase64(last, 53...53)
    }
    if (isMethod("6") || isMethod("5")) && (middle == 1 || middle == 2) {  // $6$[rounds=N$]salt$hash
      if middle == 2 && !isRounds(field(2)) { return false }
      let salt = field(count - 2)
      let length = isMethod("6") ? 86 : 43
      return (1...16).contains(characterCount(salt)) && !salt.contains(UInt8(ascii: ":"))
        && !salt.contains(UInt8(ascii: "\n")) && isBase64(last, length...length)
    }
    return false
  }

  private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

  /// `rounds=N` with N a positive integer (an optional `+`, as Swift's `Int(_:)` reads it).
  private static func isRounds(_ text: UnsafeBufferPointer<UInt8>) -> Bool {
    let prefix = Array("rounds=".utf8)
    guard text.count > prefix.count, text.prefix(prefix.count).elementsEqual(prefix) else { return false }
    var digits = text.dropFirst(prefix.count)
    if digits.first == UInt8(ascii: "+") { digits = digits.dropFirst() }
    guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return false }
    var value = 0
    for digit in digits {
      let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (sum, overflow2) = times.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
      if overflow1 || overflow2 { return false }
      value = sum
    }
    return value > 0
  }

  /// Characters (as Swift counts them) in `bytes`: its length when it is ASCII.
  private static func characterCount(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
    bytes.allSatisfy { $0 < 0x80 } ? bytes.count : String(decoding: bytes, as: UTF8.self).count
  }

  /// Whether `text` is in crypt's base-64 alphabet (`./0-9A-Za-z`) with a length in `lengths`.
  private static func isBase64(_ text: UnsafeBufferPointer<UInt8>, _ lengths: some RangeExpression<Int>) -> Bool {
    lengths.contains(text.count)
      && text.allSatisfy { byte in
        byte == UInt8(ascii: ".") || byte == UInt8(ascii: "/") || isDigit(byte)
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

/// systemd unit names that `service` accepts.
public enum UnitName {
  /// What to tell the operator when a name is refused.
  public static let invalidMessage =
    "not a valid systemd unit name (letters, digits and ':', '_', '.', '@', '-', '\\'; not starting with '-' or '.')"

  /// Whether `name` is a unit name as systemd writes them (`cups`, `cups.service`,
  /// `getty@tty1.service`, `dev-sda1.device`, escapes as `\x2d`): at most 255 bytes of
  /// ASCII letters, digits and `:_.@-\`, not starting with `-` (so never an option) or `.`.
  public static func isValid(_ name: String) -> Bool {
    guard let first = name.utf8.first, first != UInt8(ascii: "-"), first != UInt8(ascii: "."), name.utf8.count <= 255
    else { return false }
    return name.utf8.allSatisfy { byte in
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || ":_.@-\\".utf8.contains(byte)
    }
  }
}
