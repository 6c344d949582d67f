// `cfi-sh nodeset`: host sets on the command line, as ClusterShell's nodeset does — expand
// `pc[01-05]`, fold a list of names back, count them — in the language's own pattern syntax
// (Runtime's HostPattern and HostFolding), so what it prints is what a runbook would target.

import ArgumentParser
import Foundation
import Runtime

struct NodesetCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "nodeset",
    abstract: "Expand, fold or count sets of hosts (pc[01-10], @lab).",
    discussion: """
      SET is a host pattern or a comma list of them, as in runbooks: pc[01-10],
      web1, rack[1-2]-n[01-04], @lab (the hosts of group lab, from the inventory).
      With no SET, the sets are read from standard input (blank-separated). Names
      are taken once each; the result is in natural order.

        cfi-sh nodeset -e 'pc[01-03]'          pc01 pc02 pc03
        cfi-sh nodeset -f pc01 pc02 pc03 pc05  pc[01-03,05]
        cfi-sh nodeset -c @lab -x pc03         the number of lab hosts but pc03
      """)

  @Flag(name: [.customShort("e"), .customLong("expand")], help: "Print every name.")
  var expand = false

  @Flag(name: [.customShort("f"), .customLong("fold")], help: "Print the names folded into patterns.")
  var fold = false

  @Flag(name: [.customShort("c"), .customLong("count")], help: "Print how many names.")
  var count = false

  @Option(name: [.customShort("x"), .customLong("exclude")], help: ArgumentHelp("Leave these hosts out.", valueName: "set"), completion: CompletionKind.hosts)
  var exclude: [String] = []

  @Option(
    name: [.customShort("S"), .customLong("separator")],
    help: ArgumentHelp("Between names (default: a space) or patterns (default: a comma).", valueName: "text"))
  var separator: String?

  @OptionGroup var place: HostsCommand.Where

  @Flag(help: "Resolve @group from the files and the store only, without browsing for announced hosts.")
  var noDiscovery = false

  @Argument(help: ArgumentHelp("Host sets.", valueName: "set"), completion: CompletionKind.hosts)
  var sets: [String] = []

  func validate() throws {
    if [expand, fold, count].filter({ $0 }).count != 1 { throw ValidationError("give one of -e, -f, -c") }
  }

  func run() async throws {
    var words = sets
    if words.isEmpty {
      while let line = readLine() { words += line.split(whereSeparator: \.isWhitespace).map(String.init) }
    }
    // The inventory only when a group is named: expanding plain patterns stays instant.
    let inventory = (words + exclude).contains { $0.contains("@") }
      ? try await place.load(discovery: !noDiscovery, state: place.state()).inventory : Inventory()
    let members = { (group: GroupName) in inventory.hosts(inGroup: group).map(\.name) }
    let names: [HostName]
    do {
      let excluded = try HostPattern.names(exclude, members: members)
      names = try HostPattern.names(words, members: members).subtracting(excluded).sorted(by: HostFolding.naturalLess)
    } catch {
      throw CommandFailure.usage(error.message)
    }
    if count {
      print(names.count)
    } else if expand {
      print(names.map(\.rawValue).joined(separator: separator ?? " "))
    } else {
      print(HostFolding.fold(names.map(\.rawValue)).joined(separator: separator ?? ","))
    }
  }
}
