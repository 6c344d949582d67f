// `cfi-sh discover`: browse once for announced clients; remember the accepted ones, record
// the others as pending.

import ArgumentParser
import Foundation
import Runtime

struct DiscoverCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "discover",
    abstract: "Browse for clients announcing themselves (\(ServiceType.client)); remember the accepted ones.",
    discussion: """
      Every run browses too; this is for seeing who is there, and for cron: an
      accepted host found now stays known (and is tried) even when its announcements
      are missed later. A host that is not accepted is recorded as pending ('cfi-sh
      hosts --pending').
      """)

  @OptionGroup var place: HostsCommand.Where

  @Option(help: ArgumentHelp("How long to browse, e.g. 3s.", valueName: "duration"))
  var wait: String = "3s"

  @Flag(help: "One JSON object per host.")
  var json = false

  func run() async throws {
    let state = place.state()
    let snapshot = try await place.load(discovery: true, wait: try parseDuration(wait, option: "--wait"), state: state)
    // The browse failed: its reason was said as the sources' warning.
    if snapshot.discoveryFailure != nil { throw ExitCode(ExitStatus.runbookError) }
    let found = snapshot.entries.filter(\.online).sorted { HostFolding.naturalLess($0.host.name, $1.host.name) }
    if let state {
      do { try KnownClients(database: state, store: Store(root: place.storeRoot)).remember(found.map(\.host)) } catch {
        Stream.say("cannot update the known clients: \(error)")
      }
    }
    // The accepted hosts, then the claims waiting for the admin (JSON: theirs have a "state").
    let pending = HostsCommand.render(snapshot.pending, accepted: snapshot.inventory, json: json)
    if json {
      print(HostsCommand.render(found, json: true, discovery: true) + pending, terminator: "")
      return
    }
    if !found.isEmpty { print(HostsCommand.render(found, json: false, discovery: true), terminator: "") }
    if !snapshot.pending.isEmpty {
      print((found.isEmpty ? "" : "\n") + "pending acceptance ('cfi-sh hosts accept NAME'):\n" + pending, terminator: "")
    }
    let hosts = "\(found.count) accepted host\(found.count == 1 ? "" : "s") found"
    Stream.standardError.write(hosts + (snapshot.pending.isEmpty ? "" : ", \(Set(snapshot.pending.map(\.name)).count) pending") + "\n")
  }
}
