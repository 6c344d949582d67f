// FleetRun: one home for "run on the fleet". Whoever runs something on the hosts (a runbook,
// the REPL's entries, later the delivery watcher) goes through it, so that the order
// inventory → audit log → store lock → run → exit status → known clients is written once.
// It knows nothing of the language: the body it runs reports how it ended as a `RunEnd`.

import Foundation
import Synchronization

/// How a run's body ended: the per-host outcomes and whether the server side stopped.
public struct RunEnd: Sendable {
  /// Per host that took part: its worst status.
  public var outcomes: [HostOutcome]
  /// A runtime error stopped the run on the server.
  public var runtimeError: Bool
  /// The operator interrupted it.
  public var interrupted: Bool
  /// How many `on` blocks ran whose target matched no host.
  public var unmatchedTargets: Int
  /// The signal (or broken stdout) that stopped the run, if one did: it decides the exit
  /// status and goes into the audit record.
  public var stopSignal: StopSignal?
  /// The run asked to be delivered to the hosts it found unreachable (`set deliver =
  /// until_done`); it is, when the run was given a `DeliveryPlan`.
  public var deliver = false

  public init(
    outcomes: [HostOutcome], runtimeError: Bool, interrupted: Bool, unmatchedTargets: Int = 0, stopSignal: StopSignal? = nil
  ) {
    self.outcomes = outcomes
    self.runtimeError = runtimeError
    self.interrupted = interrupted
    self.unmatchedTargets = unmatchedTargets
    self.stopSignal = stopSignal
  }

  /// The hosts the run reached (a failed command was still reached).
  public var reached: [Host] {
    outcomes.filter { [.ok, .changed, .failed].contains($0.status) }.map(\.host)
  }
}

/// What a run that may deliver records for the targeted hosts it finds unreachable.
public struct DeliveryPlan: Sendable {
  /// The runbook as it runs now.
  public var runbook: DeliveryRunbook
  /// How long after it is recorded (at the run's end) a delivery not yet made is given up.
  public var expiresAfter: Duration?
  /// Deliver whatever the runbook says (`cfi-sh deliver`, `--deliver`); otherwise only when
  /// the runbook asks (`RunEnd.deliver`).
  public var always: Bool

  public init(runbook: DeliveryRunbook, expiresAfter: Duration?, always: Bool) {
    self.runbook = runbook
    self.expiresAfter = expiresAfter
    self.always = always
  }
}

/// Why a run could not start.
public enum FleetRunError: Error, Sendable {
  /// Another run holds the store's lock (and this one did not wait, or waited its limit).
  case locked(store: String, holder: StoreLock.Holder?)
  /// The lock file cannot be opened.
  case lockUnavailable(String)
  /// The audit log cannot be opened and the run may not go without it.
  case auditLogUnavailable(path: String, reason: String)
}

/// The server side of every run on one store: connections, lock, audit log, known clients.
/// One per process: a runbook makes one for its run, the REPL one for its session.
public final class FleetRun: Sendable {
  /// Where the audit record of each run goes.
  public enum AuditPolicy: Sendable {
    /// No audit log (`--audit-log none`).
    case none
    /// A run does not start without its record.
    case required(path: String)
    /// A session goes on without the log when it cannot be opened, and says so once.
    case bestEffort(path: String)
  }

  /// Whether a run waits for another run's lock.
  public enum LockPolicy: Sendable {
    /// No lock: a dry run changes nothing.
    case none
    /// Wait until the lock is free, at most `limit` (nil: as long as it takes); `waiting` is
    /// told the holder first.
    case wait(limit: Duration?, waiting: @Sendable (StoreLock.Holder?) -> Void)
    /// Refuse at once.
    case noWait
  }

  public let store: Store
  /// How actions are performed on the hosts; its connections live as long as this FleetRun.
  public let executor: any StepExecutor
  private let sources: InventorySources
  private let audit: AuditPolicy
  private let notice: @Sendable (String) -> Void
  private let warning: @Sendable (String) -> Void
  /// Whether each run is recorded in the run history.
  private let recordsHistory: Bool
  /// Whether the history was pruned (`keep_history`) by this FleetRun.
  private let pruned = Mutex(false)
  /// The store's state database, opened when first needed; an open that failed is not
  /// retried for this FleetRun.
  private let stateDatabase = Mutex(StateSlot.unopened)

  private enum StateSlot {
    case unopened
    case open(StateDatabase)
    case failed
  }
  /// The notices already given (each once per FleetRun).
  private let said = Mutex<Set<Notice>>([])
  /// The pending-hosts notice last given.
  private let pendingSaid = Mutex<String?>(nil)

  private enum Notice { case auditLog, knownClients }

  /// A fleet on `store` whose actions `executor` performs. `notice` hears what the operator should
  /// know but that does not stop anything (a source that failed, a log that went missing);
  /// `warning` what they must hear even without asking (the run history not recorded).
  /// `history`: record each run in the store's run history (the state database is still
  /// used for what else it keeps: deliveries, hosts). `state`: the store's state database
  /// when the caller has it open already (one per process: `cfi-sh watch` and its runs).
  public init(
    store: Store, sources: InventorySources, executor: any StepExecutor, audit: AuditPolicy, history: Bool = true,
    state: StateDatabase? = nil, notice: @escaping @Sendable (String) -> Void = { _ in },
    warning: (@Sendable (String) -> Void)? = nil
  ) {
    self.store = store
    self.sources = sources
    self.executor = executor
    self.audit = audit
    self.notice = notice
    self.warning = warning ?? notice
    recordsHistory = history
    if let state { stateDatabase.withLock { $0 = .open(state) } }
  }

  /// The store's state database, opened once; nil when it cannot be opened (then `warning`
  /// was told why, once: the runs go on with the audit log alone, and the hosts the client
  /// list, dsh groups and discovery name). What the open imported is said to `warning` too:
  /// it happens once, and the admin must hear that the JSON files were renamed.
  public var state: StateDatabase? {
    let (database, said) = stateDatabase.withLock { slot -> (StateDatabase?, [String]) in
      switch slot {
      case .failed: return (nil, [])
      case .open(let database): return (database, [])
      case .unopened:
        do {
          let database = try StateDatabase(store: store)
          slot = .open(database)
          return (database, database.notes)
        } catch {
          slot = .failed
          return (nil, [
            "cannot use \(error); runs go on without their run history (the audit log records them) and without "
              + "the known clients (the hosts come from the client list, dsh groups and discovery)"
          ])
        }
      }
    }
    said.forEach(warning)
    return database
  }

  // MARK: - Hosts

  /// The state database for the inventory: none for a store that does not exist, so that a
  /// mistyped `--store` is said as such and nothing is created there before a run.
  private var inventoryState: StateDatabase? {
    FileManager.default.fileExists(atPath: store.root) ? state : nil
  }

  /// The merged inventory; `discovery: false` skips the browse whatever the sources say (a
  /// runbook that says `set discovery = off`).
  public func loadInventory(discovery: Bool = true) async throws(InventorySourceError) -> InventorySnapshot {
    var sources = self.sources
    sources.discovery = sources.discovery && discovery
    let snapshot = try await sources.load(state: inventoryState, warning: notice)
    tellPending(snapshot)
    return snapshot
  }

  /// The inventory of a run that starts before the browse ends: the hosts every other source
  /// names at once, and what avahi says merged in as it comes (`LiveInventory`); complete from
  /// the start when there is no browse (`discovery: false`, or sources without one), or with
  /// `whole`: the browse waited for first (`-n`, a `--limit` that names a group: a group's
  /// members must all be known before anything can be left out).
  /// `finished` hears the whole inventory once a browse is over; with `whole`, before this
  /// returns (browse or not).
  public func liveInventory(
    discovery: Bool = true, whole: Bool = false, finished: @escaping @Sendable (InventorySnapshot) -> Void = { _ in }
  ) async throws(InventorySourceError) -> LiveInventory {
    guard sources.discovery && discovery, !whole else {
      let snapshot = try await loadInventory(discovery: discovery)
      if whole { finished(snapshot) }
      return LiveInventory(complete: snapshot)
    }
    let base = try sources.base(state: inventoryState, warning: notice)
    return LiveInventory(base: base, sources: sources, warning: notice) { [self] snapshot in
      tellPending(snapshot)
      finished(snapshot)
    }
  }

  /// Says which announced hosts wait for acceptance: in every run, and in a session each
  /// time the set changes (not after every entry).
  private func tellPending(_ snapshot: InventorySnapshot) {
    let text = snapshot.pendingNotice
    let changed = pendingSaid.withLock { said in
      defer { said = text }
      return said != text
    }
    if changed, let text { notice(text) }
  }

  /// Browses now (whatever the sources say) and remembers what announces itself.
  public func discover() async throws(InventorySourceError) -> InventorySnapshot {
    var sources = self.sources
    sources.discovery = true
    let snapshot = try await sources.load(state: inventoryState, warning: notice)
    tellPending(snapshot)
    remember(snapshot.entries.filter(\.online).map(\.host))
    return snapshot
  }

  /// Adds hosts to the known clients, with the keys their names are pinned to; a database
  /// that cannot be written is a notice (said once per FleetRun: a session would repeat it
  /// after every entry), not a failure.
  public func remember(_ hosts: [Host]) {
    guard !hosts.isEmpty, let state else { return }
    do { try KnownClients(database: state, store: store).remember(hosts) } catch {
      if said.withLock({ $0.insert(.knownClients).inserted }) {
        notice("cannot update the known clients: \(error)")
      }
    }
  }

  // MARK: - Runs

  /// Runs `body` as one run: opens the audit log and takes the store's lock, runs, derives
  /// the exit status, remembers the hosts reached, writes the run's record. `arguments` and
  /// `source` (the text of a runbook without a file) go into the record (hashes redacted).
  /// Throws only when the run could not start.
  /// With a `delivery` plan, the targeted hosts found unreachable get a pending delivery
  /// (when the plan or the runbook asks), told to the sink before the run's end. `text`: the
  /// runbook's text for the run history, hashes redacted by the caller (which knows the
  /// language), when it has a file (`source` is the text of one without).
  public func run<Result>(
    arguments: [String] = [], source: String? = nil, text: String? = nil, lock: LockPolicy, delivery: DeliveryPlan? = nil, sink: any EventSink,
    _ body: (any EventSink) async -> (Result, RunEnd)
  ) async throws(FleetRunError) -> (result: Result, exitStatus: Int32, id: String) {
    // A required log first, so that a run that cannot have one fails before it waits for the
    // lock; a best-effort log after the lock, so that an entry refused by the lock opens
    // (and creates) nothing.
    let id = UUID().uuidString.lowercased()
    let log: AuditLog?
    let held: StoreLock?
    if case .required = audit {
      log = try openAuditLog(id: id, arguments: arguments, source: source)
      held = try await takeLock(lock)
    } else {
      held = try await takeLock(lock)
      log = try openAuditLog(id: id, arguments: arguments, source: source)
    }
    let history = (recordsHistory ? state : nil).map {
      RunHistory(database: $0, store: store, runID: id, arguments: arguments, source: text ?? source, warning: warning)
    }
    let records: [any EventSink] = [log as (any EventSink)?, history].compactMap { $0 }
    let stamp = RunStamp(id: id, sink: records.isEmpty ? sink : MultiplexSink([sink] + records))
    let (result, end) = await body(stamp)
    if let delivery, delivery.always || end.deliver, end.stopSignal == nil {
      recordDeliveries(delivery, run: id, outcomes: end.outcomes, sink: stamp)
    }
    let status = ExitStatus.of(end)
    stamp.finish(exitStatus: status)
    remember(end.reached)
    history?.finish(exitStatus: status, signal: end.stopSignal)
    if history != nil { pruneHistory() }
    log?.finish(exitStatus: status, signal: end.stopSignal)
    // Released last: the next run must not start while this one still closes or records.
    withExtendedLifetime(held) {}
    return (result, status, id)
  }

  /// Removes the runs older than server.conf's `keep_history` (90 days by default), once per
  /// FleetRun (a session prunes at its first entry, not at each); a failure is a warning.
  private func pruneHistory() {
    guard pruned.withLock({ pruned in defer { pruned = true }; return !pruned }), let database = state else { return }
    guard let kept = (try? ServerConfiguration.load(sources.configurationFile))?.keepHistory else { return }
    do {
      try RunHistory.prune(database, startedBefore: Date().addingTimeInterval(-TimeInterval(kept.wholeMilliseconds) / 1000))
    } catch {
      warning("cannot remove the runs older than \(kept.cfiText) from the history: \(error)")
    }
  }

  /// Records a pending delivery for each host of `outcomes` that was unreachable.
  private func recordDeliveries(_ plan: DeliveryPlan, run: String, outcomes: [HostOutcome], sink: any EventSink) {
    let hosts = outcomes.filter { $0.status == .unreachable }.map(\.host.name)
    guard !hosts.isEmpty else { return }
    let names = HostFolding.foldedString(hosts)
    guard let database = state else {
      warning("no delivery recorded for \(names): the state database cannot be used")
      return
    }
    do {
      let now = Date()
      let expires = plan.expiresAfter.map { now.addingTimeInterval(TimeInterval($0.wholeMilliseconds) / 1000) }
      try Deliveries(database: database).record(plan.runbook, hosts: hosts, origin: run, expires: expires, at: now)
      sink.emit(.deliveriesRecorded(hosts: hosts, expires: expires))
    } catch {
      warning("no delivery recorded for \(names): \(error)")
    }
  }

  /// Closes every connection (at the end of a session; a runbook's interpreter closes them
  /// itself before it reports the run finished).
  public func shutdown() async {
    await executor.shutdown()
  }

  private func openAuditLog(id: String, arguments: [String], source: String?) throws(FleetRunError) -> AuditLog? {
    let path: String
    let required: Bool
    switch audit {
    case .none: return nil
    case .required(let where_): (path, required) = (where_, true)
    case .bestEffort(let where_): (path, required) = (where_, false)
    }
    if said.withLock({ $0.contains(.auditLog) }) { return nil }
    do { return try AuditLog(path: path, runID: id, arguments: arguments, store: store.root, source: source) } catch {
      let reason = error.reason
      if required { throw .auditLogUnavailable(path: path, reason: reason) }
      said.withLock { _ = $0.insert(.auditLog) }
      notice("cannot open the audit log '\(path)': \(reason); this session runs without it")
      return nil
    }
  }

  private func takeLock(_ policy: LockPolicy) async throws(FleetRunError) -> StoreLock? {
    let limit: Duration?
    var waiting: @Sendable (StoreLock.Holder?) -> Void = { _ in }
    switch policy {
    case .none: return nil
    case .noWait: limit = .zero
    case .wait(let most, let tell): (limit, waiting) = (most, tell)
    }
    do throws(StoreLock.Failure) {
      return try await StoreLock.take(store: store, waitingAtMost: limit, waiting: waiting)
    } catch {
      switch error {
      case .busy(let holder): throw .locked(store: store.root, holder: holder)
      case .cannotOpen(let message): throw .lockUnavailable(message)
      }
    }
  }
}
