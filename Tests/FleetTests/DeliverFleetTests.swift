// Delivery on a real fleet, up to the queue (making the deliveries is `cfi-sh watch`'s,
// tested with it): `cfi-sh deliver` with hosts unplugged records a pending delivery for each
// of them and for no other, says so (text and JSON), `cfi-sh deliveries` lists them (text,
// JSON, per runbook), `set deliver = until_done` records too, `--check` records nothing,
// `--expire` ends as expired, and `cancel` cancels.

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct DeliverFleetTests {
  /// The marker runbook: every host appends a line to a file, so a second run shows.
  static let marker = #"on all < run "echo once >> /root/delivery-marker" >"#

  /// `cfi-sh deliver` on the lab (`deliver` must come first, before the lab's options).
  func deliver(_ lab: Lab, _ arguments: [String], stdin: String? = nil) throws -> Command {
    try Command.run(
      ["deliver", "-i", lab.inventory, "--identity", lab.key, "--store", lab.store.path, "--audit-log", lab.auditLog,
       "--connect-timeout", "2s"] + arguments, stdin: stdin)
  }

  /// `cfi-sh deliveries …` on the lab's store.
  func deliveries(_ lab: Lab, _ arguments: [String] = []) throws -> Command {
    let words = arguments.first.map { ["show", "cancel", "list"].contains($0) } == true ? [arguments[0]] : []
    return try Command.run(["deliveries"] + words + ["--store", lab.store.path, "-i", lab.inventory] + arguments.dropFirst(words.count))
  }

  /// The deliveries as `cfi-sh deliveries --json` lists them.
  func listed(_ lab: Lab, _ arguments: [String] = []) throws -> [[String: Any]] {
    let result = try deliveries(lab, ["--json"] + arguments)
    #expect(result.status == 0, "\(result.stderr)")
    return result.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
  }

  @Test func hostsThatWereOffAreOwedTheRunbook() throws {
    let lab = try Lab("deliver", hosts: 4, groups: ["lab"])
    try lab.lab("unplug", "pc03")
    try lab.lab("unplug", "pc04")

    // cfi-sh deliver: the two hosts that answer run it now, the two off are owed it.
    let run = try deliver(lab, ["--json", "-c", Self.marker])
    #expect(run.status == 4, "\(run.stderr)")
    #expect(outcomes(run) == ["pc01": "ok", "pc02": "ok", "pc03": "unreachable", "pc04": "unreachable"])
    let recorded = events(run, "deliveries_recorded")
    #expect(recorded.count == 1)
    #expect(recorded.first?["hosts"] as? [String] == ["pc03", "pc04"])
    #expect(recorded.first?["expires"] == nil)
    #expect(try lab.read("pc01", "cat /root/delivery-marker") == "once")

    let pending = try listed(lab)
    #expect(pending.map { $0["host"] as? String } == ["pc03", "pc04"])
    #expect(pending.allSatisfy { $0["state"] as? String == "pending" && $0["runbook"] as? String == "<command line>" })
    let table = try deliveries(lab)
    #expect(table.status == 0)
    #expect(table.stdout.hasPrefix("ID  HOST  RUNBOOK"))
    #expect(table.stdout.split(separator: "\n").filter { $0.contains("pending") }.count == 2)
    let summary = try deliveries(lab, ["--by-runbook"])
    #expect(summary.stdout.contains("2 pending"))
    #expect(summary.stdout.contains("pc[03-04]"))
    let id = try #require(pending.first?["id"] as? Int)
    let shown = try deliveries(lab, ["show", String(id)])
    #expect(shown.status == 0, "\(shown.stderr)")
    #expect(shown.stdout.contains("echo once >> /root/delivery-marker"))

    // The same runbook again, as a nightly cron would: the hosts are not owed it twice.
    #expect(try deliver(lab, ["--json", "-c", Self.marker]).status == 4)
    #expect(try listed(lab).count == 2)
    // …and that run shows as one that tried the host.
    let tried = try deliveries(lab, ["show", String(id)]).stdout
    #expect(tried.contains("runs:         of <command line> that tried pc03"), "\(tried)")
    #expect(tried.contains("  unreachable: "), "\(tried)")

    // A runbook file that asks for it itself, run as a plain runbook (text output).
    let books = try TemporaryDirectory()
    let book = try books.write("asks.cfi", "set deliver = until_done\non all < run \"true\" >\n")
    let asked = try lab.cfi(["--connect-timeout", "2s", book])
    #expect(asked.status == 4)
    #expect(asked.stdout.contains("delivery pending: pc[03-04] (2)"), "\(asked.stdout)")
    #expect(try listed(lab, ["--host", "pc03"]).map { $0["runbook"] as? String } == ["<command line>", book])

    // A dry run records nothing, whatever the runbook says; --deliver with it is refused.
    let dry = try lab.cfi(["--check", "--connect-timeout", "2s", "-c", "set deliver = until_done\non all < run \"date\" >"])
    #expect(dry.status == 4)
    #expect(!dry.stdout.contains("delivery pending"))
    #expect(try deliver(lab, ["--check", "-c", Self.marker]).status == 64)
    #expect(try listed(lab).count == 4)
  }

  @Test func aDeliveryPastItsExpiryIsExpiredAndOneCancelledIsNotPending() throws {
    let lab = try Lab("delivexp", hosts: 4, groups: ["lab"])
    try lab.lab("unplug", "pc03")
    try lab.lab("unplug", "pc04")

    // Expiring after a second: the run itself (a 2s connect timeout) outlasts it.
    let run = try deliver(lab, ["--expire", "1s", "-c", Self.marker])
    #expect(run.status == 4)
    #expect(run.stdout.contains("delivery pending: pc[03-04] (2)"))
    #expect(run.stdout.contains(", until "))
    // Waiting on the condition (the listing marks what is past its expiry), with a watchdog.
    let deadline = Date() + 30
    var states: [String] = []
    repeat {
      states = try listed(lab).compactMap { $0["state"] as? String }
    } while states != ["expired", "expired"] && Date() < deadline
    #expect(states == ["expired", "expired"])
    #expect(try listed(lab, ["--state", "expired"]).count == 2)
    #expect(try listed(lab, ["--state", "pending"]).isEmpty)

    // Another runbook, no expiry: cancel one by id, the other by host.
    #expect(try deliver(lab, ["-c", #"on all < run "true" >"#]).status == 4)
    let pending = try listed(lab, ["--state", "pending"])
    #expect(pending.map { $0["host"] as? String } == ["pc03", "pc04"])
    let id = try #require(pending.first?["id"] as? Int)
    let cancel = try deliveries(lab, ["cancel", String(id)])
    #expect(cancel.status == 0, "\(cancel.stderr)")
    #expect(cancel.stdout.contains("delivery \(id): cancelled"))
    let again = try deliveries(lab, ["cancel", String(id)])
    #expect(again.status == 1)
    #expect(again.stderr.contains("is cancelled, not pending"))
    let expired = try #require(try listed(lab, ["--state", "expired"]).first?["id"] as? Int)
    #expect(try deliveries(lab, ["cancel", String(expired)]).stderr.contains("is expired, not pending"))
    #expect(try deliveries(lab, ["cancel", "--host", "@lab"]).status == 0)
    #expect(try listed(lab, ["--state", "pending"]).isEmpty)
    #expect(try listed(lab, ["--state", "cancelled"]).map { $0["host"] as? String } == ["pc03", "pc04"])
  }
}
