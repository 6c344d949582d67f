// `cfi-sh hosts accept` and `cfi-sh hosts reject`: the admin's answer to the pending claims
// of announced hosts (Runtime's `HostAcceptance` decides what is pending; these only record
// the answer in the store's known clients and pending hosts).

import ArgumentParser
import Foundation
import Runtime

extension HostsCommand {
  /// Which pending claims a decision is about.
  struct Choice: ParsableArguments {
    @Flag(help: "Every pending host (not the rejected ones: name those).")
    var all = false

    @Option(help: ArgumentHelp("Only the claims of this group.", valueName: "group"))
    var group: GroupName?

    @Option(help: ArgumentHelp("Only the claims from this address.", valueName: "address"))
    var address: HostAddress?

    @Flag(help: "Do not browse first (decide on the claims already recorded).")
    var noDiscovery = false

    @Argument(help: ArgumentHelp("Pending hosts, e.g. 'pc07', 'pc[01-05]' or '@lab' (the claims of group lab).", valueName: "pattern"), completion: CompletionKind.pendingHosts)
    var patterns: [String] = []

    func validate() throws {
      if all == !patterns.isEmpty { throw ValidationError("name the hosts, or give --all") }
    }

    /// The claims chosen among `entries`, and why a pattern chose none. Rejected claims are
    /// chosen only by name: `--all` is about what is pending.
    func choose(from entries: [PendingHost]) throws -> (chosen: [PendingHost], failures: [String]) {
      let filtered = entries.filter { entry in
        (group == nil || entry.group == group) && (address == nil || entry.address == address)
      }
      if all { return (filtered.filter { !$0.rejected }, []) }
      var chosen: [PendingHost] = []
      var failures: [String] = []
      for pattern in patterns {
        let matched: [PendingHost]
        do { matched = try PendingHost.select(filtered, pattern: pattern) } catch { throw CommandFailure.usage(error.message) }
        if matched.isEmpty { failures.append("'\(pattern)': no pending host matches (see 'cfi-sh hosts --pending')") }
        chosen += matched.filter { !chosen.contains($0) }
      }
      return (chosen, failures)
    }

    /// Browses (unless told not to), so that the decision is about what announces itself
    /// now as well as what earlier runs recorded; returns the inventory and the claims kept.
    func refresh(_ place: Where, state: StateDatabase) async throws -> (InventorySnapshot, [PendingHost]) {
      let snapshot = try await place.load(discovery: !noDiscovery, state: state)
      do { return (snapshot, try PendingHosts(database: state).load(skipped: Stream.say)) } catch {
        throw CommandFailure(message: "cannot read the pending hosts: \(error)", status: ExitStatus.runbookError).end()
      }
    }
  }

  /// Ends the command with status 1 when some of it could not be done.
  static func finish(_ failures: [String]) throws {
    guard !failures.isEmpty else { return }
    for failure in failures { Stream.standardError.write("cfi-sh: \(failure)\n") }
    throw ExitCode(ExitStatus.runbookError)
  }

  struct Accept: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "accept",
      abstract: "Accept pending hosts: runs reach them, bound to the group, address and port they announce.",
      discussion: """
        A host announced in two ways (two groups, or two addresses) is refused: one of
        them is not the host. Pick one with --group or --address, and reject the
        other. Accepting a change to a host cfi-sh has reached before keeps its pinned
        ssh host key: if the machine was reinstalled, 'cfi-sh hosts forget NAME'
        first.
        """)

    @OptionGroup var place: Where
    @OptionGroup var choice: Choice

    func run() async throws {
      let state = try place.requiredState()
      let (snapshot, entries) = try await choice.refresh(place, state: state)
      var (chosen, failures) = try choice.choose(from: entries)
      let store = Store(root: place.storeRoot)
      var byName: [HostName: [PendingHost]] = [:]
      for entry in chosen { byName[entry.name, default: []].append(entry) }
      for name in byName.keys.sorted(by: HostFolding.naturalLess) {
        let claims = byName[name] ?? []
        guard claims.count == 1, let claim = claims.first?.claim else {
          let ways = claims.map(\.claim.summary).joined(separator: "; ")
          failures.append("\(name) is announced \(claims.count) ways (\(ways)): accept one with --group or --address")
          continue
        }
        let previous = snapshot.inventory.host(named: name)
        do {
          try KnownClients(database: state, store: store).accept(claim)
        } catch {
          failures.append("\(name): cannot record the acceptance: \(error)")
          continue
        }
        let changes = previous.map { claim.changes(from: $0) } ?? []
        print("\(name): accepted, " + (changes.isEmpty ? claim.summary : changes.joined(separator: ", ")))
      }
      try HostsCommand.finish(failures)
    }
  }

  struct Reject: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "reject",
      abstract: "Reject pending hosts: their claims are never accepted, and no longer listed as pending.",
      discussion: """
        A rejected claim stays rejected while the host announces it ('cfi-sh hosts
        --rejected' lists them). Rejecting a change to an accepted host keeps the host
        as accepted. To take a rejection back, accept the host by name, or forget it.
        """)

    @OptionGroup var place: Where
    @OptionGroup var choice: Choice

    func run() async throws {
      let state = try place.requiredState()
      let (_, entries) = try await choice.refresh(place, state: state)
      var (chosen, failures) = try choice.choose(from: entries)
      do {
        try PendingHosts(database: state).reject(chosen.map(\.claim))
        for entry in chosen.sorted(by: { HostFolding.naturalLess($0.name, $1.name) }) {
          print("\(entry.name): rejected, \(entry.claim.summary)")
        }
      } catch {
        failures.append("cannot record the rejection: \(error)")
      }
      try HostsCommand.finish(failures)
    }
  }
}

/// A group name on the command line is parsed once, here.
extension GroupName: ExpressibleByArgument {
  public init?(argument: String) { self.init(argument) }
}

/// An address on the command line is parsed once, here.
extension HostAddress: ExpressibleByArgument {
  public init?(argument: String) { self.init(argument) }
}
