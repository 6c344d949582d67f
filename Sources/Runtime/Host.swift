// Host: one machine of the pool as the Runtime sees it.
// Owns the host value type only; where hosts come from is Inventory's business. Its name,
// group and address are validated values, parsed where the host enters (client list, dsh
// files, known clients, announcements, the interpreter's patterns), so no later step checks them again.

/// One managed machine: its name (how the admin calls it), its group, and how to reach it.
public struct Host: Hashable, Sendable, CustomStringConvertible {
  /// The host's name as it appears in patterns and output, e.g. `pc01`.
  public var name: HostName
  /// The group whose store tree (`STORE/<group>/`) this host receives.
  public var group: GroupName
  /// The address to connect to; `nil` means "resolve `name`".
  public var address: HostAddress?
  /// The sshd port; `nil` means the ssh default (22).
  public var port: Int?
  /// The remote user; `nil` means `root`.
  public var user: String?

  /// Creates a host.
  public init(
    name: HostName, group: GroupName = .unknown, address: HostAddress? = nil,
    port: Int? = nil, user: String? = nil
  ) {
    self.name = name
    self.group = group
    self.address = address
    self.port = port
    self.user = user
  }

  /// The address ssh should connect to: the explicit address, else the name.
  public var connectAddress: HostAddress { address ?? HostAddress(name) }

  public var description: String { name.rawValue }
}
