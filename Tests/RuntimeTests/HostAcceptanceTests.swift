// Acceptance of announced hosts: the decision (pure), the server's configuration that sets
// its policy, and the pending hosts that keep the claims.

import Foundation
import Runtime
import TestSupport
import Testing

typealias Host = Runtime.Host

@Suite("HostAcceptance")
struct HostAcceptanceTests {
  private func announced(_ name: HostName, _ group: GroupName = "lab", _ address: HostAddress = "10.9.0.7", port: Int? = nil)
    -> Host
  {
    Host(name: name, group: group, address: address, port: port)
  }

  private func admit(
    _ hosts: [Host], accepted: [Host] = [], named: HostAcceptance.Named = .init(), rejected: Set<HostClaim> = [],
    policy: AcceptancePolicy = .pending
  ) -> (admitted: [HostName], pending: [HostClaim]) {
    let (admitted, pending) = HostAcceptance.admit(
      hosts, accepted: Dictionary(uniqueKeysWithValues: accepted.map { ($0.name, $0) }), named: named,
      rejected: rejected, policy: policy)
    return (admitted.map(\.name), pending)
  }

  @Test func aHostKnownOnlyFromItsAnnouncementIsPending() {
    let result = admit([announced("pc07")])
    #expect(result.admitted.isEmpty)
    #expect(result.pending == [HostClaim(announced("pc07"))])
  }

  @Test func autoAcceptsANewHostAtOnce() {
    let result = admit([announced("pc07")], policy: .auto)
    #expect(result.admitted == ["pc07"])
    #expect(result.pending.isEmpty)
  }

  @Test func anAcceptedHostAnnouncingItsBindingIsAdmitted() {
    let result = admit([announced("pc01")], accepted: [announced("pc01")])
    #expect(result.admitted == ["pc01"])
    #expect(result.pending.isEmpty)
  }

  @Test(arguments: [
    (Host(name: "pc01", group: "office", address: "10.9.0.7"), "group lab → office"),
    (Host(name: "pc01", group: "lab", address: "10.9.0.66"), "address 10.9.0.7 → 10.9.0.66"),
    (Host(name: "pc01", group: "lab", address: "10.9.0.7", port: 2222), "port 22 → 2222"),
  ])
  func anAnnouncementThatChangesAnAcceptedHostIsAPendingChange(claim: Host, change: String) {
    for policy in AcceptancePolicy.allCases {
      let result = admit([claim], accepted: [announced("pc01")], policy: policy)
      #expect(result.admitted.isEmpty, "\(policy): the claim does not join the inventory")
      #expect(result.pending == [HostClaim(claim)])
      #expect(HostClaim(claim).changes(from: announced("pc01")) == [change])
    }
  }

  /// An unprivileged user of pc01 publishing a second service under pc01's name: the real
  /// announcement is admitted, the other is a pending change.
  @Test func aSecondAnnouncementUnderAnAcceptedNameIsPending() {
    let rogue = announced("pc01", "office", port: 2222)
    let result = admit([announced("pc01"), rogue], accepted: [announced("pc01")])
    #expect(result.admitted == ["pc01"])
    #expect(result.pending == [HostClaim(rogue)])
  }

  @Test func aNewNameAnnouncedTwoWaysIsNeverAdmittedEvenUnderAuto() {
    let result = admit([announced("pc07"), announced("pc07", "office")], policy: .auto)
    #expect(result.admitted.isEmpty)
    #expect(result.pending.count == 2)
  }

  @Test func aHostAcceptedByNameTakesItsAnnouncedAddress() {
    let result = admit([announced("pc04")], accepted: [Host(name: "pc04", group: "lab")])
    #expect(result.admitted == ["pc04"])
  }

  @Test func hostsNamedInFilesAreAcceptedByBeingWrittenThere() {
    let named = HostAcceptance.Named(clientList: ["pc01"], dsh: ["pc02"])
    let result = admit([announced("pc01"), announced("pc02"), announced("pc03")], named: named)
    #expect(result.admitted == ["pc01", "pc02"])
    #expect(result.pending.map(\.name) == ["pc03"])
    // A dsh group names a host; a known binding still holds for it.
    let changed = admit([announced("pc02", "office")], accepted: [announced("pc02")], named: named)
    #expect(changed.admitted.isEmpty)
  }

  @Test func aRejectedClaimIsNeitherAdmittedNorPending() {
    let claim = HostClaim(announced("pc07"))
    for policy in AcceptancePolicy.allCases {
      let result = admit([announced("pc07")], rejected: [claim], policy: policy)
      #expect(result.admitted.isEmpty)
      #expect(result.pending.isEmpty)
    }
  }
}

@Suite("ServerConfiguration")
struct ServerConfigurationTests {
  @Test func theDefaultIsPending() throws {
    #expect(try ServerConfiguration(parsing: "# nothing set\n\n", file: "f").accept == .pending)
    #expect(try ServerConfiguration.load("/nonexistent/server.conf").accept == .pending)
  }

  @Test func historyIsKeptNinetyDaysUnlessSaidOtherwise() throws {
    #expect(try ServerConfiguration(parsing: "", file: "f").keepHistory == .seconds(90 * 86_400))
    #expect(try ServerConfiguration(parsing: "keep_history = 30d", file: "f").keepHistory == .seconds(30 * 86_400))
    #expect(try ServerConfiguration(parsing: "keep_history = forever", file: "f").keepHistory == nil)
  }

  @Test func persistIsUnsetUnlessSaid() throws {
    #expect(try ServerConfiguration(parsing: "", file: "f").persist == nil)
    #expect(try ServerConfiguration(parsing: "persist = 10m", file: "f").persist == .seconds(600))
    #expect(try ServerConfiguration(parsing: "persist = 0", file: "f").persist == .zero)
  }

  @Test func acceptAuto() throws {
    #expect(try ServerConfiguration(parsing: "accept = auto   # a closed lab\n", file: "f").accept == .auto)
    #expect(try ServerConfiguration(parsing: "accept=pending", file: "f").accept == .pending)
  }

  @Test(arguments: [
    ("accept = yes\n", "server.conf:1: error: 'accept' is pending or auto, not 'yes'"),
    ("\naccpet = auto\n", "server.conf:2: error: unknown setting 'accpet' (known: accept, keep_history, persist)"),
    ("persist = 500ms\n", "server.conf:1: error: 'persist' is a duration such as 5m, or 0, not '500ms'"),
    ("persist = soon\n", "server.conf:1: error: 'persist' is a duration such as 5m, or 0, not 'soon'"),
    ("keep_history = always\n", "server.conf:1: error: 'keep_history' is a duration such as 90d, or forever, not 'always'"),
    ("keep_history = 0s\n", "server.conf:1: error: 'keep_history' is a duration such as 90d, or forever, not '0s'"),
    ("accept auto\n", "server.conf:1: error: expected 'key = value', found 'accept auto'"),
    ("accept = auto\naccept = pending\n", "server.conf:2: error: 'accept' is already set on line 1"),
  ])
  func mistakesPointAtTheirLine(text: String, message: String) {
    #expect(throws: InventoryError.self) { try ServerConfiguration(parsing: text, file: "server.conf") }
    do {
      _ = try ServerConfiguration(parsing: text, file: "server.conf")
    } catch {
      #expect(error.description == message)
    }
  }
}

@Suite("PendingHosts")
struct PendingHostsTests {
  @Test func claimsAreKeptWithWhenTheyWereSeenAndSettledOnesDropped() throws {
    let directory = try TemporaryDirectory()
    let pending = PendingHosts(database: try StateDatabase(store: Store(root: directory.path)))
    let first = Date(timeIntervalSince1970: 1_000_000)
    let later = first.addingTimeInterval(3600)
    let pc07 = HostClaim(name: "pc07", group: "lab", address: "10.9.0.7", port: nil)
    let pc08 = HostClaim(name: "pc08", group: "lab", address: "10.9.0.8", port: 2222)
    _ = try pending.record([pc07, pc08], at: first) { _ in false }
    let kept = try pending.record([pc07], at: later) { $0.name == "pc08" }
    #expect(kept == [PendingHost(pc07, firstSeen: first, lastSeen: later)])
    #expect(try pending.load() == kept)
  }

  @Test func aRejectedClaimStaysRejectedWhenSeenAgain() throws {
    let directory = try TemporaryDirectory()
    let pending = PendingHosts(database: try StateDatabase(store: Store(root: directory.path)))
    let claim = HostClaim(name: "pc07", group: "lab", address: "10.9.0.7", port: nil)
    _ = try pending.record([claim], at: Date()) { _ in false }
    try pending.reject([claim])
    let kept = try pending.record([claim], at: Date()) { _ in false }
    #expect(kept.map(\.rejected) == [true])
    #expect(try pending.remove { $0.name == "pc07" } == 1)
    #expect(try pending.load().isEmpty)
  }

  @Test func patternsSelectClaimsByNameOrGroup() throws {
    let seen = Date()
    let entries = [
      PendingHost(HostClaim(name: "pc07", group: "lab", address: "10.9.0.7", port: nil), firstSeen: seen, lastSeen: seen),
      PendingHost(HostClaim(name: "pc07", group: "office", address: "10.9.0.7", port: 2222), firstSeen: seen, lastSeen: seen),
      PendingHost(HostClaim(name: "pc12", group: "office", address: "10.9.0.12", port: nil), firstSeen: seen, lastSeen: seen),
    ]
    #expect(try PendingHost.select(entries, pattern: "pc07").count == 2)
    #expect(try PendingHost.select(entries, pattern: "pc[10-12]").map(\.name) == ["pc12"])
    #expect(try PendingHost.select(entries, pattern: "@office").map(\.name) == ["pc07", "pc12"])
    #expect(throws: HostPatternError.self) { try PendingHost.select(entries, pattern: "pc[") }
  }
}
