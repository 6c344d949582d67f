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
      Every run browses too; this is for seeing who is there, and for cron: an accepted host
      found now stays known (and is tried) even when its announcements are missed later. A
      host that is not accepted is recorded as pending ('cfi-sh hosts --pending').
      """)

  @OptionGroup var place: HostsCommand.Where

  @Option(help: ArgumentHelp("How long to browse, e.g. 3s.", valueName: "duration"))
  var wait: String = "3s"

  @Flag(help: "One JSON object per host.")
  var json = false

  func run() async throws {
    let snapshot = try await place.load(discovery: true, wait: try parseDuration(wait, option: "--wait"))
    // The browse failed: its reason was said as the sources' warning.
    if snapshot.discoveryFailure != nil { throw ExitCode(ExitStatus.runbookError) }
    let found = snapshot.entries.filter(\.online).sorted { HostFolding.naturalLess($0.host.name, $1.host.name) }
    do { try KnownClients(store: Store(root: place.storeRoot)).remember(found.map(\.host)) } catch {
      Stream.standardError.write("cfi-sh: cannot update the known clients: \(error.localizedDescription)\n")
    }
    print(HostsCommand.render(found, json: json, discovery: true), terminator: "")
    if !json { Stream.standardError.write("\(found.count) host\(found.count == 1 ? "" : "s") found\n") }
    if let notice = snapshot.pendingNotice { Stream.standardError.write("cfi-sh: \(notice)\n") }
  }
}
