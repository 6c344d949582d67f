// A run's inventory while avahi is still browsed: the hosts the server already knows are there
// at once, and each answer of the browse merges in as it comes, so a run starts on the known
// hosts without waiting for the browse (about a second) and the hosts it finds join later.
// Which hosts may start before the browse ends, and when a block stops waiting, is the
// interpreter's decision; this type only says what is known and how sure it is.

import Foundation
import Synchronization

/// The inventory of a run whose browse is going on.
public final class LiveInventory: Sendable {
  /// How far the browse is.
  public enum Stage: Int, Comparable, Sendable {
    /// Nothing is known from avahi yet, or its cache named no host (a daemon just started, or
    /// records gone stale): what the network answers is still to come.
    case browsing
    /// avahi-daemon's cache has been read and named hosts: every host heard announcing itself
    /// within the records' lifetime is in. The network's answers may add more (rarely).
    case cacheRead
    /// The browse is over (avahi's "all for now", a failure, the discovery bound, or none).
    case complete

    public static func < (a: Stage, b: Stage) -> Bool { a.rawValue < b.rawValue }
  }

  /// What is known at one moment.
  public struct View: Sendable {
    public var snapshot: InventorySnapshot
    /// The hosts whose place in the inventory the browse can no longer change: those bound
    /// by the known clients or the client list, those it has heard announce themselves, and
    /// every host once it is complete (see `isSettled`).
    public var settled: Set<HostName>
    public var stage: Stage
    /// Grows with each change.
    public var version: Int

    public var inventory: Inventory { snapshot.inventory }

    /// Whether the browse can no longer change `name`'s host (its group, address, port).
    public func isSettled(_ name: HostName) -> Bool { stage == .complete || settled.contains(name) }
  }

  private struct State {
    var view: View
    var announced: [String: DiscoveredService] = [:]
    var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    var nextWaiter: UInt64 = 0
    var browse: Task<Void, Never>?
    var findings: Browse?
  }

  private let state: Mutex<State>

  /// An inventory that is complete from the start (no browse, or one already done).
  public init(complete snapshot: InventorySnapshot) {
    state = Mutex(State(view: View(snapshot: snapshot, settled: [], stage: .complete, version: 0)))
  }

  /// Starts browsing `sources` (for at most their `discoveryWait`) in the background, merging
  /// what it finds into `base`. `finished` is told the whole inventory once the browse is
  /// over, with the claims recorded; not when `stop` ended it first.
  public convenience init(
    base: InventoryBase, sources: InventorySources, warning: @escaping @Sendable (String) -> Void,
    finished: @escaping @Sendable (InventorySnapshot) -> Void
  ) {
    self.init(initial: base.merged(announced: nil).snapshot, settled: base.bound)
    let browse = Task { [weak self] () -> Void in
      await self?.browse(base: base, sources: sources, warning: warning, finished: finished)
    }
    state.withLock { $0.browse = browse }
  }

  /// The findings of a browse (`Browse`) merge into it; for tests of that merge.
  func attach(_ findings: Browse) {
    state.withLock { $0.findings = findings }
  }

  /// An inventory its caller drives with `update` (the browse above; a caller that learns of
  /// hosts its own way; tests), starting at `initial` with the `settled` hosts.
  public init(initial: InventorySnapshot, settled: Set<HostName>) {
    state = Mutex(State(view: View(snapshot: initial, settled: settled, stage: .browsing, version: 0)))
  }

  /// What is known now.
  public var view: View { state.withLock { $0.view } }

  /// The view once it differs from version `version`: at once if it does already, or if it
  /// is complete (it changes no more); the current one if the calling task is cancelled
  /// meanwhile.
  public func view(after version: Int) async -> View {
    let id = state.withLock { state -> UInt64? in
      guard state.view.version == version, state.view.stage != .complete else { return nil }
      defer { state.nextWaiter += 1 }
      return state.nextWaiter
    }
    guard let id else { return view }
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let resumeNow = state.withLock { state -> Bool in
          if state.view.version != version || Task.isCancelled { return true }
          state.waiters[id] = continuation
          return false
        }
        if resumeNow { continuation.resume() }
      }
    } onCancel: {
      state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
    }
    return view
  }

  /// Stops the browse (at the end of a run): what it found by now completes the inventory
  /// (its claims recorded, the pending hosts said), what it has not is not waited for.
  public func stop() {
    let (task, findings) = state.withLock { ($0.browse, $0.findings) }
    findings?.conclude()
    task?.cancel()
  }

  /// Changes the view (its version grows) and wakes every waiter.
  public func update(_ change: (inout View) -> Void) {
    let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
      change(&state.view)
      state.view.version += 1
      defer { state.waiters.removeAll() }
      return Array(state.waiters.values)
    }
    waiters.forEach { $0.resume() }
  }

  private func browse(
    base: InventoryBase, sources: InventorySources, warning: @escaping @Sendable (String) -> Void,
    finished: @escaping @Sendable (InventorySnapshot) -> Void
  ) async {
    let browse = Browse(base: base, inventory: self, warning: warning, finished: finished)
    attach(browse)
    // The discovery bound: past it the inventory is complete with what the browse found, even
    // when avahi does not answer at all (a daemon that hangs holds libavahi-client's calls for
    // D-Bus's 25 s).
    let timer = Task { [weak self] in
      guard (try? await Task.sleep(for: sources.discoveryWait)) != nil else { return }
      warning("discovery: avahi-daemon had not answered in full after \(sources.discoveryWait.cfiText); going on without the rest")
      self?.stop()
    }
    defer { timer.cancel() }
    do {
      browsing: for try await event in Discovery.browse(ServiceType.client) {
        switch event {
        case .appeared(let service), .changed(let service):
          browse.found(service)
        case .gone(let name):
          browse.lost(name)
        case .cacheRead:
          browse.cacheRead()
        case .allForNow:
          break browsing
        }
      }
      // Cancelled by `stop` (the run is over: nothing more to say) or the bound (said).
      if !Task.isCancelled { browse.conclude() }
    } catch {
      if !Task.isCancelled { browse.conclude(failure: "\(error)") }
    }
  }
}

/// One browse's findings, merged into its `LiveInventory` as they come, and concluded once:
/// at avahi's "all for now", a failure, or the discovery bound, whichever is first.
final class Browse: Sendable {
  private struct State {
    var services: [String: DiscoveredService] = [:]
    /// avahi's cache has been read and named at least one host: the network's answers are
    /// merged as they come. (A cache that named none is a daemon just started, or records
    /// gone stale: every block waits for the network's answers in full, not for the first.)
    var cacheNamedHosts = false
    var concluded = false
  }

  private let base: InventoryBase
  private let inventory: LiveInventory
  private let warning: @Sendable (String) -> Void
  private let finished: @Sendable (InventorySnapshot) -> Void
  private let state = Mutex(State())

  init(
    base: InventoryBase, inventory: LiveInventory, warning: @escaping @Sendable (String) -> Void,
    finished: @escaping @Sendable (InventorySnapshot) -> Void
  ) {
    self.base = base
    self.inventory = inventory
    self.warning = warning
    self.finished = finished
  }

  func found(_ service: DiscoveredService) {
    // Before the cache is read the answers come in a burst: merged once, at its end.
    let publish = state.withLock { state in
      state.services[service.name] = service
      return state.cacheNamedHosts && !state.concluded
    }
    if publish { self.publish(.cacheRead) }
  }

  func lost(_ name: String) {
    state.withLock { _ = $0.services.removeValue(forKey: name) }
  }

  func cacheRead() {
    let named = state.withLock { state in
      state.cacheNamedHosts = !state.services.isEmpty
      return state.cacheNamedHosts
    }
    if named { publish(.cacheRead) }
  }

  /// Completes the inventory (once): with what was found, its claims recorded; with a
  /// failure, from the other sources alone.
  func conclude(failure: String? = nil) {
    guard let services = state.withLock({ state -> [DiscoveredService]? in
      defer { state.concluded = true }
      return state.concluded ? nil : Array(state.services.values)
    }) else { return }
    let snapshot: InventorySnapshot
    var names: Set<HostName> = []
    if let failure {
      warning("no discovery: \(failure)")
      snapshot = base.merged(announced: nil, discoveryFailure: failure).snapshot
    } else {
      for service in services where Inventory.host(announcedBy: service, knownGroups: base.groups) == nil {
        warning("ignoring an announcement that names no valid host: '\(service.name)' (\(service.hostName))")
      }
      let hosts = self.hosts(services)
      names = Set(hosts.map(\.name))
      snapshot = base.recording(base.merged(announced: hosts), warning: warning)
    }
    inventory.update { view in
      view.snapshot = snapshot
      view.settled.formUnion(names)
      view.stage = .complete
    }
    finished(snapshot)
  }

  /// Merges what was found so far into the inventory, at `stage` (or later).
  private func publish(_ stage: LiveInventory.Stage) {
    let services = state.withLock { Array($0.services.values) }
    let hosts = hosts(services)
    let snapshot = base.merged(announced: hosts).snapshot
    inventory.update { view in
      guard view.stage != .complete else { return }
      view.snapshot = snapshot
      view.settled.formUnion(hosts.map(\.name))
      view.stage = max(view.stage, stage)
    }
  }

  /// The hosts `services` announce, in name order (announcements that name none left out).
  private func hosts(_ services: [DiscoveredService]) -> [Host] {
    services.sorted { $0.name < $1.name }.compactMap { Inventory.host(announcedBy: $0, knownGroups: base.groups) }
  }
}
