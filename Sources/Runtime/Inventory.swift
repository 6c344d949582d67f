// Inventory: every host the server knows, and the named groups they form.
// Owns merging host sources and answering "which hosts are in group G / match pattern P".
// It does not discover (Discovery does) and does not connect (Transport does).

import Foundation

/// An error in an inventory source, with the line it is on.
public struct InventoryError: Error, Hashable, Sendable, CustomStringConvertible {
  public var file: String
  public var line: Int
  public var message: String
  public init(file: String, line: Int, message: String) {
    self.file = file
    self.line = line
    self.message = message
  }
  public var description: String { "\(file):\(line): error: \(message)" }
}

/// The hosts the server knows, in a stable order, plus named host sets (groups).
///
/// A host has exactly one *own* group (the one it announced or the static list gives; it
/// picks the store tree it receives). Named sets from other sources (`group` statements,
/// dsh group files) can also name hosts; `on group G` targets the union of both.
public struct Inventory: Sendable {
  /// Known hosts by name, in insertion order.
  public private(set) var hosts: [Host] = []
  private var index: [HostName: Int] = [:]
  /// Extra named sets: group name → host names, in order of definition.
  public private(set) var namedSets: [GroupName: [HostName]] = [:]

  /// An empty inventory.
  public init() {}

  /// An inventory of `hosts` (later duplicates are merged into earlier ones).
  public init(hosts: [Host]) {
    for host in hosts { add(host) }
  }

  /// Adds a host, or updates the known one of that name with the new one's details.
  public mutating func add(_ host: Host) {
    if let position = index[host.name] {
      var known = hosts[position]
      known.group = host.group
      known.address = host.address ?? known.address
      known.port = host.port ?? known.port
      known.user = host.user ?? known.user
      hosts[position] = known
    } else {
      index[host.name] = hosts.count
      hosts.append(host)
    }
  }

  /// Adds `names` to the named set `group` (creating it), keeping order and uniqueness.
  public mutating func addToGroup(_ group: GroupName, names: [HostName]) {
    var members = namedSets[group] ?? []
    var seen = Set(members)
    for name in names where seen.insert(name).inserted { members.append(name) }
    namedSets[group] = members
  }

  /// Hosts pending acceptance that announce one claim now: not in `hosts` (not in `all`,
  /// a group or an unnamed pattern), reached only when a runbook names them (`host(named:)`
  /// is nil for them, `named(_:)` is not).
  public var pending: [HostName: Host] = [:]

  /// The known host of that name.
  public func host(named name: HostName) -> Host? { index[name].map { hosts[$0] } }

  /// The host a runbook reaches when it writes `name` (`on host`, `group` statements): a
  /// known host, else a pending one as it announces itself — naming a host accepts it, as
  /// writing it in the client list does; nil: it is reached by its name alone.
  public func named(_ name: HostName) -> Host? { host(named: name) ?? pending[name] }

  /// Every group name: own groups of hosts and named sets.
  public var groupNames: Set<GroupName> {
    Set(hosts.map(\.group)).union(namedSets.keys)
  }

  /// Whether a group of that name exists here.
  public func hasGroup(_ group: GroupName) -> Bool {
    namedSets[group] != nil || hosts.contains { $0.group == group }
  }

  /// The hosts of a group: those whose own group it is, then the named set's members (a
  /// member the inventory does not know comes as a host of group `unknown`, reached by name).
  public func hosts(inGroup group: GroupName) -> [Host] {
    var result = hosts.filter { $0.group == group }
    var seen = Set(result.map(\.name))
    for name in namedSets[group] ?? [] where seen.insert(name).inserted {
      result.append(named(name) ?? Host(name: name))
    }
    return result
  }

  /// Parses a static client list: one host per line, `NAME [key=value …]` with keys
  /// `address`, `port`, `user`, `group`; `#` starts a comment. A group that is not in
  /// `knownGroups` (when given) becomes `unknown`, as the seed spec says.
  public static func parseStaticList(
    _ text: String, file: String, knownGroups: Set<GroupName>? = nil
  ) throws(InventoryError) -> [Host] {
    var result: [Host] = []
    for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
      let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
      guard let nameWord = words.first else { continue }
      func fail(_ message: String) -> InventoryError {
        InventoryError(file: file, line: number + 1, message: message)
      }
      guard let name = HostName(String(nameWord)) else { throw fail("'\(nameWord)' is not a valid host name") }
      var host = Host(name: name)
      for word in words.dropFirst() {
        let pair = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard pair.count == 2, !pair[1].isEmpty else { throw fail("expected key=value, found '\(word)'") }
        let value = String(pair[1])
        switch pair[0] {
        case "address":
          guard let address = HostAddress(value) else { throw fail("'\(value)' is not a valid host address") }
          host.address = address
        case "port":
          guard let port = Int(value), (1...65535).contains(port) else { throw fail("invalid port '\(value)'") }
          host.port = port
        case "user": host.user = value
        case "group":
          guard let group = GroupName(value) else { throw fail("invalid group name '\(value)'") }
          host.group = group
        default:
          throw fail("unknown key '\(pair[0])' (known: address, port, user, group)")
        }
      }
      if let knownGroups, !knownGroups.contains(host.group) { host.group = .unknown }
      result.append(host)
    }
    return result
  }
}

extension Inventory {
  /// Where dsh keeps its group files (dsh(1): `-g NAME` reads `/etc/dsh/group/NAME`).
  public static let dshGroupDirectory = "/etc/dsh/group"

  /// Reads dsh group files: one file per group, named after it, one host per line
  /// (`#` comments, surrounding blanks trimmed, duplicates merged, `user@host` allowed).
  /// Files whose names are not valid group names are skipped. Returns group → hosts.
  public static func dshGroups(in directory: String = Inventory.dshGroupDirectory) -> [(group: GroupName, hosts: [Host])] {
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap(GroupName.init).sorted()
    return names.compactMap { name in
      guard let text = try? String(contentsOfFile: directory + "/" + name.rawValue, encoding: .utf8) else { return nil }
      var seen: Set<HostName> = []
      var hosts: [Host] = []
      for line in text.split(whereSeparator: \.isNewline) {
        let entry = line.trimmingCharacters(in: .whitespaces)
        guard !entry.isEmpty, !entry.hasPrefix("#") else { continue }
        let parts = entry.split(separator: "@", maxSplits: 1).map(String.init)
        guard let hostName = HostName(parts.count == 2 ? parts[1] : parts[0]), seen.insert(hostName).inserted else { continue }
        hosts.append(Host(name: hostName, user: parts.count == 2 ? parts[0] : nil))
      }
      return (name, hosts)
    }
  }
}

extension Inventory {
  /// The host a `ServiceType.client` announcement describes, or nil when the announcement cannot be
  /// trusted as one (announcements are untrusted input: the name must be a plain host name,
  /// the address a host address, the group a valid group name the store knows — else `unknown`).
  public static func host(announcedBy service: DiscoveredService, knownGroups: Set<GroupName>) -> Host? {
    let advertised = service.hostName.hasSuffix(".local") ? String(service.hostName.dropLast(6)) : service.hostName
    guard let name = HostName(advertised) ?? HostName(service.name), let address = HostAddress(service.address),
      (1...65535).contains(service.port)
    else { return nil }
    let announced = service.txt["group"].flatMap { GroupName($0) }
    let group = announced.flatMap { knownGroups.contains($0) ? $0 : nil } ?? .unknown
    return Host(name: name, group: group, address: address, port: service.port == 22 ? nil : service.port)
  }
}
