// Pending hosts: the claims of announcements that were not accepted (new hosts, and changes
// to accepted ones), kept in the store's state database so that `cfi-sh hosts --pending`
// shows what a cron run saw at night, and rejected claims stay rejected.

import Foundation
import GRDB

/// One claim seen in announcements, waiting for the admin (or rejected by them).
public struct PendingHost: Codable, Hashable, Sendable {
  public var name: HostName
  public var group: GroupName
  public var address: HostAddress
  public var port: Int?
  public var firstSeen: Date
  public var lastSeen: Date
  /// `cfi-sh hosts reject` said no: the claim is never admitted nor shown as pending.
  public var rejected: Bool

  public init(_ claim: HostClaim, firstSeen: Date, lastSeen: Date, rejected: Bool = false) {
    name = claim.name
    group = claim.group
    address = claim.address
    port = claim.port
    self.firstSeen = firstSeen
    self.lastSeen = lastSeen
    self.rejected = rejected
  }

  public var claim: HostClaim { HostClaim(name: name, group: group, address: address, port: port) }
}

/// The pending hosts of a store, in its state database (`pending_host`), one row per claim.
/// Every change is one transaction.
public struct PendingHosts: Sendable {
  private let database: StateDatabase

  public init(database: StateDatabase) {
    self.database = database
  }

  /// Every claim kept, rejected ones included; a row that does not decode is skipped and
  /// `skipped` told why.
  public func load(skipped: (String) -> Void = { _ in }) throws(StateDatabaseError) -> [PendingHost] {
    try database.read { db in try entries(db, skipped: skipped) }.map(\.entry)
  }

  /// Records `claims` as seen at `date` and drops the kept claims that `settled` says need
  /// no decision any more (their host was accepted, or named in a file); returns what is kept.
  public func record(_ claims: [HostClaim], at date: Date, settled: (HostClaim) -> Bool) throws(StateDatabaseError)
    -> [PendingHost]
  {
    try database.write { db in
      for (id, entry) in try entries(db) where settled(entry.claim) { try Self.delete(db, id) }
      for claim in claims {
        try db.execute(
          sql: """
            INSERT INTO pending_host (name, host_group, address, port, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (name, host_group, address, ifnull(port, -1)) DO UPDATE SET last_seen = excluded.last_seen
            """,
          arguments: [claim.name.rawValue, claim.group.rawValue, claim.address.rawValue, claim.port, date, date])
      }
      return try entries(db).map(\.entry)
    }
  }

  /// Marks `claims` rejected.
  public func reject(_ claims: [HostClaim]) throws(StateDatabaseError) {
    try database.write { db in
      for (id, entry) in try entries(db) where claims.contains(entry.claim) {
        try db.execute(sql: "UPDATE pending_host SET rejected = 1 WHERE id = ?", arguments: [id])
      }
    }
  }

  /// Drops the claims `matching` says (accepted ones, or a forgotten host's); returns how many.
  @discardableResult
  public func remove(where matching: (HostClaim) -> Bool) throws(StateDatabaseError) -> Int {
    try database.write { db in
      let chosen = try entries(db).filter { matching($0.entry.claim) }
      for (id, _) in chosen { try Self.delete(db, id) }
      return chosen.count
    }
  }

  /// The rows that decode, with their ids, in name order then first seen.
  private func entries(_ db: Database, skipped: (String) -> Void = { _ in }) throws -> [(id: Int64, entry: PendingHost)] {
    try Row.fetchAll(db, sql: "SELECT * FROM pending_host").compactMap { row in
      do { return (try StoredValue.column(row, "id"), try PendingHost(row: row)) } catch {
        skipped("\(database.path): pending host '\(StoredValue.text(row, "name"))' ignored: \(error)")
        return nil
      }
    }.sorted {
      $0.entry.name != $1.entry.name
        ? HostFolding.naturalLess($0.entry.name, $1.entry.name) : $0.entry.firstSeen < $1.entry.firstSeen
    }
  }

  private static func delete(_ db: Database, _ id: Int64) throws {
    try db.execute(sql: "DELETE FROM pending_host WHERE id = ?", arguments: [id])
  }

  /// Drops `claim`'s row, inside a transaction of the caller's (`KnownClients.accept`).
  static func delete(_ db: Database, _ claim: HostClaim) throws {
    try db.execute(
      sql: "DELETE FROM pending_host WHERE name = ? AND host_group = ? AND address = ? AND ifnull(port, -1) = ifnull(?, -1)",
      arguments: [claim.name.rawValue, claim.group.rawValue, claim.address.rawValue, claim.port])
  }
}

extension PendingHost {
  init(row: Row) throws(StoredValueError) {
    self.init(
      HostClaim(
        name: try StoredValue.parse(row, "name", HostName.init, "a host name"),
        group: try StoredValue.parse(row, "host_group", GroupName.init, "a group name"),
        address: try StoredValue.parse(row, "address", HostAddress.init, "a host address"),
        port: try StoredValue.column(row, "port")),
      firstSeen: try StoredValue.column(row, "first_seen"), lastSeen: try StoredValue.column(row, "last_seen"),
      rejected: try StoredValue.column(row, "rejected"))
  }

  /// The entries a pattern word names: `pc07`, `pc[01-05]` (every claim of those names),
  /// `@lab` (the claims of group lab), or a comma list of them.
  public static func select(_ entries: [PendingHost], pattern: String) throws(HostPatternError) -> [PendingHost] {
    var names: Set<HostName> = []
    var groups: Set<GroupName> = []
    do {
      for item in try HostPattern.parseList(pattern) {
        if let group = item.groupReference {
          groups.insert(group)
        } else {
          names.formUnion(try item.expand().compactMap(HostName.init))
        }
      }
    } catch {
      throw HostPatternError(message: "in '\(pattern)': \(error.message)", offset: error.offset, length: error.length)
    }
    return entries.filter { names.contains($0.name) || groups.contains($0.group) }
  }
}
