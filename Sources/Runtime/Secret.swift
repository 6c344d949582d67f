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

extension Secret {
  /// `$` + a crypt method id + `$` + the rest of the hash (8 characters at least: real hashes
  /// are far longer), up to a quote, blank or backslash; each `$` may be escaped as `\$` (as
  /// in a "…" string of a runbook). Never a quote or another escape: what is hidden in JSON
  /// or CFIScript text leaves it well-formed. Loose on purpose: a hash that `password` would
  /// refuse (a typo, a legacy method) is still a secret, and a false positive only hides a
  /// little too much.
  nonisolated(unsafe) private static let hashShape =
    /\\?\$(?:1|2[abxy]|5|6|7|y|gy|sha1|md5)\\?\$(?:[^\s'"\\]|\\\$){8,}/

  /// Where `text` holds something shaped like a crypt hash, in order.
  public static func hashRanges(in text: String) -> [Range<String.Index>] {
    text.matches(of: hashShape).map(\.range)
  }

  /// `text` with everything shaped like a crypt hash replaced by `Secret.redacted`.
  public static func redactingHashes(in text: String) -> String {
    text.replacing(hashShape, with: redacted)
  }
}
