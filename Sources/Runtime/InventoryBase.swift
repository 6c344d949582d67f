// The inventory's sources other than the browse (known clients, dsh groups, the static client
// list, the pending claims), read once, and their merge with a set of announced hosts. The
// merge is pure, so a run can merge again each time the browse finds more (`LiveInventory`).

import Foundation

/// What every source but the browse says, as `InventorySources.base` read it.
public struct InventoryBase: Sendable {
  /// The store's groups (an announced group that is not one is `unknown`).
  public var groups: Set<GroupName>
  /// The known clients (their group already `unknown` when the store has no such tree).
  var known: [(host: Host, client: KnownClient)]
  /// Each dsh group file and its hosts.
  var dshSets: [(group: GroupName, hosts: [Host])]
  var staticHosts: [Host]
  var policy: AcceptancePolicy
  /// The claims the store keeps (pending and rejected).
  var kept: [PendingHost]
  /// Where claims are recorded (`recording`); nil: nowhere.
  var state: StateDatabase?

  /// The hosts whose place in the inventory no announcement can change: a known client keeps
  /// its binding (a claim that differs waits for the admin) and a line of the client list
  /// wins over what a host announces. Any other host may still be given a group or an
  /// address by the browse.
  public var bound: Set<HostName> {
    Set(known.map(\.host.name)).union(staticHosts.map(\.name))
  }

  /// The inventory these sources and `announced` (nil: no browse) make, with the claims of
  /// announced hosts that wait for the admin (the kept ones and the new ones, none recorded
  /// yet: see `recording`), and the claims made now.
  public func merged(announced: [Host]?, discoveryFailure: String? = nil) -> (snapshot: InventorySnapshot, claims: [HostClaim]) {
    var merger = EntryMerger()
    var accepted: [HostName: Host] = [:]
    for (host, client) in known {
      accepted[host.name] = host
      merger.merge(host, "known", lastSeen: client.lastSeen, wins: true)
      merger.setHostKey(client.hostKey, of: host.name)
    }
    for (_, hosts) in dshSets {
      for host in hosts { merger.merge(host, "dsh", wins: false) }
    }
    let named = HostAcceptance.Named(
      clientList: Set(staticHosts.map(\.name)), dsh: Set(dshSets.flatMap { $0.hosts.map(\.name) }))
    var claims: [HostClaim] = []
    var pending: [PendingHost] = []
    if let announced {
      let rejected = Set(kept.filter(\.rejected).map(\.claim))
      let admitted: [Host]
      (admitted, claims) = HostAcceptance.admit(
        announced, accepted: accepted, named: named, rejected: rejected, policy: policy)
      let now = Date()
      for host in admitted { merger.merge(host, "discovered", lastSeen: now, online: true, wins: true) }
      // What `PendingHosts.record` would keep: the open kept claims not settled since, and today's.
      let open = kept.filter { !$0.rejected && !Self.settled($0.claim, accepted: accepted, named: named) }
      let new = claims.filter { claim in !open.contains { $0.claim == claim } }
      pending = open + new.map { PendingHost($0, firstSeen: now, lastSeen: now) }
    }
    let known = merger.index
    for host in staticHosts { merger.merge(host, "static", wins: true) }
    var inventory = Inventory(hosts: merger.entries.map(\.host))
    for (group, hosts) in dshSets { inventory.addToGroup(group, names: hosts.map(\.name)) }
    // A new name announced one way: reached if a runbook names it (`Inventory.named`).
    for (name, made) in Dictionary(grouping: claims, by: \.name) where made.count == 1 && known[name] == nil {
      inventory.pending[name] = made[0].host
    }
    return (
      InventorySnapshot(inventory: inventory, entries: merger.entries, discoveryFailure: discoveryFailure, pending: pending),
      claims
    )
  }

  /// `merged` with its claims recorded in the state database: the pending claims are then
  /// the store's (not only today's; rejected ones left out). A database that cannot be
  /// written is a warning; the claims of this browse are still said.
  public func recording(_ merged: (snapshot: InventorySnapshot, claims: [HostClaim]), warning: (String) -> Void)
    -> InventorySnapshot
  {
    var snapshot = merged.snapshot
    guard let state else { return snapshot }
    let accepted = Dictionary(known.map { ($0.host.name, $0.host) }, uniquingKeysWith: { first, _ in first })
    let named = HostAcceptance.Named(
      clientList: Set(staticHosts.map(\.name)), dsh: Set(dshSets.flatMap { $0.hosts.map(\.name) }))
    do {
      snapshot.pending = try PendingHosts(database: state).record(merged.claims, at: Date()) {
        Self.settled($0, accepted: accepted, named: named)
      }.filter { !$0.rejected }
    } catch {
      warning("cannot record the pending hosts: \(error)")
    }
    return snapshot
  }

  /// A kept claim is settled once its host is named in a file or accepted as it claims.
  private static func settled(_ claim: HostClaim, accepted: [HostName: Host], named: HostAcceptance.Named) -> Bool {
    if named.clientList.contains(claim.name) { return true }
    if let binding = accepted[claim.name] { return claim.agrees(with: binding) }
    return named.dsh.contains(claim.name)
  }
}

/// Entries merged by host name, each keeping where it came from.
private struct EntryMerger {
  var entries: [InventoryEntry] = []
  var index: [HostName: Int] = [:]

  /// Adds `host` from `source`; where the name is there already, a source that `wins` gives
  /// the host (what it leaves out kept from before), and the others only add their name.
  mutating func merge(_ host: Host, _ source: String, lastSeen: Date? = nil, online: Bool = false, wins: Bool) {
    guard let position = index[host.name] else {
      index[host.name] = entries.count
      entries.append(InventoryEntry(host: host, sources: [source], lastSeen: lastSeen, online: online))
      return
    }
    if wins {
      var merged = host
      merged.address = host.address ?? entries[position].host.address
      merged.port = host.port ?? entries[position].host.port
      merged.user = host.user ?? entries[position].host.user
      entries[position].host = merged
    }
    entries[position].sources.append(source)
    entries[position].lastSeen = lastSeen ?? entries[position].lastSeen
    entries[position].online = entries[position].online || online
  }

  mutating func setHostKey(_ key: String?, of name: HostName) {
    if let position = index[name] { entries[position].hostKey = key }
  }
}
