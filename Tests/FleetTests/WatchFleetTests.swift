// Eventual delivery on a real fleet: a runbook run with --deliver while some hosts are off
// reaches them when they come back, through `cfi-sh watch` (a child process browsing the
// lab's avahi). Exactly once, whatever the host announces and however often watch starts;
// a delivery that fails stays pending with its reason; one past its expiry is given up.
// Watchdogs wait on conditions (the marker on the host, the queue in the database).

import Foundation
import Runtime
import TestSupport
import Testing

/// How long after its announcement a host that is back must have its delivery (the issue's bound).
private let deliveryBound: Duration = .seconds(10)

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct WatchFleetTests {
  /// Appends a line to /root/marker, unless /root/refuse is there (then it fails).
  private static let marker = """
    on all <
      run "if test -e /root/refuse; then exit 3; fi"
      run "echo delivered >> /root/marker"
    >

    """

  /// cfi-sh's words for a tool on this lab (the tool's name first).
  private func words(_ lab: Lab, _ tool: [String]) -> [String] {
    tool + ["-i", lab.inventory, "--identity", lab.key, "--store", lab.store.path, "--audit-log", lab.auditLog]
  }

  private func environment(_ lab: Lab) -> [String: String] { ["DBUS_SYSTEM_BUS_ADDRESS": lab.dbus] }

  private func startWatch(_ lab: Lab, _ options: [String] = []) throws -> RunningCommand {
    try RunningCommand(words(lab, ["watch", "--json", "--connect-timeout", "2s"] + options), environment: environment(lab))
  }

  private func deliveries(_ lab: Lab, host: String) throws -> [Delivery] {
    try Deliveries(database: StateDatabase(store: Store(root: lab.store.path))).list(host: HostName(host)!)
  }

  private func markerLines(_ lab: Lab, _ host: String) throws -> Int {
    try lab.read(host, "cat /root/marker 2>/dev/null || true").split(separator: "\n").count
  }

  /// The objects of a `--json` output named `event`.
  private func objects(_ output: String, _ event: String) -> [[String: Any]] {
    output.split(separator: "\n").compactMap { line in
      guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        object["event"] as? String == event
      else { return nil }
      return object
    }
  }

  /// The descriptors a process holds open.
  private func openDescriptors(_ pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
  }

  @Test func hostsThatWereOffGetTheRunbookWhenTheyComeBackExactlyOnce() throws {
    let lab = try Lab("watch", hosts: 10, groups: ["lab"])
    let runbooks = try TemporaryDirectory()
    let runbook = try runbooks.write("marker.cfi", Self.marker)
    for host in ["pc08", "pc09", "pc10"] {
      try lab.lab("stop-avahi", host)
      try lab.lab("unplug", host)
    }
    // pc09's delivery will fail there; pc10 stays off past its expiry.
    try lab.exec("pc09", "touch /root/refuse")
    let now = try lab.cfi(["--deliver", "--json", "--connect-timeout", "2s", "--limit", "pc[01-09]", runbook])
    #expect(now.status == 4, "\(now.stderr)")
    #expect(
      outcomes(now) == [
        "pc01": "ok", "pc02": "ok", "pc03": "ok", "pc04": "ok", "pc05": "ok", "pc06": "ok", "pc07": "ok",
        "pc08": "unreachable", "pc09": "unreachable",
      ])
    let expiring = try lab.cfi(["--deliver", "--expire", "1s", "--connect-timeout", "2s", "--limit", "pc10", runbook])
    #expect(expiring.status == 4, "\(expiring.stderr)")
    for host in ["pc08", "pc09", "pc10"] {
      #expect(try deliveries(lab, host: host).map(\.state) == [.pending], "\(host)")
    }

    let watch = try startWatch(lab)
    defer { if watch.isRunning { kill(watch.processIdentifier, SIGKILL) } }
    // pc08 comes back: delivered within the bound of its announcement.
    try lab.lab("plug", "pc08")
    try lab.lab("start-avahi", "pc08")
    try waitUntil("pc08 has its delivery", within: deliveryBound) { try markerLines(lab, "pc08") == 1 }
    try waitUntil("pc08's delivery is done", within: deliveryBound) { try deliveries(lab, host: "pc08").first?.state == .done }
    let descriptors = openDescriptors(watch.processIdentifier)
    // It announces itself again (its avahi restarted): nothing more.
    try lab.lab("stop-avahi", "pc08")
    try lab.lab("start-avahi", "pc08")
    // pc09 comes back: its delivery fails there and stays pending with the reason.
    try lab.lab("plug", "pc09")
    try lab.lab("start-avahi", "pc09")
    do {
      try waitUntil("pc09's delivery was tried", within: deliveryBound) { try deliveries(lab, host: "pc09").first?.attempts == 1 }
    } catch {
      kill(watch.processIdentifier, SIGTERM)
      let output = watch.finish()
      Issue.record("watch said: \(output.stdout)\n\(output.stderr)")
      throw error
    }
    let failed = try #require(try deliveries(lab, host: "pc09").first)
    #expect(failed.state == .pending && failed.displayState == "failed")
    #expect(failed.lastReason == "\(runbook):2:3: run: exit status 3", "\(failed.lastReason ?? "no reason")")
    #expect(try markerLines(lab, "pc09") == 0)
    #expect(try markerLines(lab, "pc08") == 1, "announcing again delivered nothing again")
    #expect(try deliveries(lab, host: "pc08").first?.attempts == 1)
    // Each delivery's run opened and closed what it needed: the watcher holds no more than before.
    #expect(openDescriptors(watch.processIdentifier) <= descriptors, "descriptors grew over a delivery")

    kill(watch.processIdentifier, SIGTERM)
    let stopped = watch.finish()
    #expect(stopped.status == 143, "\(stopped.stderr)")
    let attempts = objects(stopped.stdout, "delivery_attempt")
    #expect(attempts.map { $0["host"] as? String } == ["pc08", "pc09"], "\(stopped.stdout)")
    #expect(attempts.map { $0["state"] as? String } == ["done", "pending"])
    #expect(attempts.allSatisfy { $0["trigger"] as? String == "announced" && $0["run"] is String })
    #expect(objects(stopped.stdout, "delivery_expired").map { $0["host"] as? String } == ["pc10"], "\(stopped.stdout)")
    #expect(try deliveries(lab, host: "pc10").first?.state == .expired)

    // Started again (once, as from cron): pc08's delivery is done and never runs again;
    // pc09's fails again (exit 2).
    let again = try Command.run(words(lab, ["watch", "--once", "--json"]), environment: environment(lab))
    #expect(again.status == 2, "\(again.stderr)")
    #expect(objects(again.stdout, "delivery_attempt").map { $0["host"] as? String } == ["pc09"], "\(again.stdout)")
    #expect(try markerLines(lab, "pc08") == 1)

    // The log's run history knows the failed delivery: --limit @failed reruns exactly pc09.
    try lab.exec("pc09", "rm /root/refuse")
    let rerun = try lab.cfi(["--json", "--limit", "@failed", runbook])
    #expect(rerun.status == 0, "\(rerun.stderr)")
    #expect(outcomes(rerun) == ["pc09": "ok"])

    // `cfi-sh log --host` tells each host's story, newest first: pc08 found off, then
    // delivered; pc09 found off, its delivery failing twice (watch, then watch --once), the rerun.
    func story(_ host: String) throws -> [String] {
      let shown = try Command.run(["log", "--store", lab.store.path, "--host", host, "--json"])
      #expect(shown.status == 0, "\(shown.stderr)")
      return try shown.stdout.split(separator: "\n").map {
        (try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["status"] as? String ?? "?"
      }
    }
    #expect(try story("pc08") == ["ok", "unreachable"])
    #expect(try story("pc09") == ["ok", "failed", "failed", "unreachable"])
    let text = try Command.run(["log", "--store", lab.store.path, "--host", "pc08"])
    #expect(text.stdout.contains("unreachable") && text.stdout.contains("ok"), "\(text.stdout)")
  }

  @Test func onceDeliversToAHostThatIsUpButDoesNotAnnounceItself() throws {
    let lab = try Lab("watchonce", hosts: 3, groups: ["lab"])
    let runbooks = try TemporaryDirectory()
    let runbook = try runbooks.write("marker.cfi", Self.marker)
    try lab.lab("stop-avahi", "pc03")
    try lab.lab("unplug", "pc03")
    let now = try lab.cfi(["--deliver", "--json", "--connect-timeout", "2s", runbook])
    #expect(outcomes(now)["pc03"] == "unreachable", "\(now.stderr)")
    // Back on the network, still silent: a long-running watcher would wait its retry
    // interval; one pass tries it at once.
    try lab.lab("plug", "pc03")
    let once = try Command.run(words(lab, ["watch", "--once"]), environment: environment(lab))
    #expect(once.status == 0, "\(once.stderr)")
    #expect(once.stdout.hasPrefix("pc03: delivery 1 (\(runbook), once): done, run "), "\(once.stdout)")
    #expect(try markerLines(lab, "pc03") == 1)
    #expect(try deliveries(lab, host: "pc03").map(\.state) == [.done])
    let nothing = try Command.run(words(lab, ["watch", "--once"]), environment: environment(lab))
    #expect(nothing.status == 0 && nothing.stdout.isEmpty, "\(nothing.stdout)")
    #expect(try markerLines(lab, "pc03") == 1)
  }

  @Test func aSignalInterruptsTheDeliveryRunningAndLeavesItPending() throws {
    let lab = try Lab("watchsig", hosts: 2, groups: ["lab"])
    let runbooks = try TemporaryDirectory()
    let runbook = try runbooks.write(
      "slow.cfi", #"on all < run "if test -e /root/slow; then sleep 60; fi; echo delivered >> /root/marker" >"# + "\n")
    try lab.lab("stop-avahi", "pc02")
    try lab.lab("unplug", "pc02")
    let now = try lab.cfi(["--deliver", "--json", "--connect-timeout", "2s", runbook])
    #expect(outcomes(now) == ["pc01": "ok", "pc02": "unreachable"], "\(now.stderr)")
    try lab.exec("pc02", "touch /root/slow")
    try lab.lab("plug", "pc02")
    let watch = try RunningCommand(words(lab, ["watch", "--once"]), environment: environment(lab))
    defer { if watch.isRunning { kill(watch.processIdentifier, SIGKILL) } }
    try waitUntil("the delivery runs on pc02", within: .seconds(30)) {
      try lab.exec("pc02", "pgrep -f '^sleep 60$'").status == 0
    }
    #expect(try deliveries(lab, host: "pc02").first?.state == .running)
    kill(watch.processIdentifier, SIGTERM)
    try waitUntil("watch ends", within: .seconds(30)) { !watch.isRunning }
    let stopped = watch.finish()
    #expect(stopped.status == 143, "\(stopped.stderr)")
    #expect(stopped.stdout.hasPrefix("pc02: delivery 1 (\(runbook), once): interrupted"), "\(stopped.stdout)")
    #expect(try lab.exec("pc02", "pgrep -f '^sleep 60$'").status != 0, "the remote command was killed")
    let pending = try #require(try deliveries(lab, host: "pc02").first)
    #expect(pending.state == .pending && pending.lastStatus == "interrupted")
    try lab.exec("pc02", "rm /root/slow")
    let again = try Command.run(words(lab, ["watch", "--once"]), environment: environment(lab))
    #expect(again.status == 0, "\(again.stderr)")
    #expect(try markerLines(lab, "pc02") == 1)
  }
}
