// GroupName: the one definition of what a group may be called. A group name is a store
// directory (`STORE/<group>/`), a TXT value a client announces (`group=NAME`), a dsh group file
// name and a name in runbooks; all of them accept exactly what `GroupName` accepts, so a name a
// client may announce is one the server will use (and not silently turn into `unknown`).

/// A valid group name: 1 to 64 ASCII letters, digits, `-` and `_`, not starting with `-` (it
/// would read as an option on a command line, and as a flag to the tools that get it).
public struct GroupName: Hashable, Comparable, Sendable, CustomStringConvertible {
  /// The name as written.
  public let rawValue: String

  /// The longest name accepted, in bytes.
  public static let maximumLength = 64

  /// The rule, for messages.
  public static let rule = "1 to \(maximumLength) letters, digits, '-' or '_', not starting with '-'"

  /// The group a host falls into when it names none, or one the server does not know.
  public static let unknown = GroupName(validated: "unknown")

  /// Nil unless `text` is a valid group name.
  public init?(_ text: some StringProtocol) {
    guard GroupName.isValid(text) else { return nil }
    rawValue = String(text)
  }

  /// Parses a name from the command line or a file, with an error saying what is wrong.
  public init(parsing text: some StringProtocol) throws(GroupNameError) {
    guard let name = GroupName(text) else { throw GroupNameError(text: String(text)) }
    self = name
  }

  private init(validated: String) { rawValue = validated }

  /// Whether `text` is a valid group name (for filtering directory listings and the like,
  /// where the name is not kept).
  public static func isValid(_ text: some StringProtocol) -> Bool {
    let bytes = text.utf8
    guard let first = bytes.first, bytes.count <= maximumLength, first != UInt8(ascii: "-") else { return false }
    return bytes.allSatisfy(isNameByte)
  }

  /// The bytes a group name is made of.
  public static func isNameByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
      UInt8(ascii: "-"), UInt8(ascii: "_"):
      true
    default: false
    }
  }

  public var description: String { rawValue }

  public static func < (lhs: GroupName, rhs: GroupName) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Stored as its text; decoding refuses an invalid name (a hand-edited file is input too).
extension GroupName: Codable {
  public init(from decoder: any Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let name = GroupName(text) else {
      throw DecodingError.dataCorrupted(
        DecodingError.Context(codingPath: decoder.codingPath, debugDescription: GroupNameError(text: text).description))
    }
    self = name
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(rawValue)
  }
}

/// A text that is not a group name.
public struct GroupNameError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The refused text, as given.
  public var text: String
  public init(text: String) { self.text = text }
  public var description: String { "'\(displayable(text))' is not a valid group name (\(GroupName.rule))" }
}
