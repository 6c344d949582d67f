// Host: one machine of the pool as the Runtime sees it.
// Owns the host value type only; where hosts come from is Inventory's business.

/// One managed machine: its name (how the admin calls it), its group, and how to reach it.
public struct Host: Hashable, Sendable, CustomStringConvertible {
  /// The group a host falls into when it names none, or one the store does not know.
  public static let unknownGroup = "unknown"

  /// The host's name as it appears in patterns and output, e.g. `pc01`.
  public var name: String
  /// The group whose store tree (`STORE/<group>/`) this host receives.
  public var group: String
  /// The address to connect to; `nil` means "resolve `name`".
  public var address: String?
  /// The sshd port; `nil` means the ssh default (22).
  public var port: Int?
  /// The remote user; `nil` means `root`.
  public var user: String?

  /// Creates a host.
  public init(
    name: String, group: String = Host.unknownGroup, address: String? = nil,
    port: Int? = nil, user: String? = nil
  ) {
    self.name = name
    self.group = group
    self.address = address
    self.port = port
    self.user = user
  }

  /// The address ssh should connect to: the explicit address, else the name.
  public var connectAddress: String { address ?? name }

  public var description: String { name }
}
