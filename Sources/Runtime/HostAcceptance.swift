// Acceptance of announced hosts, as Salt, Puppet and cfengine do it. An announcement is a
// claim anyone on the LAN can make ("I am pc07, of group lab, at this address"); a host known
// only from its claim is pending and gets nothing until it is accepted. An accepted host is
// bound to its group, address and port: a claim that differs is a pending change. This file
// is the decision only (pure); `PendingHosts` keeps the claims, `KnownClients` the bindings.

import Foundation

/// What an announcement says about a host: the binding it asks for.
public struct HostClaim: Codable, Hashable, Sendable {
  public var name: HostName
  /// The announced group, already mapped to `unknown` when the store has no such tree.
  public var group: GroupName
  public var address: HostAddress
  /// The announced sshd port; nil: 22.
  public var port: Int?

  public init(name: HostName, group: GroupName, address: HostAddress, port: Int?) {
    self.name = name
    self.group = group
    self.address = address
    self.port = port == 22 ? nil : port
  }

  /// The claim an announced host makes.
  public init(_ host: Host) {
    self.init(name: host.name, group: host.group, address: host.address ?? HostAddress(host.name), port: host.port)
  }

  /// The host it describes.
  public var host: Host { Host(name: name, group: group, address: address, port: port) }

  /// Whether the claim agrees with what `accepted` is bound to. A host accepted without an
  /// address (named in a runbook or a dsh group) is reached at whatever its name resolves to,
  /// so any address agrees; the group and the port must.
  public func agrees(with accepted: Host) -> Bool {
    group == accepted.group && port == (accepted.port == 22 ? nil : accepted.port)
      && (accepted.address == nil || accepted.address == address)
  }

  /// The claim in words: `group lab at 10.0.0.7` (the port when it is not 22).
  public var summary: String {
    "group \(group) at \(address)" + (port.map { " port \($0)" } ?? "")
  }

  /// What accepting the claim would change for `accepted`, in words (`group lab → office`).
  public func changes(from accepted: Host) -> [String] {
    var changes: [String] = []
    if group != accepted.group { changes.append("group \(accepted.group) → \(group)") }
    if let old = accepted.address, old != address { changes.append("address \(old) → \(address)") }
    let oldPort = accepted.port ?? 22
    if (port ?? 22) != oldPort { changes.append("port \(oldPort) → \(port ?? 22)") }
    return changes
  }
}

/// The decision: which announced hosts join the inventory, and which claims wait.
public enum HostAcceptance {
  /// The hosts the admin names in files (the client list, dsh groups): accepted by being
  /// written there.
  public struct Named: Sendable {
    /// Hosts of the static client list: its line is the host's binding; an announcement only
    /// fills in what the line leaves out (as name resolution would).
    public var clientList: Set<HostName>
    /// Hosts of dsh group files: accepted by name; a known binding still holds for them.
    public var dsh: Set<HostName>

    public init(clientList: Set<HostName> = [], dsh: Set<HostName> = []) {
      self.clientList = clientList
      self.dsh = dsh
    }
  }

  /// Sorts `announced` hosts: `admitted` join the inventory as announced; `pending` claims
  /// wait for `cfi-sh hosts accept` (new hosts, and changes to accepted ones). `accepted` holds
  /// the bindings of known clients; `rejected` claims are neither admitted nor pending.
  /// A name announced in two different ways is never admitted on its own, even under `auto`:
  /// one of them is not the host.
  public static func admit(
    _ announced: [Host], accepted: [HostName: Host], named: Named, rejected: Set<HostClaim>,
    policy: AcceptancePolicy
  ) -> (admitted: [Host], pending: [HostClaim]) {
    var admitted: [Host] = []
    var pending: [HostClaim] = []
    var claimsByName: [HostName: [HostClaim]] = [:]
    var order: [HostName] = []
    for host in announced {
      let claim = HostClaim(host)
      if claimsByName[host.name] == nil { order.append(host.name) }
      if !(claimsByName[host.name] ?? []).contains(claim) { claimsByName[host.name, default: []].append(claim) }
    }
    for name in order {
      let claims = claimsByName[name] ?? []
      let open = claims.filter { !rejected.contains($0) }
      if named.clientList.contains(name) {
        admitted += claims.map(\.host)
      } else if let binding = accepted[name] {
        for claim in open {
          if claim.agrees(with: binding) {
            admitted.append(claim.host)
          } else {
            pending.append(claim)
          }
        }
      } else if named.dsh.contains(name) {
        admitted += claims.map(\.host)
      } else if policy == .auto && claims.count == 1 && open.count == 1 {
        admitted += open.map(\.host)
      } else {
        pending += open
      }
    }
    return (admitted, pending)
  }
}
