// Secret: a string that must never be printed, logged or put on a command line.

/// A secret value (a password hash). Its `description` is always redacted, so string
/// interpolation, `print` and event encoders cannot leak it by accident; code that
/// really needs the value reads `revealed` and is responsible for sending it on stdin only.
public struct Secret: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
  /// What every rendering of a secret shows instead of the value.
  public static let redacted = "<redacted>"

  /// The secret itself. Only a transport that writes it to a remote stdin may read this.
  public let revealed: String

  /// Wraps a secret value.
  public init(_ value: String) { revealed = value }

  public var description: String { Secret.redacted }
  public var debugDescription: String { Secret.redacted }
}
