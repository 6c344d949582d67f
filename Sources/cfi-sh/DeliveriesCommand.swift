// `cfi-sh deliveries`: what runs owe to hosts that were off (Runtime's `Deliveries`, in the
// store's state database) — list them, show one, cancel them. Rendering only: the queue's
// states and rules are Runtime's.

import ArgumentParser
import CFIScript
import Foundation
import Runtime

struct DeliveriesCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "deliveries",
    abstract: "List what runs owe to hosts that were off; show or cancel deliveries.",
    discussion: """
      'cfi-sh deliver RUNBOOK' (or --deliver, or 'set deliver = until_done' in the
      runbook) records a delivery for every targeted host it finds unreachable;
      'cfi-sh watch' runs it for that host when it comes back. States: pending (not
      made yet), running (being made now), failed (pending: its last attempt failed
      on the host; it is tried again), done, expired (past --expire), cancelled.
      """,
    subcommands: [List.self, Show.self, Cancel.self],
    defaultSubcommand: List.self)

  /// The store's queue and every delivery in it, oldest first, those past their expiry
  /// marked `expired` first so that they show as such; nil when the store has no state
  /// database yet (none is made).
  static func load(_ place: HostsCommand.Where) throws -> (queue: Deliveries, deliveries: [Delivery])? {
    let path = StateDatabase.path(store: Store(root: place.storeRoot))
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    do {
      let queue = Deliveries(database: try StateDatabase(path: path))
      // A database another process holds just now is said, and the listing goes on.
      do { try queue.expire() } catch { Stream.standardError.write("cfi-sh: cannot mark expired deliveries now: \(error)\n") }
      return (queue, try queue.list())
    } catch {
      throw CommandFailure(message: "cannot read the deliveries: \(error)", status: ExitStatus.runbookError).end()
    }
  }

  /// Says that the store has no state database (so no deliveries).
  static func noDatabase(_ place: HostsCommand.Where) -> String {
    "the store \(place.storeRoot) has no state database yet (the first run on it makes one)"
  }

  /// The deliveries of the hosts `patterns` name (`pc[01-05]`, `web1`, `@lab`: the group's
  /// hosts as `cfi-sh hosts` knows them); all of them for none.
  static func select(_ deliveries: [Delivery], hosts patterns: [String], place: HostsCommand.Where, queue: Deliveries)
    async throws -> [Delivery]
  {
    guard !patterns.isEmpty else { return deliveries }
    // A group needs the inventory; names alone do not (nor does discovery: the listing is
    // about what the queue holds, not what announces itself).
    let inventory = patterns.contains { $0.contains("@") } ? try await place.load(discovery: false, state: queue.database).inventory : Inventory()
    do {
      let names = try HostPattern.names(patterns) { inventory.hosts(inGroup: $0).map(\.name) }
      return deliveries.filter { names.contains($0.host) }
    } catch {
      throw CommandFailure.usage(error.message)
    }
  }

  // MARK: - list

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "list",
      abstract: "List deliveries: those not finished, and those finished in the last 7 days.",
      discussion: """
        Columns: the delivery's ID, its host and runbook, its state, when it was
        recorded, how many attempts were made, when the last one was and how it
        ended, and when it expires. --by-runbook sums them up per runbook as each
        run recorded it, with the hosts folded (pc[01-03]).
        """)

    @OptionGroup var place: HostsCommand.Where

    @Flag(help: "Also the deliveries finished more than 7 days ago.")
    var all = false

    @Option(
      help: ArgumentHelp(
        "Only deliveries in this state: pending, running, failed, done, expired or cancelled. Repeatable.", valueName: "state"))
    var state: [DeliveryFilter] = []

    @Option(help: ArgumentHelp("Only the deliveries of these hosts, e.g. 'pc[01-05]' or '@lab'. Repeatable.", valueName: "pattern"), completion: CompletionKind.hosts)
    var host: [String] = []

    @Flag(help: "One line per runbook recorded: counts per state, hosts folded.")
    var byRunbook = false

    @Flag(help: "One JSON object per line.")
    var json = false

    func run() async throws {
      guard let (queue, listed) = try DeliveriesCommand.load(place) else {
        Stream.standardError.write("cfi-sh: no deliveries: \(DeliveriesCommand.noDatabase(place))\n")
        return
      }
      var deliveries = DeliveriesCommand.select(listed, states: Set(state), all: all, now: Date())
      deliveries = try await DeliveriesCommand.select(deliveries, hosts: host, place: place, queue: queue)
      let rendering = DeliveriesRendering()
      print(byRunbook ? rendering.byRunbook(deliveries, json: json) : rendering.list(deliveries, json: json), terminator: "")
    }
  }

  /// How long a finished delivery is listed without `--all`.
  static let recentlyFinished: TimeInterval = 7 * 24 * 3600

  /// The deliveries a listing shows: in `states` (any for none, by `Delivery.displayState`),
  /// and unless `all`, only those not finished or finished within 7 days of `now`.
  static func select(_ deliveries: [Delivery], states: Set<DeliveryFilter>, all: Bool, now: Date) -> [Delivery] {
    deliveries.filter { delivery in
      (states.isEmpty || states.contains { $0.rawValue == delivery.displayState })
        && (all || delivery.finished.map { now.timeIntervalSince($0) <= recentlyFinished } ?? true)
    }
  }

  // MARK: - show

  struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "show",
      abstract: "Show a delivery: its state and attempts, its runbook's text and arguments.",
      discussion: """
        Password hashes in the runbook's text and arguments show as <redacted> (the
        queue keeps them: the delivery must be able to set that password).
        """)

    @OptionGroup var place: HostsCommand.Where

    @Flag(help: "As one JSON object.")
    var json = false

    @Argument(help: ArgumentHelp("The delivery's ID (see 'cfi-sh deliveries').", valueName: "id"))
    var id: Int64

    func run() async throws {
      guard let (queue, deliveries) = try DeliveriesCommand.load(place) else {
        throw CommandFailure(message: "no delivery \(id): \(DeliveriesCommand.noDatabase(place))", status: ExitStatus.runbookError)
          .end()
      }
      guard let delivery = deliveries.first(where: { $0.id == id }) else {
        throw CommandFailure(message: "no delivery \(id) (see 'cfi-sh deliveries --all')", status: ExitStatus.runbookError).end()
      }
      do {
        let shown = DeliveriesRendering().show(
          delivery, runbook: try queue.runbook(of: delivery), runs: try queue.runs(of: delivery), json: json)
        print(shown, terminator: "")
      } catch {
        throw CommandFailure(message: "cannot read delivery \(id): \(error)", status: ExitStatus.runbookError).end()
      }
    }
  }

  // MARK: - cancel

  struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "cancel",
      abstract: "Cancel pending deliveries: they are never made.",
      discussion: """
        Only a pending delivery (failed ones too) can be cancelled: one being made now
        (running) cannot, nor can one that is done, expired or cancelled. --host
        cancels every pending delivery of those hosts.
        """)

    @OptionGroup var place: HostsCommand.Where

    @Option(help: ArgumentHelp("Cancel the pending deliveries of these hosts, e.g. 'pc07' or '@lab'. Repeatable.", valueName: "pattern"), completion: CompletionKind.hosts)
    var host: [String] = []

    @Argument(help: ArgumentHelp("The deliveries' IDs (see 'cfi-sh deliveries').", valueName: "id"))
    var ids: [Int64] = []

    func validate() throws {
      if ids.isEmpty && host.isEmpty { throw ValidationError("name the deliveries (their IDs), or give --host") }
    }

    func run() async throws {
      guard let (queue, known) = try DeliveriesCommand.load(place) else {
        throw CommandFailure(message: "no deliveries: \(DeliveriesCommand.noDatabase(place))", status: ExitStatus.runbookError).end()
      }
      var chosen = ids
      var failures: [String] = []
      if !host.isEmpty {
        let matched = try await DeliveriesCommand.select(
          known.filter { $0.state == .pending }, hosts: host, place: place, queue: queue)
        if matched.isEmpty { failures.append("no pending delivery for \(host.joined(separator: " "))") }
        chosen += matched.map(\.id).filter { !chosen.contains($0) }
      }
      for id in chosen {
        guard let delivery = known.first(where: { $0.id == id }) else {
          failures.append("no delivery \(id) (see 'cfi-sh deliveries --all')")
          continue
        }
        guard delivery.state == .pending else {
          failures.append("delivery \(id) is \(delivery.state.rawValue), not pending: it cannot be cancelled")
          continue
        }
        do {
          _ = try queue.cancel(id)
          print("delivery \(id): cancelled (\(delivery.runbook) for \(delivery.host))")
        } catch {
          failures.append("cannot cancel delivery \(id): \(error.reason)")
        }
      }
      try HostsCommand.finish(failures)
    }
  }
}

/// A state a listing may ask for: the queue's states and `failed` (a pending delivery whose
/// last attempt failed on its host), as `Delivery.displayState` says them.
enum DeliveryFilter: String, CaseIterable, ExpressibleByArgument {
  case pending, running, failed, done, expired, cancelled
}

/// The deliveries as text and JSON Lines (pure: the golden tests render fixed queues).
struct DeliveriesRendering {
  /// The zone dates are shown in (the JSON's are UTC).
  var timeZone = TimeZone.current

  /// The per-host list: a table, or one JSON object per delivery.
  func list(_ deliveries: [Delivery], json: Bool) -> String {
    if json { return deliveries.map { HostsCommand.jsonLine(object($0)) }.joined() }
    guard !deliveries.isEmpty else { return "" }
    return HostsCommand.table(
      ["ID", "HOST", "RUNBOOK", "STATE", "RECORDED", "ATTEMPTS", "LAST ATTEMPT", "REASON", "EXPIRES"],
      deliveries.map { delivery in
        [
          String(delivery.id), delivery.host.rawValue, delivery.runbook, delivery.displayState, time(delivery.created),
          String(delivery.attempts), delivery.lastAttempt.map(time) ?? "-", shortened(reason(delivery) ?? "-"),
          delivery.expires.map(time) ?? "never",
        ]
      })
  }

  /// One line per recording run: its runbook, when it was recorded, how many deliveries are
  /// in each state, and the hosts folded.
  func byRunbook(_ deliveries: [Delivery], json: Bool) -> String {
    var origins: [String] = []
    var groups: [String: [Delivery]] = [:]
    for delivery in deliveries {
      if groups[delivery.origin] == nil { origins.append(delivery.origin) }
      groups[delivery.origin, default: []].append(delivery)
    }
    let rows = origins.map { origin in
      let members = groups[origin] ?? []
      let counts = DeliveryFilter.allCases.map(\.rawValue).compactMap { state in
        let count = members.filter { $0.displayState == state }.count
        return count == 0 ? nil : (state, count)
      }
      return (first: members[0], counts: counts, hosts: members.map(\.host))
    }
    if json {
      return rows.map { row in
        HostsCommand.jsonLine([
          "runbook": row.first.runbook, "origin_run": row.first.origin, "recorded": HostsCommand.timestamp(row.first.created),
          "counts": Dictionary(uniqueKeysWithValues: row.counts), "hosts": row.hosts.map(\.rawValue),
        ])
      }.joined()
    }
    guard !rows.isEmpty else { return "" }
    return HostsCommand.table(
      ["RUNBOOK", "RECORDED", "DELIVERIES", "HOSTS"],
      rows.map { row in
        [
          row.first.runbook, time(row.first.created), row.counts.map { "\($1) \($0)" }.joined(separator: ", "),
          HostFolding.foldedString(row.hosts),
        ]
      })
  }

  /// One delivery with its runbook (hashes redacted) and the runs that tried its host.
  func show(_ delivery: Delivery, runbook: DeliveryRunbook, runs: [DeliveryRun], json: Bool) -> String {
    let arguments = runbook.arguments.map(Secret.redactingHashes(in:))
    let files = runbook.files.map { (name: $0.name, text: SecretText.redactingHashes($0.text)) }
    if json {
      var record = object(delivery)
      record["arguments"] = arguments
      record["options"] = runbook.options
      record["files"] = files.map { ["name": $0.name, "text": $0.text] }
      record["runs"] = runs.map { run in
        ["run": run.run, "started": HostsCommand.timestamp(run.started), "status": run.status, "reason": run.reason as Any?]
          .compactMapValues { $0 }
      }
      return HostsCommand.jsonLine(record)
    }
    var lines = [
      "delivery \(delivery.id): \(delivery.runbook) for \(delivery.host)",
      "state:        \(delivery.displayState)" + (delivery.finished.map { " since " + time($0) } ?? ""),
      "recorded:     \(time(delivery.created)) by run \(delivery.origin)",
      "expires:      \(delivery.expires.map(time) ?? "never")",
      "attempts:     \(delivery.attempts)",
    ]
    if let last = delivery.lastAttempt {
      lines.append(
        "last attempt: \(time(last)), \(reason(delivery) ?? "-")" + (delivery.lastRun.map { " (run \($0))" } ?? ""))
    }
    if !runs.isEmpty {
      lines.append("runs:         of \(delivery.runbook) that tried \(delivery.host) since it was recorded")
      lines += runs.map { run in
        "  \(time(run.started))  \(run.status)" + (run.reason.map { ": " + $0.replacingOccurrences(of: "\n", with: " ") } ?? "")
          + "  (run \(run.run))"
      }
    }
    lines.append("arguments:    " + (arguments.isEmpty ? "none" : ShellQuote.join(arguments)))
    lines.append("options:      " + (runbook.options.isEmpty ? "none" : ShellQuote.join(runbook.options)))
    for (index, file) in files.enumerated() {
      lines.append("")
      lines.append("\(index == 0 ? "runbook" : "include") \(file.name):")
      lines += file.text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }
      if file.text.hasSuffix("\n") { lines.removeLast() }
    }
    return lines.joined(separator: "\n") + "\n"
  }

  // MARK: Pieces

  /// How the last attempt ended: `unreachable: no route to host`; nil before any.
  private func reason(_ delivery: Delivery) -> String? {
    guard let status = delivery.lastStatus else { return nil }
    return status + (delivery.lastReason.map { ": " + $0.replacingOccurrences(of: "\n", with: " ") } ?? "")
  }

  private func shortened(_ text: String) -> String {
    text.count <= 48 ? text : text.prefix(47) + "…"
  }

  private func object(_ delivery: Delivery) -> [String: Any] {
    var object: [String: Any] = [
      "id": delivery.id, "host": delivery.host.rawValue, "runbook": delivery.runbook, "origin_run": delivery.origin,
      "state": delivery.displayState, "recorded": HostsCommand.timestamp(delivery.created), "attempts": delivery.attempts,
    ]
    if let date = delivery.expires { object["expires"] = HostsCommand.timestamp(date) }
    if let date = delivery.lastAttempt { object["last_attempt"] = HostsCommand.timestamp(date) }
    if let status = delivery.lastStatus { object["last_status"] = status }
    if let reason = delivery.lastReason { object["last_reason"] = reason }
    if let run = delivery.lastRun { object["last_run"] = run }
    if let date = delivery.finished { object["finished"] = HostsCommand.timestamp(date) }
    return object
  }

  private func time(_ date: Date) -> String { TextRenderer.localTime(date, in: timeZone) }
}
