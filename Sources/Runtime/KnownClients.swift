// Known clients: the accepted hosts. Every host a run has reached, and every host accepted
// with `cfi-sh hosts accept`, is remembered in the store's state database with its group and
// address (and the ssh host key its name is pinned to), so a host that stops announcing
// itself is still tried, and an announcement that claims another group or address for it is
// a pending change (`HostAcceptance`), never applied silently.

import Foundation
import GRDB

/// One remembered host and what it is bound to.
public struct KnownClient: Codable, Hashable, Sendable {
  public var name: HostName
  public var group: GroupName
  public var address: HostAddress?
  public var port: Int?
  public var user: String?
  /// When cfi-sh last reached it; nil: accepted, never reached yet.
  public var lastSeen: Date?
  /// When `cfi-sh hosts accept` bound it; nil: known from a run.
  public var accepted: Date?
  /// The line(s) pinning its ssh host key in the store's known_hosts (`KnownHostsFile`), as
  /// they were when a run last reached it or it was accepted; nil: none seen yet.
  public var hostKey: String?

  public init(_ host: Host, lastSeen: Date?, accepted: Date? = nil, hostKey: String? = nil) {
    name = host.name
    group = host.group
    address = host.address
    port = host.port
    user = host.user
    self.lastSeen = lastSeen
    self.accepted = accepted
    self.hostKey = hostKey
  }

  /// The host it describes.
  public var host: Host { Host(name: name, group: group, address: address, port: port, user: user) }
}

/// The known clients of a store, in its state database (`known_client`). Every change is one
/// transaction, so two writers (a cron run ending while the admin accepts a host) never lose
/// each other's change.
public struct KnownClients: Sendable {
  private let database: StateDatabase
  /// Where the hosts' keys are pinned; nil: keys are not recorded.
  private let knownHosts: KnownHostsFile?

  public init(database: StateDatabase, knownHosts: KnownHostsFile?) {
    self.database = database
    self.knownHosts = knownHosts
  }

  /// The known clients of `store`'s database, their keys read from the store's known_hosts.
  public init(database: StateDatabase, store: Store) {
    self.init(database: database, knownHosts: KnownHostsFile(store: store))
  }

  /// The remembered clients. The database is input (it may be edited with sqlite3): a row
  /// that does not decode, such as one whose name is not a host name, is skipped and `skipped`
  /// told why; the others are kept.
  public func load(skipped: (String) -> Void = { _ in }) throws(StateDatabaseError) -> [KnownClient] {
    let rows = try database.read { db in try Row.fetchAll(db, sql: "SELECT * FROM known_client") }
    return rows.compactMap { row in
      do { return try KnownClient(row: row) } catch {
        skipped("\(database.path): known client '\(StoredValue.text(row, "name"))' ignored: \(error)")
        return nil
      }
    }.sorted { HostFolding.naturalLess($0.name, $1.name) }
  }

  /// Records `hosts` as reached at `date`, with the keys their names are pinned to now: a
  /// reached host is remembered as it was reached (group, address, port, user); when it was
  /// accepted is kept.
  public func remember(_ hosts: [Host], at date: Date = Date()) throws(StateDatabaseError) {
    guard !hosts.isEmpty else { return }
    let keys = knownHosts?.pins(for: hosts.map(\.name)) ?? [:]
    try database.write { db in
      for host in hosts {
        try KnownClient(host, lastSeen: date, hostKey: keys[host.name]).upsert(
          db, also: "user = excluded.user, last_seen = excluded.last_seen")
      }
    }
  }

  /// Accepts `host`: binds its name to its group, address and port, keeping when it was last
  /// reached and the user it is reached as; records the key its name is pinned to, if any.
  public func accept(_ host: Host, at date: Date = Date()) throws(StateDatabaseError) {
    try accept(host, at: date) { _ in }
  }

  /// Accepts the host a pending `claim` names and drops that claim, in one transaction: a
  /// failure leaves both as they were, never a host accepted and still pending.
  public func accept(_ claim: HostClaim, at date: Date = Date()) throws(StateDatabaseError) {
    try accept(claim.host, at: date) { db in try PendingHosts.delete(db, claim) }
  }

  private func accept(_ host: Host, at date: Date, also: (Database) throws -> Void) throws(StateDatabaseError) {
    let key = knownHosts?.pins(for: [host.name])[host.name]
    try database.write { db in
      try KnownClient(host, lastSeen: nil, accepted: date, hostKey: key).upsert(
        db, also: "user = ifnull(excluded.user, known_client.user), accepted = excluded.accepted")
      try also(db)
    }
  }

  /// Forgets a host (and the key recorded for it); returns whether it was known.
  @discardableResult
  public func forget(_ name: HostName) throws(StateDatabaseError) -> Bool {
    try database.write { db in
      try db.execute(sql: "DELETE FROM known_client WHERE name = ?", arguments: [name.rawValue])
      return db.changesCount > 0
    }
  }
}

extension KnownClient {
  init(row: Row) throws(StoredValueError) {
    self.init(
      Host(
        name: try StoredValue.parse(row, "name", HostName.init, "a host name"),
        group: try StoredValue.parse(row, "host_group", GroupName.init, "a group name"),
        address: try StoredValue.parseIfPresent(row, "address", HostAddress.init, "a host address"),
        port: try StoredValue.column(row, "port"), user: try StoredValue.column(row, "user")),
      lastSeen: try StoredValue.column(row, "last_seen"), accepted: try StoredValue.column(row, "accepted"),
      hostKey: try StoredValue.column(row, "host_key"))
  }

  /// Inserts the row, or updates the one of its name: its group, address and port, its key
  /// when this value has one, and what `also` says (`column = expression`, over
  /// `known_client.` and `excluded.`); the other columns are kept.
  func upsert(_ db: Database, also: String) throws {
    try db.execute(
      sql: """
        INSERT INTO known_client (name, host_group, address, port, user, last_seen, accepted, host_key)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET host_group = excluded.host_group, address = excluded.address,
          port = excluded.port, host_key = ifnull(excluded.host_key, known_client.host_key), \(also)
        """,
      arguments: [name.rawValue, group.rawValue, address?.rawValue, port, user, lastSeen, accepted, hostKey])
  }
}
