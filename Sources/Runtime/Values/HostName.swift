// HostName: a host's name as cfi-sh uses it in patterns, output, ssh's HostKeyAlias and
// control socket names. Parsed once; a value of this type is safe in an argv and a path.

/// A host name: letters, digits, `-`, `.`, `_`, not starting with `-` or `.` (the characters
/// host patterns take literally), at most 253 bytes.
public struct HostName: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
  public let rawValue: String

  /// `text` as a host name; nil if it is not one.
  public init?(_ text: String) {
    guard Self.isValid(text) else { return nil }
    rawValue = text
  }

  /// Whether `text` is a host name (the one check; see the type's documentation).
  public static func isValid(_ text: String) -> Bool {
    guard let first = text.utf8.first, text.utf8.count <= 253, first != UInt8(ascii: "-"), first != UInt8(ascii: ".")
    else { return false }
    return text.utf8.allSatisfy(isNameByte)
  }

  /// Bytes a host name may contain.
  static func isNameByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
      UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
      true
    default: false
    }
  }

  public var description: String { rawValue }
  public static func < (lhs: HostName, rhs: HostName) -> Bool { lhs.rawValue < rhs.rawValue }

  public init(from decoder: any Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let name = HostName(text) else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a host name: \(text)"))
    }
    self = name
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(rawValue)
  }
}
