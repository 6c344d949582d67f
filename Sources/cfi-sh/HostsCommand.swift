// `cfi-sh hosts`: the inventory — list it, forget a host.

import ArgumentParser
import CFIScript
import Foundation
import Runtime

struct HostsCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hosts",
    abstract: "List the hosts cfi-sh knows, or forget one.",
    subcommands: [List.self, Forget.self],
    defaultSubcommand: List.self)

  /// Options shared by the hosts tools.
  struct Where: ParsableArguments {
    @Option(help: ArgumentHelp("The store (default /var/lib/cfi, or CFI_STORE).", valueName: "dir"))
    var store: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("The static client list (default /etc/cfi/clients, or CFI_CLIENTS).", valueName: "file"))
    var inventory: String?

    var storeRoot: String { CFISh.setting(store, "CFI_STORE") ?? Store.defaultRoot }
    var clientList: String? { CFISh.setting(inventory, "CFI_CLIENTS") }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "list",
      abstract: "List known hosts: from the static client list and every host cfi-sh has reached.",
      discussion: """
        PATTERN selects hosts (pc[01-10], web1, @lab for a group). Columns: name, group,
        address, where the host is known from, and when cfi-sh last reached it.
        """)

    @OptionGroup var place: Where

    @Flag(help: "One JSON object per host.")
    var json = false

    @Argument(help: ArgumentHelp("Hosts to list, e.g. 'pc[01-05]' or '@lab'.", valueName: "pattern"))
    var patterns: [String] = []

    @Flag(help: "Do not browse for announced hosts (the ONLINE column is then unknown).")
    var noDiscovery = false

    func run() async throws {
      let sources = InventorySources(
        store: Store(root: place.storeRoot), clientList: place.clientList,
        dshDirectory: CFISh.setting(nil, "CFI_DSH_GROUPS") ?? Inventory.dshGroupDirectory, discovery: !noDiscovery)
      let snapshot: InventorySnapshot
      do {
        snapshot = try await sources.load { Stream.standardError.write("cfi-sh: \($0)\n") }
      } catch {
        let failure = CommandFailure(error)
        Stream.standardError.write("cfi-sh: \(failure.message)\n")
        throw ExitCode(failure.status)
      }
      let inventory = snapshot.inventory
      var entries = snapshot.entries
      do { entries = try InventoryEntry.select(entries, patterns: patterns, in: inventory) } catch { throw ValidationError(error.message) }
      entries.sort { HostFolding.naturalLess($0.host.name, $1.host.name) }
      print(HostsCommand.render(entries, json: json, discovery: !noDiscovery), terminator: "")
    }
  }

  /// The listing: a table, or one JSON object per host.
  static func render(_ entries: [InventoryEntry], json: Bool, discovery: Bool) -> String {
    let formatter = ISO8601DateFormatter()
    if json {
      return entries.map { entry in
        var object: [String: Any] = [
          "name": entry.host.name.rawValue, "group": entry.host.group.rawValue, "sources": entry.sources,
        ]
        if discovery { object["online"] = entry.online }
        if let address = entry.host.address { object["address"] = address.rawValue }
        if let port = entry.host.port { object["port"] = port }
        if let user = entry.host.user { object["user"] = user }
        if let date = entry.lastSeen { object["last_seen"] = formatter.string(from: date) }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
      }.joined()
    }
    let table = [["NAME", "GROUP", "ADDRESS", "SOURCE", "LAST SEEN", "ONLINE"]] + entries.map { entry in
      [
        entry.host.name.rawValue, entry.host.group.rawValue, entry.host.address?.rawValue ?? "-", entry.sources.joined(separator: ","),
        entry.lastSeen.map { formatter.string(from: $0) } ?? "-", discovery ? (entry.online ? "yes" : "no") : "?",
      ]
    }
    let widths = (0..<6).map { column in table.map { $0[column].count }.max() ?? 0 }
    return table.map { line in
      zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        .trimmingCharacters(in: .whitespaces) + "\n"
    }.joined()
  }

  struct Forget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "forget",
      abstract: "Forget hosts: their pinned ssh host keys and their known-client records.",
      discussion: """
        Use it when a host was reinstalled and presents a new ssh host key: cfi-sh refuses a
        changed key until the old one is forgotten; the next run pins the new key.
        """)

    @OptionGroup var place: Where

    @Argument(help: ArgumentHelp("Host names.", valueName: "name"))
    var names: [HostName]

    func validate() throws {
      if names.isEmpty { throw ValidationError("name at least one host") }
    }

    func run() async throws {
      let store = Store(root: place.storeRoot)
      let knownHosts = SSHConfiguration(store: store).knownHostsFile
      for name in names {
        var forgotten: [String] = []
        if FileManager.default.fileExists(atPath: knownHosts) {
          if try await LocalProgram.sshKeygen.run(["-R", name.rawValue, "-f", knownHosts]).succeeded {
            forgotten.append("its host key")
          }
          try? FileManager.default.removeItem(atPath: knownHosts + ".old")
        }
        if try KnownClients(store: store).forget(name) { forgotten.append("its known-client record") }
        print(forgotten.isEmpty ? "\(name): nothing to forget" : "\(name): forgot \(forgotten.joined(separator: " and "))")
      }
    }
  }
}

/// A host name on the command line is parsed once, here: `hosts forget -x` is refused, not passed on.
extension HostName: ExpressibleByArgument {
  public init?(argument: String) { self.init(argument) }
}
