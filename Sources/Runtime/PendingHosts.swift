// Pending hosts: the claims of announcements that were not accepted (new hosts, and changes
// to accepted ones), kept under the store so that `cfi-sh hosts --pending` shows what a cron
// run saw at night, and rejected claims stay rejected.

import Foundation

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

/// The pending-hosts file of a store: `STORE/.cfi/pending-hosts.json`.
public struct PendingHosts: Sendable {
  private let file: RecordFile<PendingHost>
  public var path: String { file.path }

  public init(store: Store) {
    file = RecordFile(path: store.root + "/.cfi/pending-hosts.json", what: "pending hosts")
  }

  /// Every claim kept, rejected ones included.
  public func load(skipped: (String) -> Void = { _ in }) -> [PendingHost] {
    file.load(skipped: skipped)
  }

  /// Records `claims` as seen at `date` and drops the kept claims that `settled` says need
  /// no decision any more (their host was accepted, or named in a file); returns what is kept.
  public func record(_ claims: [HostClaim], at date: Date, settled: (HostClaim) -> Bool) throws -> [PendingHost] {
    try update { entries in
      entries.removeAll { settled($0.claim) }
      for claim in claims {
        if let position = entries.firstIndex(where: { $0.claim == claim }) {
          entries[position].lastSeen = date
        } else {
          entries.append(PendingHost(claim, firstSeen: date, lastSeen: date))
        }
      }
      return entries
    }
  }

  /// Marks `claims` rejected.
  public func reject(_ claims: [HostClaim]) throws {
    try update { entries in
      for position in entries.indices where claims.contains(entries[position].claim) {
        entries[position].rejected = true
      }
      return entries
    }
  }

  /// Drops the claims `matching` says (accepted ones, or a forgotten host's); returns how many.
  @discardableResult
  public func remove(where matching: (HostClaim) -> Bool) throws -> Int {
    var count = 0
    try update { entries in
      let before = entries.count
      entries.removeAll { matching($0.claim) }
      count = before - entries.count
      return entries
    }
    return count
  }

  @discardableResult
  private func update(_ change: (inout [PendingHost]) -> [PendingHost]) throws -> [PendingHost] {
    try file.update(order: { $0.name != $1.name ? HostFolding.naturalLess($0.name, $1.name) : $0.firstSeen < $1.firstSeen }) {
      entries in
      let before = entries
      let result = change(&entries)
      return (entries != before, result)
    }
  }
}

extension PendingHost {
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
