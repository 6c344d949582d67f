// `cfi-sh discover`: browse once for announced clients and remember them.

import ArgumentParser
import Foundation
import Runtime

struct DiscoverCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "discover",
    abstract: "Browse for clients announcing themselves (\(ServiceType.client)) and remember them as known clients.",
    discussion: """
      Every run browses too; this is for seeing who is there, and for cron: a host found now
      stays known (and is tried) even when its announcements are missed later.
      """)

  @OptionGroup var place: HostsCommand.Where

  @Option(help: ArgumentHelp("How long to browse, e.g. 3s.", valueName: "duration"))
  var wait: String = "3s"

  @Flag(help: "One JSON object per host.")
  var json = false

  func run() async throws {
    let duration = try parseDuration(wait, option: "--wait")
    let store = Store(root: place.storeRoot)
    let sources = InventorySources(
      store: store, clientList: place.clientList, dshDirectory: Inventory.dshGroupDirectory, discovery: true,
      discoveryWait: duration)
    let hosts: [Runtime.Host]
    do {
      hosts = try await sources.discoveredClients(knownGroups: Set(store.groups().compactMap(GroupName.init))) { message in
        Stream.standardError.write("cfi-sh: \(message)\n")
      }
    } catch {
      Stream.standardError.write("cfi-sh: no discovery: \(error)\n")
      throw ExitCode(ExitStatus.runbookError)
    }
    do { try KnownClients(store: store).remember(hosts) } catch {
      Stream.standardError.write("cfi-sh: cannot update the known clients: \(error.localizedDescription)\n")
    }
    let now = Date()
    let entries = hosts.sorted { HostFolding.naturalLess($0.name, $1.name) }.map {
      InventoryEntry(host: $0, sources: ["discovered"], lastSeen: now, online: true)
    }
    print(HostsCommand.render(entries, json: json, discovery: true), terminator: "")
    if !json { Stream.standardError.write("\(hosts.count) host\(hosts.count == 1 ? "" : "s") found\n") }
  }
}
