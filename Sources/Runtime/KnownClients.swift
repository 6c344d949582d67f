// Known clients: every host ever reached, remembered under the store, so a host that stops
// announcing itself (or drops off the static list's source) is still tried.

import Foundation

/// One remembered host.
public struct KnownClient: Codable, Hashable, Sendable {
  public var name: String
  public var group: String
  public var address: String?
  public var port: Int?
  public var user: String?
  /// When cfi-sh last reached it.
  public var lastSeen: Date

  public init(_ host: Host, lastSeen: Date) {
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
  public let path: String

  public init(store: Store) {
    path = store.root + "/.cfi/known-clients.json"
  }

  /// The remembered clients (none if the file does not exist or cannot be read).
  public func load() -> [KnownClient] {
    guard let data = FileManager.default.contents(atPath: path) else { return [] }
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return (try? decoder.decode([KnownClient].self, from: data)) ?? []
  }

  /// Records `hosts` as reached now, keeping the others; written atomically (temp + rename).
  public func remember(_ hosts: [Host], at date: Date = Date()) throws {
    guard !hosts.isEmpty else { return }
    var byName = Dictionary(load().map { ($0.name, $0) }, uniquingKeysWith: { $1 })
    for host in hosts { byName[host.name] = KnownClient(host, lastSeen: date) }
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(byName.values.sorted { HostFolding.naturalLess($0.name, $1.name) })
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try data.write(to: URL(fileURLWithPath: path), options: .atomic)
  }

  /// Forgets a host; returns whether it was known.
  @discardableResult
  public func forget(_ name: String) throws -> Bool {
    let clients = load()
    let kept = clients.filter { $0.name != name }
    guard kept.count != clients.count else { return false }
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(kept).write(to: URL(fileURLWithPath: path), options: .atomic)
    return true
  }
}
