// Entry point: `cfi-sh hosts …`, `cfi-sh server …` are tools, `cfi-sh run TARGET COMMAND`
// the one-line runbook and `cfi-sh deliver RUNBOOK` a runbook that is owed to the hosts it
// finds off; anything else runs a runbook (so a runbook file named like a tool must be given
// as `./hosts`).

import ArgumentParser
import Runtime

@main
enum Main {
  static func main() async {
    // A fan-out of hundreds of hosts needs more descriptors than the usual soft limit.
    DescriptorLimit.raise()
    let arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.first == "help" {
      // `cfi-sh help hosts accept`: what `cfi-sh hosts accept --help` says.
      let rest = Array(arguments.dropFirst())
      if let first = rest.first, Tools.configuration.subcommands.contains(where: { $0._commandName == first }) {
        await Tools.main(rest + ["--help"])
      } else if rest.first == "run" {
        print(AdHocRun.usage)
      } else if rest.first == "deliver" {
        print(DeliverRun.usage)
      } else {
        await CFISh.main(["--help"])
      }
    } else if CommandTree.isAsked(by: arguments) {
      // What the man pages and the shell completion scripts are generated from.
      await CommandTree.main(arguments)
    } else if arguments.first == "run" {
      await AdHocRun.main(Array(arguments.dropFirst()))
    } else if arguments.first == "deliver" {
      await DeliverRun.main(Array(arguments.dropFirst()))
    } else if let first = arguments.first, Tools.configuration.subcommands.contains(where: { $0._commandName == first }) {
      await Tools.main(arguments)
    } else {
      await CFISh.main(arguments)
    }
  }
}

/// The administration tools next to running runbooks.
struct Tools: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cfi-sh",
    subcommands: [
      HostsCommand.self, DiscoverCommand.self, LogCommand.self, NodesetCommand.self, ServerCommand.self, ClientCommand.self, DeliveriesCommand.self,
      WatchCommand.self, ConnectionsCommand.self,
    ])
}
