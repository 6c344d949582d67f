// Known clients: every host ever reached, remembered under the store, so a host that stops
// announcing itself (or drops off the static list's source) is still tried.

import Foundation

/// One remembered host.
public struct KnownClient: Codable, Hashable, Sendable {
  public var name: HostName
  public var group: GroupName
  public var address: HostAddress?
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

  /// The remembered clients (none if the file does not exist or cannot be read). The file is
  /// input (it may be edited by hand): an entry that does not decode, such as one whose name
  /// is not a host name, is skipped and `skipped` told why; the others are kept.
  public func load(skipped: (String) -> Void = { _ in }) -> [KnownClient] {
    guard let data = FileManager.default.contents(atPath: path) else { return [] }
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    let entries: [Entry]
    do { entries = try decoder.decode([Entry].self, from: data) } catch {
      skipped("\(path): ignored, not a list of known clients: \(Self.reason(error))")
      return []
    }
    return entries.enumerated().compactMap { position, entry in
      switch entry.client {
      case .success(let client): return client
      case .failure(let error):
        skipped("\(path): entry \(position + 1) ignored: \(Self.reason(error))")
        return nil
      }
    }
  }

  /// One element of the file, decoded on its own so a bad one does not take the others with it.
  private struct Entry: Decodable {
    let client: Result<KnownClient, any Error>
    init(from decoder: any Decoder) throws { client = Result { try KnownClient(from: decoder) } }
  }

  /// What is wrong with the file or an entry, without the decoder's coding-path noise.
  private static func reason(_ error: any Error) -> String {
    switch error as? DecodingError {
    case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
      let field = context.codingPath.last.map { "'\($0.stringValue)': " } ?? ""
      return field + context.debugDescription
    case .keyNotFound(let key, _): return "no '\(key.stringValue)'"
    default: return "\(error)"
    }
  }

  /// Records `hosts` as reached now, keeping the others; written atomically (temp + rename).
  /// Entries this version cannot read (edited by hand, written by another version) are kept
  /// as they are; a file that is not a list at all is left alone and the write refused.
  public func remember(_ hosts: [Host], at date: Date = Date()) throws {
    guard !hosts.isEmpty else { return }
    let (clients, unreadable) = try readForUpdate()
    var byName = Dictionary(clients.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
    for host in hosts { byName[host.name] = KnownClient(host, lastSeen: date) }
    try save(Array(byName.values), keeping: unreadable)
  }

  /// Forgets a host; returns whether it was known.
  @discardableResult
  public func forget(_ name: HostName) throws -> Bool {
    let (clients, unreadable) = try readForUpdate()
    let kept = clients.filter { $0.name != name }
    guard kept.count != clients.count else { return false }
    try save(kept, keeping: unreadable)
    return true
  }

  /// Why the file is not rewritten.
  public struct NotAList: LocalizedError {
    public var path: String
    public var errorDescription: String? { "\(path) is not a list of known clients; fix or remove it" }
  }

  /// The file's clients, and the entries that do not decode (as JSON values, to write back).
  private func readForUpdate() throws -> ([KnownClient], [Any]) {
    guard let data = FileManager.default.contents(atPath: path) else { return ([], []) }
    guard let list = try? JSONSerialization.jsonObject(with: data) as? [Any] else { throw NotAList(path: path) }
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    var clients: [KnownClient] = []
    var unreadable: [Any] = []
    for entry in list {
      if let bytes = try? JSONSerialization.data(withJSONObject: entry, options: [.fragmentsAllowed]),
        let client = try? decoder.decode(KnownClient.self, from: bytes)
      {
        clients.append(client)
      } else {
        unreadable.append(entry)
      }
    }
    return (clients, unreadable)
  }

  /// Writes `clients` (in natural order of names), then the `unreadable` entries as they were.
  private func save(_ clients: [KnownClient], keeping unreadable: [Any]) throws {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    let encoded = try encoder.encode(clients.sorted { HostFolding.naturalLess($0.name, $1.name) })
    let entries = (try JSONSerialization.jsonObject(with: encoded) as? [Any] ?? []) + unreadable
    let data = try JSONSerialization.data(withJSONObject: entries, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try data.write(to: URL(fileURLWithPath: path), options: .atomic)
  }
}
