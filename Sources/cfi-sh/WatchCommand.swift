// `cfi-sh watch`: the delivery watcher as a service (or one pass for cron). The watching is
// the Runtime's `DeliveryWatcher`; here: its options, each delivery's run (a runbook run as
// `cfi-sh` would make it, from the delivery's stored texts), the log lines, the signals.

import ArgumentParser
import Foundation
import Runtime
import Synchronization

struct WatchCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "watch",
    abstract: "Run the deliveries owed to hosts that were off, when they come back.",
    discussion: """
      A run with --deliver records, for each targeted host it finds
      unreachable, a pending delivery: the runbook as it ran, to run again
      for that host alone. watch runs them. It browses for clients announcing
      themselves (\(ServiceType.client)); when a host with pending deliveries
      announces itself, and the inventory accepts it as it announces itself
      (never a claim pending acceptance or rejected), its deliveries run at
      once, oldest first. A host that stays silent is tried every
      --retry-interval all the same (it may be up without announcing).

      Each delivery is a normal run limited to its host: the store's lock,
      the audit log, the run history; the store's files as they are now; the
      run options of this command line, with the delivery's own recorded ones
      (--timeout, --parallel, ...) on top. The deliveries of one run that are
      due for several hosts at once go as one run. A delivery that succeeded
      (its host ok or changed) is done and never runs again. One that failed
      on its host, or could not run, stays pending with its reason and waits
      the retry interval whatever the host announces; one whose host was
      unreachable is tried again at the host's next announcement. A host
      stops at its first delivery not done: its later ones wait for it.
      Deliveries past their expiry (--expire) are given up. Several watchers
      on one store never run a delivery twice; a watcher restarted takes over
      the deliveries a killed one was running.

      --once is one pass for cron: every host with pending deliveries is
      tried once (the delivery's run browses as every run does), then watch
      exits; the cron interval is then the retry interval.

      OUTPUT
        One line per attempt on standard output: host, delivery, runbook,
        what started it (announced, retry, once), outcome, run id:
          pc08: delivery 12 (site.cfi, announced): done, run 20261206T2140...
        and one per delivery given up (expired). --json: one JSON object a
        line instead (docs/json-events.md). The watcher's own troubles (no
        avahi-daemon: browsed again with backoff while silent hosts are still
        tried; the state database busy) go to standard error.

      SIGNALS
        SIGTERM and SIGINT stop it: a delivery running is interrupted as a
        run is (remote commands killed, the run recorded), and is pending
        again; a second signal quits at once.

      EXIT STATUS
        0    --once: every delivery tried is done, or waits for a host
             still off
        1    --once: a delivery could not run (its runbook, the lock, the
             state database), or its result could not be recorded; or the
             state database cannot be opened
        2    --once: a delivery failed on its host (it stays pending)
        64   command-line usage error
        130, 143
             stopped by SIGINT or SIGTERM
      """)

  @Flag(help: "One pass, for cron: try every host with pending deliveries once, then exit.")
  var once = false

  @Option(help: ArgumentHelp("How often a silent host, or a delivery that failed, is tried again (default 10m).", valueName: "duration"))
  var retryInterval: String = "10m"

  @Flag(help: "One JSON object per attempt on standard output.")
  var json = false

  @Flag(name: .shortAndLong, help: "Log only deliveries that failed, could not run, or expired.")
  var quiet = false

  @Flag(name: .shortAndLong, help: "Also show each delivery's run as a runbook run shows it.")
  var verbose = false

  @Option(help: ArgumentHelp("The store (default /var/lib/cfi, or CFI_STORE).", valueName: "dir"))
  var store: String?

  @Option(name: .shortAndLong, help: ArgumentHelp("The static client list (default /etc/cfi/clients, or CFI_CLIENTS).", valueName: "file"))
  var inventory: String?

  @Option(help: ArgumentHelp("The server's ssh key (default /etc/cfi/id_ed25519, or CFI_IDENTITY).", valueName: "file"))
  var identity: String?

  @Option(help: ArgumentHelp("An ssh_config file for ssh and rsync (or CFI_SSH_CONFIG).", valueName: "file"))
  var sshConfig: String?

  @Option(help: ArgumentHelp("The audit log (default /var/log/cfi/audit.log, or CFI_AUDIT_LOG; 'none' to disable).", valueName: "file"))
  var auditLog: String?

  @Option(name: [.customShort("p"), .long], help: ArgumentHelp("Hosts worked on at once (default 64).", valueName: "n"))
  var parallel: Int?

  @Option(help: ArgumentHelp("Limit per step on a host (default 1h).", valueName: "duration"))
  var timeout: String?

  @Option(help: ArgumentHelp("Limit for connecting to a host (default 10s).", valueName: "duration"))
  var connectTimeout: String?

  @Option(help: ArgumentHelp("Limit for a host to come back from 'reboot' (default 10m).", valueName: "duration"))
  var rebootTimeout: String?

  @Option(help: ArgumentHelp("How long a delivery waits for another run's lock on the store (default 10m).", valueName: "duration"))
  var lockWait: String?

  func validate() throws {
    if quiet && verbose { throw ValidationError("--quiet and --verbose exclude each other") }
    if json && verbose { throw ValidationError("--json and --verbose exclude each other") }
    if try parseDuration(retryInterval, option: "--retry-interval") <= .zero {
      throw ValidationError("--retry-interval must be more than 0s")
    }
    // The run options are checked as a run checks them, once, here.
    do { _ = try CFISh.parse(runWords) } catch { throw ValidationError(CFISh.message(for: error)) }
  }

  /// This command line's options for each delivery's run, as cfi-sh's words.
  var runWords: [String] {
    var words: [String] = []
    let values: [(String, String?)] = [
      ("--store", store), ("-i", inventory), ("--identity", identity), ("--ssh-config", sshConfig), ("--audit-log", auditLog),
      ("--parallel", parallel.map(String.init)), ("--timeout", timeout), ("--connect-timeout", connectTimeout),
      ("--reboot-timeout", rebootTimeout), ("--lock-wait", lockWait),
    ]
    for case (let option, let value?) in values { words += [option, value] }
    if verbose { words.append("-v") }
    return words
  }

  func run() async throws {
    let base = try CFISh.parse(runWords)
    guard FileManager.default.fileExists(atPath: base.storeRoot) else {
      throw CommandFailure.usage("the store '\(base.storeRoot)' does not exist (--store, CFI_STORE)")
    }
    let database: StateDatabase
    do { database = try StateDatabase(store: Store(root: base.storeRoot)) } catch {
      throw CommandFailure(message: "cannot watch: \(error)", status: ExitStatus.runbookError).end()
    }
    let interval = try parseDuration(retryInterval, option: "--retry-interval")
    let signals = StopSignals.shared
    signals.start()
    let stopper = Stopper()
    let log = WatchLog(json: json, quiet: quiet, retryInterval: interval)
    let sources = InventorySources(
      store: Store(root: base.storeRoot), clientList: base.clientList, dshDirectory: base.dshGroupDirectory, discovery: true,
      configurationFile: CFISh.configurationFile)
    let words = runWords
    let watcher = DeliveryWatcher(
      deliveries: Deliveries(database: database), retryInterval: interval,
      announcements: { Discovery.browse(ServiceType.client) },
      accept: { sources.acceptedHost(announcedBy: $0, state: database)?.name },
      run: { runbook, hosts in
        defer { signals.idle(stop: stopper.stop) }
        return await WatchCommand.deliver(
          runbook, to: hosts, words: words, quietRun: !verbose, signals: signals, state: database)
      },
      report: { log.write($0) })
    if !once && !quiet {
      Stream.standardError.write(
        "cfi-sh watch: watching for hosts with pending deliveries on \(base.storeRoot) (silent hosts tried every \(interval.cfiText))\n")
    }
    let task = Task<DeliveryPassSummary, Never> {
      if once { return await watcher.once() }
      await watcher.watch()
      return DeliveryPassSummary()
    }
    stopper.set(task)
    signals.idle(stop: stopper.stop)
    let summary = await task.value
    if let signal = signals.received { throw ExitCode(signal.exitStatus) }
    if summary.notRun > 0 || summary.unsettled > 0 { throw ExitCode(ExitStatus.runbookError) }
    if summary.failed > 0 { throw ExitCode(ExitStatus.hostsFailed) }
  }

  /// Runs one delivery batch as `cfi-sh` runs a runbook: this command line's options, then
  /// the delivery's own.
  static func deliver(
    _ runbook: DeliveryRunbook, to hosts: [HostName], words: [String], quietRun: Bool, signals: StopSignals,
    state: StateDatabase
  ) async -> DeliveryRunResult {
    let finished: RunbookRunner.Finished
    do {
      let options = try CFISh.parse(words + runbook.options)
      finished = try await RunbookRunner(
        options: options, delivery: (runbook, hosts), sink: quietRun ? MultiplexSink([]) : nil, state: state
      ).runReporting()
    } catch {
      return DeliveryRunResult(run: nil, outcomes: [:], failure: CFISh.message(for: error), stopped: signals.received != nil)
    }
    var outcomes: [HostName: DeliveryAttempt] = [:]
    for outcome in finished.outcomes {
      outcomes[outcome.host.name] = DeliveryAttempt(
        status: outcome.status, reason: outcome.message ?? outcome.reason?.rawValue, run: finished.run)
    }
    let failure = finished.failure ?? (finished.run == nil ? "it did not run (exit status \(finished.exitStatus))" : nil)
    return DeliveryRunResult(run: finished.run, outcomes: outcomes, failure: failure, stopped: signals.received != nil)
  }
}

/// Stops the watcher's task when a signal comes between runs.
private final class Stopper: Sendable {
  private let task = Mutex<Task<DeliveryPassSummary, Never>?>(nil)

  func set(_ task: Task<DeliveryPassSummary, Never>) { self.task.withLock { $0 = task } }

  @Sendable func stop(_ signal: StopSignal) { task.withLock { $0?.cancel() } }
}

/// The watcher's log: one line (or JSON object) per attempt on standard output; its own
/// problems on standard error (a browse failing again for the same reason said once).
private final class WatchLog: Sendable {
  let json: Bool
  let quiet: Bool
  let retryInterval: Duration
  private let discoveryFailure = Mutex<String?>(nil)

  init(json: Bool, quiet: Bool, retryInterval: Duration) {
    self.json = json
    self.quiet = quiet
    self.retryInterval = retryInterval
  }

  func write(_ event: DeliveryWatchEvent) {
    switch event {
    case .attempt(let attempt):
      if quiet && (attempt.done || ["unreachable", "interrupted"].contains(attempt.status)) { return }
      Stream.standardOutput.write(json ? Self.json(attempt) : line(attempt))
    case .expired(let deliveries):
      for delivery in deliveries { Stream.standardOutput.write(json ? Self.json(delivery) : line(delivery)) }
    case .recovered(let count):
      Stream.standardError.write(
        "cfi-sh watch: \(count) deliver\(count == 1 ? "y" : "ies") of a process that died while running \(count == 1 ? "it is" : "them are") pending again\n")
    case .discoveryFailed(let reason, let retry):
      guard discoveryFailure.withLock({ said in defer { said = reason }; return said != reason }) else { return }
      Stream.standardError.write(
        "cfi-sh watch: no discovery: \(reason); browsing again in \(retry.cfiText), then less and less often up to every "
          + "\(DeliveryWatcher.maximumBackoff.cfiText) (silent hosts are still tried every \(retryInterval.cfiText))\n")
    case .discoveryResumed:
      discoveryFailure.withLock { $0 = nil }
      Stream.standardError.write("cfi-sh watch: discovery works again\n")
    case .databaseFailed(let reason):
      Stream.standardError.write("cfi-sh watch: \(reason); trying again\n")
    case .claimLost(let delivery, let host):
      Stream.standardError.write(
        "cfi-sh watch: \(host): delivery \(delivery) was taken back while it ran (its claim deemed abandoned); "
          + "this attempt is not recorded\n")
    case .unsettled(let deliveries):
      let ids = deliveries.map(String.init).joined(separator: ", ")
      Stream.standardError.write(
        "cfi-sh watch: the result of deliver\(deliveries.count == 1 ? "y" : "ies") \(ids) could not be recorded; "
          + "\(deliveries.count == 1 ? "it runs" : "they run") again once the next watcher takes \(deliveries.count == 1 ? "it" : "them") back\n")
    }
  }

  private func line(_ attempt: DeliveryAttemptReport) -> String {
    let head = "\(attempt.host): delivery \(attempt.delivery) (\(attempt.runbook), \(attempt.trigger.rawValue)): "
    let run = attempt.run.map { ", run \($0)" } ?? ""
    if attempt.done { return head + "done" + run + "\n" }
    let reason = attempt.reason.map { ": " + Self.oneLine($0) } ?? ""
    let next =
      DeliveryWatcher.holdsBack(attempt.status)
      ? "pending, tried again in \(retryInterval.cfiText)" : "pending, tried again when it announces itself or in \(retryInterval.cfiText)"
    return head + attempt.status + reason + "; " + next + run + "\n"
  }

  private func line(_ delivery: Delivery) -> String {
    let attempts = "\(delivery.attempts) attempt\(delivery.attempts == 1 ? "" : "s")"
    return "\(delivery.host): delivery \(delivery.id) (\(delivery.runbook)): expired, not delivered by "
      + "\(delivery.expires.map(HostsCommand.timestamp) ?? "its expiry") (\(attempts))\n"
  }

  private static func json(_ delivery: Delivery) -> String {
    var object: [String: Any] = [
      "event": "delivery_expired", "delivery": delivery.id, "host": delivery.host.rawValue, "runbook": delivery.runbook,
      "state": "expired", "attempts": delivery.attempts, "time": HostsCommand.timestamp(Date()),
    ]
    if let expires = delivery.expires { object["expires"] = HostsCommand.timestamp(expires) }
    return HostsCommand.jsonLine(object)
  }

  private static func json(_ attempt: DeliveryAttemptReport) -> String {
    var object: [String: Any] = [
      "event": "delivery_attempt", "delivery": attempt.delivery, "host": attempt.host.rawValue, "runbook": attempt.runbook,
      "trigger": attempt.trigger.rawValue, "status": attempt.status, "state": attempt.done ? "done" : "pending",
      "time": HostsCommand.timestamp(Date()),
    ]
    if let reason = attempt.reason { object["reason"] = reason }
    if let run = attempt.run { object["run"] = run }
    return HostsCommand.jsonLine(object)
  }

  private static func oneLine(_ text: String) -> String {
    text.split(whereSeparator: \.isNewline).joined(separator: " ")
  }
}
