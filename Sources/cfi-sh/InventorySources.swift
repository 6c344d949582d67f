// Where cfi-sh learns its hosts, merged into one inventory: the known clients (every host a
// run has reached), dsh group files, avahi announcements (live), and the static client list,
// which wins where it names a host. Each host keeps where it came from.

import CFIScript
import CFISyntax
import Foundation
import Runtime

/// One host of the merged inventory, for listings.
struct InventoryEntry {
  var host: Runtime.Host
  /// Where the host is known from: `known`, `dsh`, `discovered`, `static`.
  var sources: [String]
  /// When a run last reached it, or when it was discovered now.
  var lastSeen: Date?
  /// Whether it announces itself right now.
  var online: Bool
}

extension InventoryEntry {
  /// The entries that `patterns` name (`pc[01-05]`, `web1`, `@lab`: the group's hosts in
  /// `inventory`, dsh and session groups too); all of them for none.
  static func select(_ entries: [InventoryEntry], patterns: [String], in inventory: Inventory) throws(HostPatternError)
    -> [InventoryEntry]
  {
    guard !patterns.isEmpty else { return entries }
    var selected: Set<String> = []
    for text in patterns {
      let list: [HostPattern]
      do { list = try HostPattern.parseList(text) } catch {
        throw HostPatternError(message: "in '\(text)': \(error.message)", offset: error.offset, length: error.length)
      }
      for pattern in list {
        if let group = pattern.groupReference {
          selected.formUnion(inventory.hosts(inGroup: group).map(\.name))
        } else if let names = try? pattern.expand() {
          selected.formUnion(names)
        }
      }
    }
    return entries.filter { selected.contains($0.host.name) }
  }
}

/// The sources of the inventory, as the command line and environment name them.
struct InventorySources {
  var store: Store
  /// The static client list; nil: /etc/cfi/clients if it exists.
  var clientList: String?
  var dshDirectory: String
  /// Browse avahi for announced clients.
  var discovery: Bool
  /// The longest a browse may take (it usually ends after about a second).
  var discoveryWait: Duration = .seconds(3)

  /// Merges every source. A failed browse (no avahi-daemon) is not an error: the other sources
  /// still name the hosts; `warning` is told why.
  func load(warning: (String) -> Void = { _ in }) async throws -> (Inventory, [InventoryEntry]) {
    let groups = Set(store.groups())
    var entries: [InventoryEntry] = []
    var index: [String: Int] = [:]
    func merge(_ host: Runtime.Host, _ source: String, lastSeen: Date? = nil, online: Bool = false, wins: Bool) {
      if let position = index[host.name] {
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
      } else {
        index[host.name] = entries.count
        entries.append(InventoryEntry(host: host, sources: [source], lastSeen: lastSeen, online: online))
      }
    }
    for client in KnownClients(store: store).load() {
      var host = client.host
      if !groups.contains(host.group) { host.group = Host.unknownGroup }
      merge(host, "known", lastSeen: client.lastSeen, wins: true)
    }
    var dshSets: [(String, [String])] = []
    for (group, hosts) in Inventory.dshGroups(in: dshDirectory) {
      for var host in hosts {
        host.group = groups.contains(group) ? group : Host.unknownGroup
        merge(host, "dsh", wins: false)
      }
      dshSets.append((group, hosts.map(\.name)))
    }
    if discovery {
      for host in await discoveredClients(knownGroups: groups, warning: warning) {
        merge(host, "discovered", lastSeen: Date(), online: true, wins: true)
      }
    }
    for host in try staticList(knownGroups: groups) { merge(host, "static", wins: true) }
    var inventory = Inventory(hosts: entries.map(\.host))
    for (group, names) in dshSets { inventory.addToGroup(group, names: names) }
    return (inventory, entries)
  }

  /// The hosts announcing `_cfi._tcp` now.
  func discoveredClients(knownGroups: Set<String>, warning: (String) -> Void) async -> [Runtime.Host] {
    do {
      let services = try await Discovery.snapshot(Inventory.clientServiceType, for: discoveryWait, endingAtAllForNow: true)
      var hosts: [Runtime.Host] = []
      for service in services {
        if let host = Inventory.host(announcedBy: service, knownGroups: knownGroups) {
          hosts.append(host)
        } else {
          warning("ignoring an announcement that names no valid host: '\(service.name)' (\(service.hostName))")
        }
      }
      return hosts
    } catch {
      warning("no discovery: \(error)")
      return []
    }
  }

  private func staticList(knownGroups: Set<String>) throws -> [Runtime.Host] {
    let path = clientList ?? "/etc/cfi/clients"
    guard clientList != nil || FileManager.default.fileExists(atPath: path) else { return [] }
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
      throw CommandFailure(message: "cannot read client list '\(path)': \(Loader.reason(error))", status: ExitStatus.usage)
    }
    do {
      return try Inventory.parseStaticList(text, file: path, knownGroups: knownGroups)
    } catch {
      throw CommandFailure(message: error.description, status: ExitStatus.runbookError)
    }
  }
}
