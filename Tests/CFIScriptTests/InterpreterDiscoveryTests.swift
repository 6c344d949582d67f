// Interpreter tests: blocks that start while avahi is still browsed (`RunOptions.discovery`).
// The browse is a `LiveInventory` the test drives from inside the run (a responder, or an
// observer of the run's events), so each step happens at a known point, without sleeps.

import CFIScript
import CFISyntax
import Runtime
import Synchronization
import Testing
import TestSupport

@Suite("Interpreter: blocks during discovery", .timeLimit(.minutes(1)))
struct InterpreterDiscoveryTests {
  /// pc01–pc03 of the test fleet, bound (known clients or the client list): the browse
  /// cannot change them.
  let bound: Set<HostName> = ["pc01", "pc02", "pc03"]

  func inventory(_ hosts: [(String, GroupName)]) -> InventorySnapshot {
    let hosts = hosts.map { Runtime.Host(name: HostName($0.0)!, group: $0.1) }
    return InventorySnapshot(inventory: Inventory(hosts: hosts), entries: hosts.map { InventoryEntry(host: $0, sources: ["known"]) })
  }

  var known: [(String, GroupName)] { [("pc01", "lab"), ("pc02", "lab"), ("pc03", "lab")] }

  /// Says the browse is over, having found `found` too.
  func complete(_ live: LiveInventory, adding found: [(String, GroupName)]) {
    live.update { view in
      view.snapshot = inventory(known + found)
      view.settled.formUnion(found.map { HostName($0.0)! })
      view.stage = .complete
    }
  }

  @Test func knownHostsStartBeforeTheBrowseAnswersAndFoundOnesJoin() async throws {
    let live = LiveInventory(initial: inventory(known), settled: bound)
    let stageAtFirstCall = Mutex<LiveInventory.Stage?>(nil)
    let outcome = try await run(#"on all < run "x" >"#, inventory: live.view.inventory, discovery: live, responder: { _, host in
      // The first host runs while avahi has said nothing; it then finds pc04.
      if host.name == "pc01" {
        stageAtFirstCall.withLock { $0 = live.view.stage }
        complete(live, adding: [("pc04", "lab")])
      }
      return StepResult(status: .ok)
    })
    #expect(stageAtFirstCall.withLock { $0 } == .browsing)
    #expect(outcome.hostNames == ["pc01", "pc02", "pc03", "pc04"])
    #expect(outcome.touchedHosts == ["pc01", "pc02", "pc03", "pc04"])
    let said = outcome.log.events.compactMap { event -> String? in
      switch event {
      case .blockStarted(let info): "started \(info.hosts.map(\.name.rawValue))"
      case .hostsJoined(_, let hosts): "joined \(hosts.map(\.name.rawValue))"
      default: nil
      }
    }
    #expect(said == [#"started ["pc01", "pc02", "pc03"]"#, #"joined ["pc04"]"#])
  }

  @Test func aHostTheBrowseMayStillMoveWaitsAndAnExceptHolds() async throws {
    // pc05 is in the inventory as lab (a dsh group, say) but not bound: the browse says it
    // is an office host, which the target leaves out. It must never start.
    let live = LiveInventory(initial: inventory(known + [("pc05", "lab")]), settled: bound)
    let outcome = try await run(#"on all except @office < run "x" >"#, inventory: live.view.inventory, discovery: live, responder: { _, host in
      if host.name == "pc01" { complete(live, adding: [("pc05", "office")]) }
      return StepResult(status: .ok)
    })
    #expect(outcome.touchedHosts == ["pc01", "pc02", "pc03"])
    // And once the browse keeps it where it was, it runs, after the browse has spoken.
    let again = LiveInventory(initial: inventory(known + [("pc05", "lab")]), settled: bound)
    let ranBeforeBrowseEnded = Mutex(false)
    let second = try await run(#"on all except @office < run "x" >"#, inventory: again.view.inventory, discovery: again, responder: { _, host in
      if host.name == "pc05", again.view.stage != .complete { ranBeforeBrowseEnded.withLock { $0 = true } }
      if host.name == "pc01" { complete(again, adding: [("pc05", "lab")]) }
      return StepResult(status: .ok)
    })
    #expect(second.touchedHosts == ["pc01", "pc02", "pc03", "pc05"])
    #expect(!ranBeforeBrowseEnded.withLock { $0 })
  }

  @Test func aBlockWaitsForTheBrowseWhileAvahisCacheIsUnread() async throws {
    // Every known host is done before avahi answers: the block must wait (it can still gain
    // hosts), so pc04, found after that, joins it.
    let live = LiveInventory(initial: inventory(known), settled: bound)
    let finished = Mutex(0)
    let stageAtBlockEnd = Mutex<LiveInventory.Stage?>(nil)
    let outcome = try await run(
      #"on all < run "x" >"#, inventory: live.view.inventory, discovery: live,
      observe: { event in
        switch event {
        case .hostFinished:
          if finished.withLock({ $0 += 1; return $0 }) == 3 {
            Task { complete(live, adding: [("pc04", "lab")]) }
          }
        case .blockFinished: stageAtBlockEnd.withLock { $0 = live.view.stage }
        default: break
        }
      })
    #expect(stageAtBlockEnd.withLock { $0 } == .complete)
    #expect(outcome.hostNames == ["pc01", "pc02", "pc03", "pc04"])
  }

  @Test func onceTheCacheIsReadTheBlockDoesNotWaitForTheNetwork() async throws {
    // avahi's cache named the hosts (stage cacheRead) and the browse never ends: the block
    // ends with its hosts (the suite's time limit fails a block that waits on).
    let live = LiveInventory(initial: inventory(known), settled: bound)
    live.update { $0.stage = .cacheRead }
    let outcome = try await run(#"on all < run "x" >"#, inventory: live.view.inventory, discovery: live)
    #expect(outcome.hostNames == ["pc01", "pc02", "pc03"])
    #expect(live.view.stage == .cacheRead)
  }

  @Test func aBlockThatMatchesNoneYetWaitsThenSaysNoHost() async throws {
    let live = LiveInventory(initial: inventory(known), settled: bound)
    let outcome = try await run(
      #"on group office < run "x" >"#, inventory: live.view.inventory, discovery: live,
      observe: { event in
        if case .runStarted = event { Task { complete(live, adding: []) } }
      })
    #expect(outcome.executor.calls.isEmpty)
    #expect(outcome.result.unmatchedTargets == 1)
    #expect(outcome.log.events.contains { if case .noHosts = $0 { true } else { false } })
  }

  @Test func aSerialBlockTakesItsWholeListFirst() async throws {
    let live = LiveInventory(initial: inventory(known), settled: bound)
    let outcome = try await run(
      "set serial = 2\non all < run \"x\" >", inventory: live.view.inventory, discovery: live,
      observe: { event in
        if case .runStarted = event { Task { complete(live, adding: [("pc04", "lab")]) } }
      })
    let started = outcome.log.events.compactMap { event -> [String]? in
      if case .blockStarted(let info) = event { info.hosts.map(\.name.rawValue) } else { nil }
    }
    #expect(started == [["pc01", "pc02", "pc03", "pc04"]])
    #expect(!outcome.log.events.contains { if case .hostsJoined = $0 { true } else { false } })
  }

  @Test func anEmptyTargetWaitsForTheBrowseEvenWithTheCacheRead() async throws {
    // No office host is known; the cache has been read; the network then names desk1.
    let live = LiveInventory(initial: inventory(known), settled: bound)
    live.update { $0.stage = .cacheRead }
    let outcome = try await run(
      #"on group office < run "x" >"#, inventory: live.view.inventory, discovery: live,
      observe: { event in
        if case .runStarted = event { Task { complete(live, adding: [("desk1", "office")]) } }
      })
    #expect(outcome.hostNames == ["desk1"])
    #expect(outcome.result.unmatchedTargets == 0)
  }

  @Test func aGroupStatementTakesAGroupsMembersFromTheWholeBrowse() async throws {
    // desk1 is known; desk2, an office host too, is found by the browse. A group made of
    // @office must hold both, so that `except` leaves both out.
    let live = LiveInventory(initial: inventory(known + [("desk1", "office")]), settled: bound.union(["desk1"]))
    let outcome = try await run(
      "group office_all = @office\non all except @office_all < run \"x\" >", inventory: live.view.inventory,
      discovery: live,
      observe: { event in
        if case .runStarted = event { Task { complete(live, adding: [("desk2", "office")]) } }
      })
    #expect(outcome.touchedHosts == ["pc01", "pc02", "pc03"])
  }
}
