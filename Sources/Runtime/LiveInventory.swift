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

  /// An inventory its caller drives with `update` (the browse above; a caller that learns of
  /// hosts its own way; tests), starting at `initial` with the `settled` hosts.
  public init(initial: InventorySnapshot, settled: Set<HostName>) {
    state = Mutex(State(view: View(snapshot: initial, settled: settled, stage: .browsing, version: 0)))
  }

  /// What is known now.
  public var view: View { state.withLock { $0.view } }

  /// The view once it differs from version `version`: at once if it does already; the
  /// current one if the calling task is cancelled meanwhile.
  public func view(after version: Int) async -> View {
    let id = state.withLock { state -> UInt64? in
      guard state.view.version == version else { return nil }
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

  /// Stops the browse (at the end of a run): what it has not found by now is not waited for.
  public func stop() {
    state.withLock { $0.browse }?.cancel()
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
    var services: [String: DiscoveredService] = [:]
    var cacheRead = false
    func merged(failure: String? = nil) -> (snapshot: InventorySnapshot, claims: [HostClaim], names: Set<HostName>) {
      var hosts: [Host] = []
      for service in services.values.sorted(by: { $0.name < $1.name }) {
        if let host = Inventory.host(announcedBy: service, knownGroups: base.groups) { hosts.append(host) }
      }
      let (snapshot, claims) = base.merged(announced: failure == nil ? hosts : nil, discoveryFailure: failure)
      return (snapshot, claims, Set(hosts.map(\.name)))
    }
    func publish(stage: Stage) {
      let (snapshot, _, names) = merged()
      update { view in
        view.snapshot = snapshot
        view.settled.formUnion(names)
        view.stage = max(view.stage, stage)
      }
    }
    // The discovery bound: past it the browse is cancelled and what it found is all there is
    // (`stop` cancels it too, and then nothing more is said).
    let timedOut = Mutex(false)
    let timer = Task { [weak self] in
      guard (try? await Task.sleep(for: sources.discoveryWait)) != nil else { return }
      timedOut.withLock { $0 = true }
      self?.stop()
    }
    defer { timer.cancel() }
    do {
      browsing: for try await event in Discovery.browse(ServiceType.client) {
        switch event {
        case .appeared(let service), .changed(let service):
          services[service.name] = service
          // Before the cache is read the answers come in a burst: merged once, at its end.
          if cacheRead { publish(stage: .cacheRead) }
        case .gone(let name):
          services[name] = nil
        case .cacheRead:
          cacheRead = true
          publish(stage: services.isEmpty ? .browsing : .cacheRead)
        case .allForNow:
          break browsing
        }
      }
      let ended = !timedOut.withLock { $0 }
      if Task.isCancelled && ended { return }
      if !ended { warning("discovery: avahi-daemon had not answered in full after \(sources.discoveryWait.cfiText); going on with what it said") }
      for service in services.values where Inventory.host(announcedBy: service, knownGroups: base.groups) == nil {
        warning("ignoring an announcement that names no valid host: '\(service.name)' (\(service.hostName))")
      }
      let (snapshot, claims, names) = merged()
      let recorded = base.recording((snapshot, claims), warning: warning)
      update { view in
        view.snapshot = recorded
        view.settled.formUnion(names)
        view.stage = .complete
      }
      finished(recorded)
    } catch {
      if Task.isCancelled && !timedOut.withLock({ $0 }) { return }
      warning("no discovery: \(error)")
      let snapshot = merged(failure: "\(error)").snapshot
      update { view in
        view.snapshot = snapshot
        view.stage = .complete
      }
      finished(snapshot)
    }
  }
}
