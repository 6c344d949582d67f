// HostAddress: where ssh connects, a host name or an IP literal. Parsed once; it never
// starts with `-`, so it cannot turn into an option of ssh or rsync.

import Foundation

/// A host name (see `HostName`) or an IPv4 or IPv6 literal (an IPv6 one may carry a zone, `%eth0`).
public struct HostAddress: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
  public let rawValue: String
  /// Whether it is an IPv6 literal (rsync wants those in brackets).
  public let isIPv6: Bool

  /// `text` as an address; nil if it is neither a host name nor an IP literal.
  public init?(_ text: String) {
    if HostName.isValid(text) {
      rawValue = text
      isIPv6 = false
      return
    }
    let address = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
    var buffer = in6_addr()
    let zone = address.count == 2 ? address[1] : ""
    if address[0].contains(":"),
      zone.utf8.allSatisfy(HostName.isNameByte), inet_pton(AF_INET6, String(address[0]), &buffer) == 1
    {
      rawValue = text
      isIPv6 = true
      return
    }
    return nil
  }

  /// A host name is an address (ssh resolves it).
  public init(_ name: HostName) {
    rawValue = name.rawValue
    isIPv6 = false
  }

  /// The address as rsync's `HOST:PATH` takes it.
  var rsyncHost: String { isIPv6 ? "[\(rawValue)]" : rawValue }

  public var description: String { rawValue }
  public static func < (lhs: HostAddress, rhs: HostAddress) -> Bool { lhs.rawValue < rhs.rawValue }

  public init(from decoder: any Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let address = HostAddress(text) else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a host address: \(text)"))
    }
    self = address
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(rawValue)
  }
}
