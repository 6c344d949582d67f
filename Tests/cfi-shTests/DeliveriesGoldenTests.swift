// Golden files of `cfi-sh deliveries`: the list, the per-runbook summary and one delivery
// shown, as text and JSON, from a queue brought to every state through Runtime's own API at
// fixed dates (UTC), so the files are the same on every machine. The selection of a listing
// (the last 7 days, --state) is checked here too.
//
// The files are in `DeliveriesGolden/`. Recording: `CFI_RECORD=1 swift test --filter
// DeliveriesGolden`, then read the files.

import Foundation
import Runtime
import TestSupport
import Testing

@testable import cfi_sh

@Suite struct DeliveriesGoldenTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("DeliveriesGolden").path
  static let t0 = Date(timeIntervalSince1970: 1_795_770_000)  // 2026-11-27T09:00:00Z
  static let hash = "$6$salt$" + String(repeating: "d", count: 86)

  /// A queue of two runbooks: site.cfi owed to six hosts (one done, one failed, one
  /// unreachable, one cancelled, one expired, one never tried), and a `-c` runbook with a
  /// password hash owed to one host.
  static func queue(in scratch: TemporaryDirectory) throws -> (Deliveries, [Delivery]) {
    let queue = Deliveries(database: try StateDatabase(path: scratch.path + "/state.sqlite"))
    let site = DeliveryRunbook(
      name: "site.cfi",
      files: [
        .init(name: "site.cfi", text: "include \"lib.cfi\"\non group lab < copy \"etc/motd\"; run \"touch /var/tmp/marker\" >\n"),
        .init(name: "lib.cfi", text: "set timeout = 5m\n"),
      ], arguments: ["nightly", "two words"], options: ["--timeout", "5m"])
    let origin = "0b6d2c1e-5a7f-4c3e-9d21-7e4f5a6b8c90"
    let names = ["pc01", "pc02", "pc03", "pc04", "pc06"].map { HostName($0)! }
    let ids = try queue.record(site, hosts: names, origin: origin, expires: t0 + 7 * 86400, at: t0)
    // pc05's delivery, by the same run, expires after half an hour.
    try queue.record(site, hosts: ["pc05"], origin: origin, expires: t0 + 1800, at: t0)
    let password = DeliveryRunbook(
      name: "<command line>", files: [.init(name: "<command line>", text: "on host pc07 < password root '\(hash)' >")],
      arguments: [hash], options: [])
    try queue.record(password, hosts: ["pc07"], origin: "7f3a9b20-1c4d-4e5f-8a6b-0c1d2e3f4a5b", expires: nil, at: t0 + 600)
    _ = try queue.claim(Array(ids[0...2]), at: t0 + 3600)
    try queue.settle(ids[0], DeliveryAttempt(status: .changed, run: "run-a"), at: t0 + 3660)
    try queue.settle(
      ids[1], DeliveryAttempt(status: .failed, reason: "touch: cannot touch '/var/tmp/marker': Read-only file system", run: "run-b"),
      at: t0 + 3660)
    try queue.settle(ids[2], DeliveryAttempt(status: .unreachable, reason: "no_route", run: "run-c"), at: t0 + 3660)
    _ = try queue.cancel(ids[3], at: t0 + 7200)
    try queue.expire(at: t0 + 1801)
    return (queue, try queue.list())
  }

  func check(_ text: String, _ name: String) {
    let problem = GoldenFile.check(
      text, path: Self.directory + "/" + name, rerecord: "CFI_RECORD=1 swift test --filter DeliveriesGolden")
    if let problem { Issue.record(Comment(rawValue: problem)) }
  }

  @Test func theListAndTheSummary() throws {
    let scratch = try TemporaryDirectory()
    let (_, deliveries) = try Self.queue(in: scratch)
    let rendering = DeliveriesRendering(timeZone: TimeZone(identifier: "UTC")!)
    check(rendering.list(deliveries, json: false), "list.txt")
    check(rendering.list(deliveries, json: true), "list.jsonl")
    check(rendering.byRunbook(deliveries, json: false), "by-runbook.txt")
    check(rendering.byRunbook(deliveries, json: true), "by-runbook.jsonl")
    #expect(rendering.list([], json: false).isEmpty)
  }

  @Test func oneDeliveryShownWithItsRunbookAndNoHash() throws {
    let scratch = try TemporaryDirectory()
    let (queue, deliveries) = try Self.queue(in: scratch)
    let rendering = DeliveriesRendering(timeZone: TimeZone(identifier: "UTC")!)
    let failed = try #require(deliveries.first { $0.host.rawValue == "pc02" })
    let runs = [
      DeliveryRun(run: "run-x", started: Self.t0 + 1800, status: "unreachable", reason: "no_route"),
      DeliveryRun(run: "run-b", started: Self.t0 + 3600, status: "failed", reason: "touch: cannot touch '/var/tmp/marker': Read-only file system"),
    ]
    check(rendering.show(failed, runbook: try queue.runbook(of: failed), runs: runs, json: false), "show.txt")
    let password = try #require(deliveries.first { $0.host.rawValue == "pc07" })
    let tried = [DeliveryRun(run: "run-y", started: Self.t0 + 900, status: "unreachable", reason: "connect_timeout")]
    let text = rendering.show(password, runbook: try queue.runbook(of: password), runs: tried, json: false)
    let json = rendering.show(password, runbook: try queue.runbook(of: password), runs: tried, json: true)
    check(json, "show.jsonl")
    for shown in [text, json] {
      #expect(!shown.contains("$6$salt"))
      #expect(shown.contains("<redacted>"))
    }
  }

  @Test func aListingShowsWhatIsNotFinishedAndTheLastSevenDays() throws {
    let scratch = try TemporaryDirectory()
    let (_, deliveries) = try Self.queue(in: scratch)
    func hosts(_ states: Set<DeliveryFilter> = [], all: Bool = false, days: Double) -> [String] {
      DeliveriesCommand.select(deliveries, states: states, all: all, now: Self.t0 + days * 86400).map(\.host.rawValue)
    }
    #expect(hosts(days: 1) == ["pc01", "pc02", "pc03", "pc04", "pc06", "pc05", "pc07"])
    // Eight days on: the done, cancelled and expired ones are no longer listed…
    #expect(hosts(days: 8) == ["pc02", "pc03", "pc06", "pc07"])
    // …except with --all.
    #expect(hosts(all: true, days: 8).count == 7)
    #expect(hosts([.failed], days: 1) == ["pc02"])
    #expect(hosts([.pending], days: 1) == ["pc03", "pc06", "pc07"])
    #expect(hosts([.done, .expired, .cancelled], days: 1) == ["pc01", "pc04", "pc05"])
  }
}
