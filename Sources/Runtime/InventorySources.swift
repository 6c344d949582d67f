// Where the server learns its hosts, merged into one inventory: the known clients (every host a
// run has reached), dsh group files, avahi announcements (live), and the static client list,
// which wins where it names a host. Each host keeps where it came from.

import Foundation

/// One host of the merged inventory, for listings.
public struct InventoryEntry: Sendable {
  public var host: Host
  /// Where the host is known from: `known`, `dsh`, `discovered`, `static`, `session`.
  public var sources: [String]
  /// When a run last reached it, or when it was discovered now.
  public var lastSeen: Date?
  /// Whether it announces itself right now.
  public var online: Bool
  /// The known_hosts line(s) pinning its ssh host key, as recorded with the known client.
  public var hostKey: String?

  public init(host: Host, sources: [String], lastSeen: Date? = nil, online: Bool = false, hostKey: String? = nil) {
    self.host = host
    self.sources = sources
    self.lastSeen = lastSeen
    self.online = online
    self.hostKey = hostKey
  }
}

extension InventoryEntry {
  /// The entries that `patterns` name (`pc[01-05]`, `web1`, `@lab`: the group's hosts in
  /// `inventory`, dsh and session groups too); all of them for none.
  public static func select(_ entries: [InventoryEntry], patterns: [String], in inventory: Inventory)
    throws(HostPatternError) -> [InventoryEntry]
  {
    guard !patterns.isEmpty else { return entries }
    let names = try HostPattern.names(patterns) { inventory.hosts(inGroup: $0).map(\.name) }
    return entries.filter { names.contains($0.host.name) }
  }
}

extension HostPattern {
  /// The host names a command line's patterns name (`pc[01-05]`, `web1`, `@lab`, each word a
  /// comma list); `members` gives a group's hosts.
  public static func names(_ patterns: [String], members: (GroupName) -> [HostName]) throws(HostPatternError)
    -> Set<HostName>
  {
    var selected: Set<HostName> = []
    for text in patterns {
      let list: [HostPattern]
      do { list = try HostPattern.parseList(text) } catch {
        throw HostPatternError(message: "in '\(text)': \(error.message)", offset: error.offset, length: error.length)
      }
      for pattern in list {
        if let group = pattern.groupReference {
          selected.formUnion(members(group))
        } else if let names = try? pattern.expand() {
          selected.formUnion(names.compactMap(HostName.init))
        }
      }
    }
    return selected
  }
}

/// Why the inventory could not be loaded.
public enum InventorySourceError: Error, Sendable, CustomStringConvertible {
  /// A file named on the command line or by default (the client list, the server's
  /// configuration) cannot be read; `what` names it.
  case unreadable(what: String, path: String, reason: String)
  /// A line of the client list or of the server's configuration is wrong.
  case invalid(InventoryError)

  public var description: String {
    switch self {
    case .unreadable(let what, let path, let reason): "cannot read \(what) '\(path)': \(reason)"
    case .invalid(let error): error.description
    }
  }
}

/// The merged inventory and, per host, where it came from.
public struct InventorySnapshot: Sendable {
  public var inventory: Inventory
  public var entries: [InventoryEntry]
  /// Why the browse that was asked for failed (no avahi-daemon), if it did: the hosts of this
  /// snapshot are then only those the other sources name, which every run must say.
  public var discoveryFailure: String? = nil
  /// Claims of announced hosts waiting for `cfi-sh hosts accept` (rejected ones left out):
  /// none of them is in `inventory` as claimed.
  public var pending: [PendingHost] = []

  public init(inventory: Inventory, entries: [InventoryEntry], discoveryFailure: String? = nil, pending: [PendingHost] = []) {
    self.inventory = inventory
    self.entries = entries
    self.discoveryFailure = discoveryFailure
    self.pending = pending
  }

  /// What every run says while claims wait: which hosts, and where to look.
  public var pendingNotice: String? {
    guard !pending.isEmpty else { return nil }
    let names = Set(pending.map(\.name))
    let hosts = names.count == 1 ? "host" : "hosts"
    return "\(names.count) announced \(hosts) pending acceptance, not reached as announced: "
      + "\(HostFolding.foldedString(names)) (see 'cfi-sh hosts --pending'; 'cfi-sh hosts accept NAME')"
  }
}

/// The sources of the inventory, as the command line and environment name them.
public struct InventorySources: Sendable {
  public var store: Store
  /// The static client list; nil: /etc/cfi/clients if it exists.
  public var clientList: String?
  public var dshDirectory: String
  /// Browse avahi for announced clients.
  public var discovery: Bool
  /// The longest a browse may take (it usually ends after about a second).
  public var discoveryWait: Duration
  /// The server's configuration file (how announced hosts are accepted).
  public var configurationFile: String

  /// Where the static client list is unless one is named.
  public static let defaultClientList = "/etc/cfi/clients"

  public init(
    store: Store, clientList: String? = nil, dshDirectory: String = Inventory.dshGroupDirectory, discovery: Bool,
    discoveryWait: Duration = .seconds(3), configurationFile: String = ServerConfiguration.defaultPath
  ) {
    self.store = store
    self.clientList = clientList
    self.dshDirectory = dshDirectory
    self.discovery = discovery
    self.discoveryWait = discoveryWait
    self.configurationFile = configurationFile
  }

  /// Merges every source. Announced hosts join only as `HostAcceptance` admits them; the
  /// claims it does not are recorded as pending in `state`. A failed browse (no avahi-daemon)
  /// is not an error: the other sources still name the hosts; `warning` is told why. Nor is
  /// a state database that is missing (nil: its opener said why) or cannot be read: the known
  /// clients are then left out, and only this browse's claims are pending.
  public func load(state: StateDatabase?, warning: (String) -> Void = { _ in }) async throws(InventorySourceError)
    -> InventorySnapshot
  {
    let base = try self.base(state: state, warning: warning)
    guard discovery else { return base.merged(announced: nil).snapshot }
    do {
      let announced = try await discoveredClients(knownGroups: base.groups, warning: warning)
      return base.recording(base.merged(announced: announced), warning: warning)
    } catch {
      warning("no discovery: \(error)")
      return base.merged(announced: nil, discoveryFailure: "\(error)").snapshot
    }
  }

  /// What every source but the browse says, read once (`InventoryBase`): a run merges the
  /// browse's findings with it as they come.
  public func base(state: StateDatabase?, warning: (String) -> Void = { _ in }) throws(InventorySourceError)
    -> InventoryBase
  {
    let configuration = try ServerConfiguration.load(configurationFile)
    let groups = Set(store.groups().compactMap(GroupName.init))
    var known: [(host: Host, client: KnownClient)] = []
    for client in knownClients(state, warning: warning) {
      var host = client.host
      if !groups.contains(host.group) { host.group = .unknown }
      known.append((host, client))
    }
    var dshSets: [(group: GroupName, hosts: [Host])] = []
    for (group, hosts) in Inventory.dshGroups(in: dshDirectory) {
      let inGroup = groups.contains(group) ? group : .unknown
      dshSets.append((group, hosts.map { host in var host = host; host.group = inGroup; return host }))
    }
    var kept: [PendingHost] = []
    if state != nil {
      do { kept = try state.map { try PendingHosts(database: $0).load(skipped: warning) } ?? [] } catch {
        warning("cannot read the pending hosts: \(error)")
      }
    }
    return InventoryBase(
      groups: groups, known: known, dshSets: dshSets, staticHosts: try staticList(knownGroups: groups),
      policy: configuration.accept, kept: kept, state: state)
  }

  /// The known clients of `state` (none without it, or when it cannot be read: `warning` hears why).
  private func knownClients(_ state: StateDatabase?, warning: (String) -> Void) -> [KnownClient] {
    guard let state else { return [] }
    do { return try KnownClients(database: state, store: store).load(skipped: warning) } catch {
      warning("cannot read the known clients: \(error)")
      return []
    }
  }

  /// The hosts announcing `_cfi._tcp` now; throws when there is no discovery to ask (no
  /// avahi-daemon). Announcements that name no valid host are told to `warning` and skipped.
  public func discoveredClients(knownGroups: Set<GroupName>, warning: (String) -> Void) async throws -> [Host] {
    let services = try await Discovery.snapshot(ServiceType.client, for: discoveryWait, ending: .atAllForNow)
    var hosts: [Host] = []
    for service in services {
      if let host = Inventory.host(announcedBy: service, knownGroups: knownGroups) {
        hosts.append(host)
      } else {
        warning("ignoring an announcement that names no valid host: '\(service.name)' (\(service.hostName))")
      }
    }
    return hosts
  }

  /// The host `service` announces, when the inventory takes it as announced (`HostAcceptance`
  /// with this store's bindings, files and policy, as `load` decides); nil for a claim that
  /// waits for the admin or was rejected, an announcement that names no valid host, or
  /// sources that cannot be read. For a caller that follows announcements as they come
  /// (`cfi-sh watch`); it records nothing. The bindings and rejected claims are `state`'s (none
  /// when it is nil: then only the files and the policy admit a host). A `state` that cannot
  /// be read admits no one: its rejected claims would be forgotten, and admitted by the policy.
  public func acceptedHost(announcedBy service: DiscoveredService, state: StateDatabase?) -> Host? {
    let groups = Set(store.groups().compactMap(GroupName.init))
    guard let host = Inventory.host(announcedBy: service, knownGroups: groups),
      let configuration = try? ServerConfiguration.load(configurationFile),
      let staticHosts = try? staticList(knownGroups: groups)
    else { return nil }
    let clients: [KnownClient]
    let claims: [PendingHost]
    do {
      clients = try state.map { try KnownClients(database: $0, store: store).load() } ?? []
      claims = try state.map { try PendingHosts(database: $0).load() } ?? []
    } catch {
      return nil
    }
    var accepted: [HostName: Host] = [:]
    for client in clients where client.host.name == host.name {
      accepted[host.name] = client.host
      if !groups.contains(client.host.group) { accepted[host.name]?.group = .unknown }
    }
    let named = HostAcceptance.Named(
      clientList: Set(staticHosts.map(\.name)), dsh: Set(Inventory.dshGroups(in: dshDirectory).flatMap { $0.hosts.map(\.name) }))
    let rejected = Set(claims.filter(\.rejected).map(\.claim))
    let admitted = HostAcceptance.admit([host], accepted: accepted, named: named, rejected: rejected, policy: configuration.accept)
    return admitted.admitted.first
  }

  private func staticList(knownGroups: Set<GroupName>) throws(InventorySourceError) -> [Host] {
    let path = clientList ?? Self.defaultClientList
    guard clientList != nil || FileManager.default.fileExists(atPath: path) else { return [] }
    let text: String
    do { text = try TextFile.read(path) } catch { throw .unreadable(what: "client list", path: path, reason: error.reason) }
    do {
      return try Inventory.parseStaticList(text, file: path, knownGroups: knownGroups)
    } catch {
      throw .invalid(error)
    }
  }
}
