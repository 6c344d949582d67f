// Interpreter tests: the server itself is never part of `all`, a group or a pattern; only
// `on host NAME` reaches it, and a block that left it out says so.

import CFIScript
import Runtime
import Testing
import TestSupport

@Suite("Interpreter: the server is left out of targets")
struct InterpreterServerTests {
  /// The test fleet plus a dsh-like group `all` that names this server in every way it can be named.
  func inventoryWithServer() -> Inventory {
    var inventory = testInventory()
    inventory.add(Runtime.Host(name: "gateway", group: "lab", address: "192.0.2.1"))
    inventory.add(Runtime.Host(name: "loop6", address: "::1"))
    let names: [HostName] = ["localhost", "127.0.1.1", "cfiserver", "CFIServer.example.org", "pc01", "pc02"]
    inventory.addToGroup("all", names: names)
    inventory.addToGroup("lab", names: ["localhost"])
    return inventory
  }

  func blocks(_ outcome: Outcome) -> [(hosts: [String], leftOut: [String], note: String?)] {
    outcome.log.events.compactMap { event in
      guard case .blockStarted(let info) = event else { return nil }
      return (info.hosts.map(\.name.rawValue), info.leftOut.map(\.name.rawValue), info.leftOutNote)
    }
  }

  @Test func onAllLeavesOutEveryNameAndAddressOfTheServerAndSaysSo() async throws {
    let outcome = try await run("on all < run \"id\" >", inventory: inventoryWithServer())
    let block = try #require(blocks(outcome).first)
    #expect(block.hosts == ["desk1", "desk2", "desk3", "desk10"] + labHosts)
    #expect(Set(block.leftOut) == ["localhost", "127.0.1.1", "cfiserver", "CFIServer.example.org", "gateway", "loop6"])
    #expect(outcome.touchedHosts == (labHosts + ["desk1", "desk2", "desk3", "desk10"]).sorted())
    #expect(block.note?.hasPrefix("on all: leaving out ") == true)
    #expect(block.note?.hasSuffix(" (this server)") == true)
  }

  @Test func aGroupAndAPatternLeaveOutTheServer() async throws {
    let outcome = try await run(
      """
      on group all < run "a" >
      on group lab < run "b" >
      on host @all, pc0[1-2] < run "c" >
      """, inventory: inventoryWithServer())
    let found = blocks(outcome)
    #expect(found.map(\.hosts) == [["pc01", "pc02"], labHosts, ["pc01", "pc02"]])
    #expect(found.map { Set($0.leftOut) } == [
      ["localhost", "127.0.1.1", "cfiserver", "CFIServer.example.org"], ["gateway", "localhost"],
      ["localhost", "127.0.1.1", "cfiserver", "CFIServer.example.org"],
    ])
    #expect(found[1].note == "on group lab: leaving out gateway,localhost (this server)")
    #expect(!outcome.touchedHosts.contains("localhost"))
  }

  @Test func onHostNamingTheServerReachesItWithoutANote() async throws {
    let outcome = try await run(
      "on host localhost, gateway, pc01 < run \"id\" >", inventory: inventoryWithServer())
    let block = try #require(blocks(outcome).first)
    #expect(block.hosts == ["gateway", "localhost", "pc01"])
    #expect(block.leftOut.isEmpty)
    #expect(block.note == nil)
    #expect(outcome.touchedHosts == ["gateway", "localhost", "pc01"])
  }

  @Test func aFleetWithoutTheServerLosesNothing() async throws {
    let outcome = try await run("on all < run \"id\" >")
    let block = try #require(blocks(outcome).first)
    #expect(block.hosts.count == 12)
    #expect(block.leftOut.isEmpty)
  }
}
