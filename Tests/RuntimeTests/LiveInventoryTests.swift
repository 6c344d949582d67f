// LiveInventory and a browse's findings merged into it (`Browse`), driven by hand: which
// hosts are bound from the start, when avahi's cache counts, how the inventory completes.

import Foundation
import Synchronization
import Testing
import TestSupport

@testable import Runtime

@Suite(.timeLimit(.minutes(1))) struct LiveInventoryTests {
  /// A store with a `lab` tree, a client list and server.conf (`accept = auto`) in a scratch
  /// directory, and what its sources say without a browse.
  private func base(clientList: String, known: [Host] = []) throws -> (InventoryBase, String) {
    let root = NSTemporaryDirectory() + "cfi-live-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: root + "/store/lab", withIntermediateDirectories: true)
    try clientList.write(toFile: root + "/clients", atomically: true, encoding: .utf8)
    try "accept = auto\n".write(toFile: root + "/server.conf", atomically: true, encoding: .utf8)
    let sources = InventorySources(
      store: Store(root: root + "/store"), clientList: root + "/clients", dshDirectory: root + "/no-dsh", discovery: true,
      configurationFile: root + "/server.conf")
    return (try sources.base(state: nil), root)
  }

  private func service(_ name: String, group: String = "lab", port: Int = 22) -> DiscoveredService {
    DiscoveredService(
      name: name, hostName: "\(name).local", address: "10.9.0.\(name.suffix(1))", port: port, txt: ["group": group],
      interface: 2)
  }

  @Test func aClientListLineIsBoundOnlyWithItsAddressAndPort() throws {
    let (base, root) = try base(clientList: "pc01 address=10.9.0.1 port=22 group=lab\npc02 address=10.9.0.2 group=lab\npc03 group=lab\n")
    defer { try? FileManager.default.removeItem(atPath: root) }
    // pc02's port and pc03's address come from what they announce, if they do.
    #expect(base.bound == ["pc01"])
  }

  @Test func aWarmCacheCountsAndLaterAnswersMergeAsTheyCome() throws {
    let (base, root) = try base(clientList: "")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let live = LiveInventory(initial: base.merged(announced: nil).snapshot, settled: base.bound)
    let browse = Browse(base: base, inventory: live, warning: { _ in }, finished: { _ in })
    live.attach(browse)
    browse.found(service("pc01"))
    #expect(live.view.stage == .browsing)
    browse.cacheRead()
    #expect(live.view.stage == .cacheRead)
    #expect(live.view.inventory.hosts.map(\.name) == ["pc01"])
    browse.found(service("pc02"))
    #expect(live.view.inventory.hosts.map(\.name).sorted() == ["pc01", "pc02"])
    #expect(live.view.isSettled("pc02"))
    live.stop()
    #expect(live.view.stage == .complete)
  }

  @Test func aColdCacheIsWaitedForInFullNotUntilTheFirstAnswer() throws {
    let (base, root) = try base(clientList: "")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let live = LiveInventory(initial: base.merged(announced: nil).snapshot, settled: base.bound)
    let finished = Mutex<InventorySnapshot?>(nil)
    let browse = Browse(base: base, inventory: live, warning: { _ in }, finished: { snapshot in finished.withLock { $0 = snapshot } })
    live.attach(browse)
    browse.cacheRead()  // the cache named no host: a daemon just started
    browse.found(service("pc01"))
    #expect(live.view.stage == .browsing)
    #expect(live.view.inventory.hosts.isEmpty)
    browse.found(service("pc02"))
    browse.conclude()
    #expect(live.view.stage == .complete)
    #expect(live.view.inventory.hosts.map(\.name).sorted() == ["pc01", "pc02"])
    #expect(finished.withLock { $0 }?.inventory.hosts.count == 2)
  }

  @Test func stoppingCompletesTheInventoryWithWhatWasFoundAndWakesWaiters() async throws {
    let (base, root) = try base(clientList: "")
    defer { try? FileManager.default.removeItem(atPath: root) }
    let live = LiveInventory(initial: base.merged(announced: nil).snapshot, settled: base.bound)
    let finished = Mutex(0)
    let browse = Browse(base: base, inventory: live, warning: { _ in }, finished: { _ in finished.withLock { $0 += 1 } })
    live.attach(browse)
    browse.found(service("pc01"))
    let version = live.view.version
    let waiter = Task { await live.view(after: version) }
    live.stop()
    #expect(await waiter.value.stage == .complete)
    // Said once (the run's pending hosts and claims), however it ends.
    browse.conclude()
    #expect(finished.withLock { $0 } == 1)
    #expect(live.view.inventory.hosts.map(\.name) == ["pc01"])
  }
}
