// The inventory's sources other than the browse (known clients, dsh groups, the static client
// list, the pending claims), read once, and their merge with a set of announced hosts. The
// merge is pure, so a run can merge again each time the browse finds more (`LiveInventory`).

import Foundation

/// What every source but the browse says, as `InventorySources.base` read it.
public struct InventoryBase: Sendable {
  /// The store's groups (an announced group that is not one is `unknown`).
  public var groups: Set<GroupName>
  /// The known clients (their group already `unknown` when the store has no such tree).
  let known: [(host: Host, client: KnownClient)]
  /// Each dsh group file and its hosts.
  let dshSets: [(group: GroupName, hosts: [Host])]
  let staticHosts: [Host]
  let policy: AcceptancePolicy
  /// The claims the store keeps (pending and rejected).
  let kept: [PendingHost]
  /// Where claims are recorded (`recording`); nil: nowhere.
  let state: StateDatabase?
  /// The known clients' bindings, and the hosts the files name (`HostAcceptance`'s inputs).
  private let accepted: [HostName: Host]
  private let named: HostAcceptance.Named

  init(
    groups: Set<GroupName>, known: [(host: Host, client: KnownClient)], dshSets: [(group: GroupName, hosts: [Host])],
    staticHosts: [Host], policy: AcceptancePolicy, kept: [PendingHost], state: StateDatabase?
  ) {
    self.groups = groups
    self.known = known
    self.dshSets = dshSets
    self.staticHosts = staticHosts
    self.policy = policy
    self.kept = kept
    self.state = state
    accepted = Dictionary(known.map { ($0.host.name, $0.host) }, uniquingKeysWith: { first, _ in first })
    named = HostAcceptance.Named(
      clientList: Set(staticHosts.map(\.name)), dsh: Set(dshSets.flatMap { $0.hosts.map(\.name) }))
  }

  /// The hosts whose entry no announcement can change: a line of the client list that gives
  /// the address and the port (it wins over what the host announces, which only fills in
  /// what the line leaves out), and a known client bound to an address (a claim that
  /// differs waits for the admin; one bound by name alone takes the announced address).
  /// Any other host may still be given a group, an address or a port by the browse.
  public var bound: Set<HostName> {
    let listed = Dictionary(staticHosts.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    var bound = Set(listed.values.filter { $0.address != nil && $0.port != nil }.map(\.name))
    for (host, _) in known where listed[host.name] == nil && host.address != nil { bound.insert(host.name) }
    return bound
  }

  /// The inventory these sources and `announced` (nil: no browse) make, with the claims of
  /// announced hosts that wait for the admin (the kept ones and the new ones, none recorded
  /// yet: see `recording`), and the claims made now.
  public func merged(announced: [Host]?, discoveryFailure: String? = nil) -> (snapshot: InventorySnapshot, claims: [HostClaim]) {
    var merger = EntryMerger()
    for (host, client) in known {
      merger.merge(host, "known", lastSeen: client.lastSeen, wins: true)
      merger.setHostKey(client.hostKey, of: host.name)
    }
    for (_, hosts) in dshSets {
      for host in hosts { merger.merge(host, "dsh", wins: false) }
    }
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
      let open = kept.filter { !$0.rejected && !settled($0.claim) }
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
    do {
      snapshot.pending = try PendingHosts(database: state).record(merged.claims, at: Date(), settled: settled)
        .filter { !$0.rejected }
    } catch {
      warning("cannot record the pending hosts: \(error)")
    }
    return snapshot
  }

  /// A kept claim is settled once its host is named in a file or accepted as it claims.
  private func settled(_ claim: HostClaim) -> Bool {
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
