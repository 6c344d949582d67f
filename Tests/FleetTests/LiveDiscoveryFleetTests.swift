// Discovery off a run's critical path, on a real fleet: the hosts the server knows start while
// avahi is still browsed, even when avahi-daemon hangs, and a host only the browse finds
// still takes part.

import Foundation
import TestSupport
import Testing

private struct NoServerAvahi: Error {
  var log: String
}

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct LiveDiscoveryFleetTests {
  /// cfi-sh on the lab without its client list: the hosts come from memory and discovery
  /// (`accept = auto`: what discovery finds is reached at once).
  private func environment(_ lab: Lab) throws -> [String: String] {
    [
      "DBUS_SYSTEM_BUS_ADDRESS": lab.dbus, "CFI_STORE": lab.store.path, "CFI_IDENTITY": lab.key,
      "CFI_AUDIT_LOG": "none", "CFI_SERVER_CONF": try lab.storeFile("server.conf", "accept = auto\n"),
    ]
  }

  /// The pid of the lab's server-side avahi-daemon (the one writing its log in the lab's
  /// server directory).
  private func serverAvahi(_ lab: Lab) throws -> Int32 {
    let socket = lab.dbus.replacingOccurrences(of: "unix:path=", with: "")
    let log = (socket as NSString).deletingLastPathComponent + "/avahi.log"
    for name in try FileManager.default.contentsOfDirectory(atPath: "/proc") {
      guard let pid = Int32(name),
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.hasPrefix("avahi-daemon") == true,
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/1")) == log
      else { continue }
      return pid
    }
    throw NoServerAvahi(log: log)
  }

  @Test func knownHostsAreReachedWhileAvahiDaemonHangs() throws {
    let lab = try Lab("livehang", hosts: 4)
    let environment = try environment(lab)
    // A first run finds them all (discovery) and remembers them.
    let first = try Command.run(["--json", "-c", #"on all < run "true" >"#], environment: environment)
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first).count == 4)

    let avahi = try serverAvahi(lab)
    kill(avahi, SIGSTOP)
    defer { kill(avahi, SIGCONT) }
    // stdout and stderr in one pipe, in the order they were written.
    let run = try Command.run(
      ["-c", "exec \"$0\" -v --json -c 'on all < run \"true\" >' 2>&1", Command.binary.path],
      executable: URL(fileURLWithPath: "/bin/sh"), environment: environment)
    #expect(run.status == 0, "\(run.stdout)")
    #expect(outcomes(run) == ["pc01": "ok", "pc02": "ok", "pc03": "ok", "pc04": "ok"])
    let lines = run.stdout.split(separator: "\n")
    let boundSaid = lines.firstIndex { $0.contains("had not answered in full") }
    let firstHostDone = lines.firstIndex { $0.contains(#""event":"host_finished""#) }
    // The known hosts ran before the run gave up on avahi, not after.
    #expect(boundSaid != nil && firstHostDone != nil && firstHostDone! < boundSaid!, "\(run.stdout)")
  }

  /// The shell waits for the browse no more than a runbook: with avahi-daemon hung, its
  /// prompt comes at once and an entry runs on the hosts the client list names. What the
  /// browse says when it gives up is held while a line is typed and said after it, on a line
  /// of its own.
  @Test func theShellPromptsAndRunsWhileAvahiDaemonHangs() throws {
    let lab = try Lab("livehangrepl", hosts: 3)
    let avahi = try serverAvahi(lab)
    kill(avahi, SIGSTOP)
    defer { kill(avahi, SIGCONT) }
    let repl = try lab.repl(history: lab.store.path + "/history", arguments: [], environment: ["DBUS_SYSTEM_BUS_ADDRESS": lab.dbus])
    defer { repl.terminate() }
    let gaveUp = "avahi-daemon had not answered in full"
    // Before, the shell browsed to the end (the 3 s bound) first and said so before its banner.
    let start = try repl.expect("cfi> ")
    #expect(start.contains("3 hosts known"), "\(start)")
    #expect(!start.contains(gaveUp), "\(start)")
    repl.sendLine(#"on all < run "true" >"#)
    try repl.expect("ok: pc[01-03] (3)")
    try repl.expect("cfi> ")
    // The bound passes (3 s after the start); each line typed says what was held meanwhile.
    try waitUntil("the shell says the browse gave up", within: .seconds(30)) {
      repl.sendLine(":groups")
      try repl.expect("cfi> ")
      return repl.transcript.contains(gaveUp)
    }
    for line in repl.transcript.split(separator: "\n") where line.contains(gaveUp) {
      #expect(line.hasPrefix("cfi-sh: discovery: "), "said into a line: \(line)")
    }
    repl.sendLine(":quit")
    #expect(try repl.waitForExit() == 0)
  }

  @Test func aHostOnlyTheBrowseFindsTakesPartInTheRun() throws {
    let lab = try Lab("livejoin", hosts: 4)
    let environment = try environment(lab)
    // pc01–pc03 become known; pc04 is only ever announced.
    let first = try Command.run(["--limit", "pc0[1-3]", "--json", "-c", #"on all < run "true" >"#], environment: environment)
    #expect(outcomes(first) == ["pc01": "ok", "pc02": "ok", "pc03": "ok"])
    let known = listed(try Command.run(["hosts", "--json", "--no-discovery"], environment: environment))
    #expect(known.keys.sorted() == ["pc01", "pc02", "pc03"])

    let run = try Command.run(["--json", "-c", #"on all < run "touch /root/all" >"#], environment: environment)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(outcomes(run) == ["pc01": "ok", "pc02": "ok", "pc03": "ok", "pc04": "ok"])
    #expect(try lab.exec("pc04", "test -e /root/all").status == 0)
  }
}
