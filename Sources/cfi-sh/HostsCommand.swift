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

    func run() async throws {
      let store = Store(root: place.storeRoot)
      let known = KnownClients(store: store).load()
      var rows: [(host: Runtime.Host, source: String, lastSeen: Date?)] = []
      var seen: [String: Int] = [:]
      for client in known {
        seen[client.name] = rows.count
        rows.append((client.host, "known", client.lastSeen))
      }
      let listPath = place.clientList ?? "/etc/cfi/clients"
      if let text = try? String(contentsOfFile: listPath, encoding: .utf8) {
        do {
          for host in try Inventory.parseStaticList(text, file: listPath, knownGroups: Set(store.groups())) {
            if let index = seen[host.name] {
              rows[index].host = host
              rows[index].source = "static,known"
            } else {
              seen[host.name] = rows.count
              rows.append((host, "static", nil))
            }
          }
        } catch { throw ValidationError(error.description) }
      } else if place.clientList != nil {
        throw ValidationError("cannot read client list '\(listPath)'")
      }
      for (group, hosts) in Inventory.dshGroups(in: CFISh.setting(nil, "CFI_DSH_GROUPS") ?? Inventory.dshGroupDirectory) {
        for host in hosts where seen[host.name] == nil {
          seen[host.name] = rows.count
          rows.append((Runtime.Host(name: host.name, group: group, user: host.user), "dsh", nil))
        }
      }
      if !patterns.isEmpty {
        var selected: Set<String> = []
        for text in patterns {
          let list: [HostPattern]
          do { list = try HostPattern.parseList(text) } catch { throw ValidationError("in '\(text)': \(error.message)") }
          for pattern in list {
            if let group = pattern.groupReference {
              selected.formUnion(rows.filter { $0.host.group == group }.map(\.host.name))
            } else if let names = try? pattern.expand() {
              selected.formUnion(names)
            }
          }
        }
        rows = rows.filter { selected.contains($0.host.name) }
      }
      rows.sort { HostFolding.naturalLess($0.host.name, $1.host.name) }
      let formatter = ISO8601DateFormatter()
      if json {
        for row in rows {
          var object: [String: Any] = ["name": row.host.name, "group": row.host.group, "source": row.source]
          if let address = row.host.address { object["address"] = address }
          if let port = row.host.port { object["port"] = port }
          if let user = row.host.user { object["user"] = user }
          if let date = row.lastSeen { object["last_seen"] = formatter.string(from: date) }
          let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
          print(String(decoding: data, as: UTF8.self))
        }
        return
      }
      let table = [["NAME", "GROUP", "ADDRESS", "SOURCE", "LAST SEEN"]] + rows.map { row in
        [row.host.name, row.host.group, row.host.address ?? "-", row.source, row.lastSeen.map { formatter.string(from: $0) } ?? "-"]
      }
      let widths = (0..<5).map { column in table.map { $0[column].count }.max() ?? 0 }
      for line in table {
        print(zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
          .trimmingCharacters(in: .whitespaces))
      }
    }
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
    var names: [String]

    func validate() throws {
      if names.isEmpty { throw ValidationError("name at least one host") }
    }

    func run() async throws {
      let store = Store(root: place.storeRoot)
      let knownHosts = SSHConfiguration(store: store).knownHostsFile
      for name in names {
        var forgotten: [String] = []
        if FileManager.default.fileExists(atPath: knownHosts) {
          let process = Process()
          process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh-keygen")
          process.arguments = ["-R", name, "-f", knownHosts]
          process.standardOutput = FileHandle.nullDevice
          process.standardError = FileHandle.nullDevice
          try process.run()
          process.waitUntilExit()
          if process.terminationStatus == 0 { forgotten.append("its host key") }
          try? FileManager.default.removeItem(atPath: knownHosts + ".old")
        }
        if try KnownClients(store: store).forget(name) { forgotten.append("its known-client record") }
        print(forgotten.isEmpty ? "\(name): nothing to forget" : "\(name): forgot \(forgotten.joined(separator: " and "))")
      }
    }
  }
}
