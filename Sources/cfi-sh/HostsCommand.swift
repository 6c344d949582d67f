// `cfi-sh hosts`: the inventory — list it, forget a host.

import ArgumentParser
import CFIScript
import Foundation
import Runtime

struct HostsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hosts",
    abstract: "List the hosts cfi-sh knows; accept, reject or forget them.",
    discussion: """
      A host known only from its announcement (\(ServiceType.client)) is pending: no
      run reaches it until it is accepted. Once accepted, it is bound to its group,
      address and port; an announcement that claims others is a pending change.
      Hosts named in the client list or a dsh group are accepted by being written
      there. 'accept = auto' in \(ServerConfiguration.defaultPath) accepts new hosts
      when first seen (changes stay pending).
      """,
    subcommands: [List.self, Accept.self, Reject.self, Forget.self],
    defaultSubcommand: List.self)

  /// Options shared by the hosts tools.
  struct Where: ParsableArguments {
    @Option(help: ArgumentHelp("The store (default /var/lib/cfi, or CFI_STORE).", valueName: "dir"), completion: .directory)
    var store: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("The static client list (default /etc/cfi/clients, or CFI_CLIENTS).", valueName: "file"), completion: .file())
    var inventory: String?

    var storeRoot: String { CFISh.setting(store, "CFI_STORE") ?? Store.defaultRoot }
    var clientList: String? { CFISh.setting(inventory, "CFI_CLIENTS") }

    /// The inventory's sources as these options and the environment name them.
    func sources(discovery: Bool, wait: Duration = .seconds(3)) -> InventorySources {
      InventorySources(
        store: Store(root: storeRoot), clientList: clientList,
        dshDirectory: CFISh.setting(nil, "CFI_DSH_GROUPS") ?? Inventory.dshGroupDirectory, discovery: discovery,
        discoveryWait: wait, configurationFile: CFISh.configurationFile)
    }

    /// Loads the inventory (browsing when `discovery`, which also records what announces
    /// itself in `state`); a source that cannot be read ends the command.
    func load(discovery: Bool, wait: Duration = .seconds(3), state: StateDatabase?) async throws -> InventorySnapshot {
      do {
        return try await sources(discovery: discovery, wait: wait).load(state: state, warning: Stream.say)
      } catch {
        throw CommandFailure(error).end()
      }
    }

    /// The store's state database (what opening it imported said on stderr); nil when it
    /// cannot be opened, which is said too: a listing goes on with the other sources. None
    /// for a store that does not exist: a listing creates nothing.
    func state() -> StateDatabase? {
      guard FileManager.default.fileExists(atPath: storeRoot) else { return nil }
      do {
        let database = try StateDatabase(store: Store(root: storeRoot))
        database.notes.forEach(Stream.say)
        return database
      } catch {
        Stream.say("\(error); known clients and pending hosts left out")
        return nil
      }
    }

    /// The store's state database, for a command that exists to write it: one that cannot be
    /// opened ends the command (status 1).
    func requiredState() throws -> StateDatabase {
      do {
        let database = try StateDatabase(store: Store(root: storeRoot))
        database.notes.forEach(Stream.say)
        return database
      } catch {
        throw CommandFailure(message: "cannot record anything: \(error)", status: ExitStatus.runbookError).end()
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "list",
      abstract: "List known hosts, or the pending ones.",
      discussion: """
        PATTERN selects hosts (pc[01-10], web1, @lab for a group). Columns: name,
        group, address, where the host is known from, when cfi-sh last reached it,
        whether it announces itself now, and the fingerprint of the ssh host key its
        name is pinned to (recorded when a run reaches it or it is accepted; compare
        with 'ssh-keygen -lf' of the host's key). With --pending: the announced hosts
        waiting to be accepted (a new host, or a change to an accepted one) and since
        when.
        """)

    @OptionGroup var place: Where

    @Flag(help: "One JSON object per host.")
    var json = false

    @Flag(help: "List the announced hosts waiting for 'cfi-sh hosts accept'.")
    var pending = false

    @Flag(help: "List the claims refused with 'cfi-sh hosts reject'.")
    var rejected = false

    @Argument(help: ArgumentHelp("Hosts to list, e.g. 'pc[01-05]' or '@lab'.", valueName: "pattern"), completion: CompletionKind.hosts)
    var patterns: [String] = []

    @Flag(help: "Do not browse for announced hosts (the ONLINE column is then unknown).")
    var noDiscovery = false

    @Flag(
      help: "Only names, one a line: the hosts, then their groups as @GROUP (with --pending: the pending hosts). Never browses: for shell completion and scripts.")
    var names = false

    func run() async throws {
      let state = place.state()
      if names {
        print(try await HostsCommand.names(place, state: state, pending: pending), terminator: "")
        return
      }
      let snapshot = try await place.load(discovery: !noDiscovery, state: state)
      if pending || rejected {
        var claims = pending ? snapshot.pending : []
        if rejected, let state {
          do { claims += try PendingHosts(database: state).load().filter(\.rejected) } catch {
            Stream.say("cannot read the rejected hosts: \(error)")
          }
        }
        if !patterns.isEmpty {
          var selected: [PendingHost] = []
          for pattern in patterns {
            do { selected += try PendingHost.select(claims, pattern: pattern).filter { !selected.contains($0) } } catch {
              throw CommandFailure.usage(error.message)
            }
          }
          claims = selected
        }
        print(HostsCommand.render(claims, accepted: snapshot.inventory, json: json), terminator: "")
        return
      }
      var entries = snapshot.entries
      do { entries = try InventoryEntry.select(entries, patterns: patterns, in: snapshot.inventory) } catch {
        throw CommandFailure.usage(error.message)
      }
      entries.sort { HostFolding.naturalLess($0.host.name, $1.host.name) }
      let pins = Dictionary(entries.compactMap { entry in entry.hostKey.map { (entry.host.name, $0) } }, uniquingKeysWith: { $1 })
      let keys = await KnownHostsFile.fingerprints(of: pins) ?? [:]
      print(HostsCommand.render(entries, keys: keys, json: json, discovery: !noDiscovery), terminator: "")
      if let notice = snapshot.pendingNotice { Stream.standardError.write("cfi-sh: \(notice)\n") }
    }
  }

  /// The listing: a table, or one JSON object per host; `keys`: the fingerprints of the
  /// host keys recorded for them (`ED25519 SHA256:…`).
  static func render(_ entries: [InventoryEntry], keys: [HostName: [String]] = [:], json: Bool, discovery: Bool) -> String {
    if json {
      return entries.map { entry in
        var object: [String: Any] = [
          "name": entry.host.name.rawValue, "group": entry.host.group.rawValue, "sources": entry.sources,
        ]
        if discovery { object["online"] = entry.online }
        if let address = entry.host.address { object["address"] = address.rawValue }
        if let port = entry.host.port { object["port"] = port }
        if let user = entry.host.user { object["user"] = user }
        if let date = entry.lastSeen { object["last_seen"] = timestamp(date) }
        if let key = keys[entry.host.name] { object["host_keys"] = key }
        return jsonLine(object)
      }.joined()
    }
    return table(
      ["NAME", "GROUP", "ADDRESS", "SOURCE", "LAST SEEN", "ONLINE", "HOST KEY"],
      entries.map { entry in
        [
          entry.host.name.rawValue, entry.host.group.rawValue, entry.host.address?.rawValue ?? "-",
          entry.sources.joined(separator: ","), entry.lastSeen.map(timestamp) ?? "-",
          discovery ? (entry.online ? "yes" : "no") : "?", keys[entry.host.name]?.joined(separator: ", ") ?? "-",
        ]
      })
  }

  /// The pending listing: each claim, and what accepting it would change for the host it
  /// names when that host is already accepted (`accepted` holds the bindings).
  static func render(_ claims: [PendingHost], accepted: Inventory, json: Bool) -> String {
    func change(_ claim: PendingHost) -> [String] {
      accepted.host(named: claim.name).map { claim.claim.changes(from: $0) } ?? []
    }
    func state(_ claim: PendingHost) -> String { claim.rejected ? "rejected" : accepted.host(named: claim.name) == nil ? "new" : "change" }
    let sorted = claims.sorted { HostFolding.naturalLess($0.name, $1.name) }
    if json {
      return sorted.map { claim in
        var object: [String: Any] = [
          "name": claim.name.rawValue, "group": claim.group.rawValue, "address": claim.address.rawValue,
          "port": claim.port ?? 22, "state": state(claim), "first_seen": timestamp(claim.firstSeen),
          "last_seen": timestamp(claim.lastSeen),
        ]
        if !change(claim).isEmpty { object["changes"] = change(claim) }
        return jsonLine(object)
      }.joined()
    }
    return table(
      ["NAME", "GROUP", "ADDRESS", "PORT", "STATE", "FIRST SEEN", "LAST SEEN"],
      sorted.map { claim in
        let changes = change(claim)
        return [
          claim.name.rawValue, claim.group.rawValue, claim.address.rawValue, String(claim.port ?? 22),
          state(claim) + (changes.isEmpty ? "" : ": " + changes.joined(separator: ", ")),
          timestamp(claim.firstSeen), timestamp(claim.lastSeen),
        ]
      })
  }

  /// The `--names` listing: host names in natural order, then `@GROUP` for each of their
  /// groups, one a line; or the pending hosts' names. From the files and the state
  /// database only, so it answers at once (a completion waits on it).
  static func names(_ place: Where, state: StateDatabase?, pending: Bool) async throws -> String {
    let names: [String]
    if pending {
      let claims = (try? state.map { try PendingHosts(database: $0).load() }) ?? []
      names = Set(claims.filter { !$0.rejected }.map(\.name.rawValue)).sorted(by: HostFolding.naturalLess)
    } else {
      let hosts = try await place.load(discovery: false, state: state).entries.map(\.host)
      names = Set(hosts.map(\.name.rawValue)).sorted(by: HostFolding.naturalLess)
        + Set(hosts.map { "@" + $0.group.rawValue }).sorted()
    }
    return names.map { $0 + "\n" }.joined()
  }

  static func timestamp(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

  static func jsonLine(_ object: [String: Any]) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    return String(decoding: data, as: UTF8.self) + "\n"
  }

  /// Columns padded to their widest cell, blanks at line ends trimmed.
  static func table(_ header: [String], _ rows: [[String]]) -> String {
    let lines = [header] + rows
    let widths = header.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
    return lines.map { line in
      zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        .trimmingCharacters(in: .whitespaces) + "\n"
    }.joined()
  }

  struct Forget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "forget",
      abstract: "Forget hosts: their pinned ssh host keys, their acceptance and their pending claims.",
      discussion: """
        Use it when a host was reinstalled and presents a new ssh host key: cfi-sh
        refuses a changed key until the old one is forgotten; the next run pins the
        new key. A forgotten host that still announces itself is pending again (unless
        a file names it).
        """)

    @OptionGroup var place: Where

    @Argument(help: ArgumentHelp("Host names.", valueName: "name"), completion: CompletionKind.hosts)
    var names: [HostName]

    func validate() throws {
      if names.isEmpty { throw ValidationError("name at least one host") }
    }

    func run() async throws {
      let store = Store(root: place.storeRoot)
      let state = try place.requiredState()
      let knownHosts = SSHConfiguration(store: store).knownHostsFile
      for name in names {
        var forgotten: [String] = []
        if FileManager.default.fileExists(atPath: knownHosts) {
          if try await LocalProgram.sshKeygen.run(["-R", name.rawValue, "-f", knownHosts]).succeeded {
            forgotten.append("its host key")
          }
          try? FileManager.default.removeItem(atPath: knownHosts + ".old")
        }
        if try KnownClients(database: state, store: store).forget(name) { forgotten.append("its known-client record") }
        if try PendingHosts(database: state).remove(where: { $0.name == name }) > 0 { forgotten.append("its pending claims") }
        print(forgotten.isEmpty ? "\(name): nothing to forget" : "\(name): forgot \(forgotten.joined(separator: ", "))")
      }
    }
  }
}

/// A host name on the command line is parsed once, here: `hosts forget -x` is refused, not passed on.
extension HostName: ExpressibleByArgument {
  public init?(argument: String) { self.init(argument) }
}
