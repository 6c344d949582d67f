// Known clients: the accepted hosts. Every host a run has reached, and every host accepted
// with `cfi-sh hosts accept`, is remembered under the store with its group and address, so a
// host that stops announcing itself is still tried, and an announcement that claims another
// group or address for it is a pending change (`HostAcceptance`), never applied silently.

import Foundation

/// One remembered host and what it is bound to.
public struct KnownClient: Codable, Hashable, Sendable {
  public var name: HostName
  public var group: GroupName
  public var address: HostAddress?
  public var port: Int?
  public var user: String?
  /// When cfi-sh last reached it; nil: accepted, never reached yet.
  public var lastSeen: Date?

  public init(_ host: Host, lastSeen: Date?) {
    name = host.name
    group = host.group
    address = host.address
    port = host.port
    user = host.user
    self.lastSeen = lastSeen
  }

  /// The host it describes.
  public var host: Host { Host(name: name, group: group, address: address, port: port, user: user) }
}

/// The known-clients file of a store: `STORE/.cfi/known-clients.json`.
public struct KnownClients: Sendable {
  private let file: RecordFile<KnownClient>
  public var path: String { file.path }

  public init(store: Store) {
    file = RecordFile(path: store.root + "/.cfi/known-clients.json", what: "known clients")
  }

  /// The remembered clients (none if the file does not exist or cannot be read). The file is
  /// input (it may be edited by hand): an entry that does not decode, such as one whose name
  /// is not a host name, is skipped and `skipped` told why; the others are kept.
  public func load(skipped: (String) -> Void = { _ in }) -> [KnownClient] {
    file.load(skipped: skipped)
  }

  /// Records `hosts` as reached now, keeping the others. Entries this version cannot read
  /// (edited by hand, written by another version) are kept as they are; a file that is not a
  /// list at all is left alone and the write refused.
  public func remember(_ hosts: [Host], at date: Date = Date()) throws {
    guard !hosts.isEmpty else { return }
    try update { clients in
      for host in hosts { clients[host.name] = KnownClient(host, lastSeen: date) }
    }
  }

  /// Accepts `host`: binds its name to its group, address and port, keeping when it was last
  /// reached and the user it is reached as.
  public func accept(_ host: Host) throws {
    try update { clients in
      var accepted = KnownClient(host, lastSeen: clients[host.name]?.lastSeen)
      accepted.user = host.user ?? clients[host.name]?.user
      clients[host.name] = accepted
    }
  }

  /// Forgets a host; returns whether it was known.
  @discardableResult
  public func forget(_ name: HostName) throws -> Bool {
    try update { clients in clients.removeValue(forKey: name) != nil }
  }

  private func update<Result>(_ change: (inout [HostName: KnownClient]) -> Result) throws -> Result {
    try file.update(order: { HostFolding.naturalLess($0.name, $1.name) }) { list in
      var byName = Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
      let before = byName
      let result = change(&byName)
      list = Array(byName.values)
      return (byName != before, result)
    }
  }
}
