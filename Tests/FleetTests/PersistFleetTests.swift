// Connections that outlive a run (`--persist`): the next run reuses them — one ssh session
// per host across runs, counted in each host's sshd log — unless the identity or the host
// key pin changed; `cfi-sh connections close` ends them; ssh ends them once idle for their
// window; `--persist 0` leaves none. Each test's runs share a runtime directory of the
// test's own (CFI_RUNTIME_DIR), so its masters are found there and nowhere else, and one
// ssh_config.

import Foundation
import TestSupport
import Testing

@Suite(.enabled(if: fleetAvailable), .serialized)
struct PersistFleetTests {
  /// A lab and a runtime directory its runs share.
  struct Fixture {
    let lab: Lab
    let runtime: TemporaryDirectory

    init(_ name: String, hosts: Int) throws {
      lab = try Lab(name, hosts: hosts, groups: ["lab"])
      runtime = try TemporaryDirectory()
      try runtime.write("ssh_config", "")
    }

    /// One ssh_config for all the runs (each command's isolated machine has one of its own,
    /// and another ssh_config is another connection).
    var environment: [String: String] { ["CFI_RUNTIME_DIR": runtime.path, "CFI_SSH_CONFIG": runtime.path + "/ssh_config"] }

    /// Runs `on all < run "true" >` with `options`; every host must be ok.
    func run(_ options: [String] = ["--persist", "5m"], sourceLocation: SourceLocation = #_sourceLocation) throws {
      let result = try lab.cfi(options + ["--json", "-c", #"on all < run "true" >"#], environment: environment)
      #expect(result.status == 0, "\(result.stderr)", sourceLocation: sourceLocation)
    }

    /// `cfi-sh connections ARGUMENTS` on this runtime directory.
    func connections(_ arguments: [String] = []) throws -> Command {
      try Command.run(["connections"] + arguments, environment: environment)
    }

    /// The ssh sessions each host has accepted so far, by host.
    func sessions() throws -> [String: Int] {
      var counts: [String: Int] = [:]
      for host in lab.hosts {
        counts[host] = Int(try lab.read(host, "grep -c 'Accepted publickey' /var/log/lab-sshd.log || true")) ?? -1
      }
      return counts
    }

    func expectSessions(_ count: Int, _ why: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
      let counts = try sessions()
      #expect(counts.values.allSatisfy { $0 == count }, "\(why): \(counts)", sourceLocation: sourceLocation)
    }

    /// The ssh masters running on this runtime directory's sockets (their command lines).
    func masters() throws -> String {
      try shell(["/bin/sh", "-c", "pgrep -af '^[^ ]*ssh[: ].*\(runtime.path)/persist/' || true"]).stdout
    }

    /// Waits until no master of this directory runs, at most `limit`; whether none does.
    func mastersGone(within limit: Duration) throws -> Bool {
      let deadline = ContinuousClock.now + limit
      while try !masters().isEmpty {
        if ContinuousClock.now > deadline { return false }
        Thread.sleep(forTimeInterval: 0.1)
      }
      return true
    }

    /// Closes what the test left open.
    func closeAll() {
      _ = try? connections(["close"])
    }
  }

  @Test func theSecondRunReusesTheFirstRunsConnections() throws {
    let fixture = try Fixture("persist", hosts: 3)
    defer { fixture.closeAll() }
    try fixture.run()
    try fixture.run()
    try fixture.expectSessions(1, "two runs within the window: one session per host")
    let listed = try fixture.connections(["--json"])
    let hosts = listed.stdout.split(separator: "\n").compactMap {
      (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["host"] as? String
    }
    #expect(hosts.sorted() == fixture.lab.hosts.sorted(), "\(listed.stdout)\(listed.stderr)")
    let table = try fixture.connections()
    #expect(table.stdout.hasPrefix("HOST") && table.stdout.contains(fixture.lab.hosts[0]), "\(table.stdout)")
    // The directory is its owner's alone.
    var status = stat()
    #expect(lstat(fixture.runtime.path + "/persist", &status) == 0 && status.st_mode & 0o777 == 0o700)
  }

  @Test func anotherIdentityOrAChangedPinIsNotReused() throws {
    let fixture = try Fixture("persistkey", hosts: 2)
    defer { fixture.closeAll() }
    try fixture.run()
    // The same key under another path is another identity: a connection of its own.
    let copy = fixture.runtime.path + "/other_key"
    try FileManager.default.copyItem(atPath: fixture.lab.key, toPath: copy)
    try fixture.run(["--persist", "5m", "--identity", copy])
    try fixture.expectSessions(2, "another identity")
    // The host keys unpinned (as 'cfi-sh hosts forget' does): the connections made under
    // the old pins are refused, new ones pin the keys again.
    let knownHosts = fixture.lab.store.path + "/.ssh/known_hosts"
    try "".write(toFile: knownHosts, atomically: true, encoding: .utf8)
    try fixture.run(["--persist", "5m", "--identity", copy])
    try fixture.expectSessions(3, "the pins changed")
    // The refused connections were closed, not left beside the new ones: one per identity.
    let masters = try fixture.masters()
    #expect(masters.split(separator: "\n").count == 4, "\(masters)")
    try fixture.run(["--persist", "5m", "--identity", copy])
    try fixture.expectSessions(3, "pinned again, the new connections are reused")
  }

  @Test func closedConnectionsAreOpenedAfresh() throws {
    let fixture = try Fixture("persistclose", hosts: 2)
    defer { fixture.closeAll() }
    try fixture.run()
    let closed = try fixture.connections(["close", fixture.lab.hosts[0]])
    #expect(closed.status == 0 && closed.stdout.hasPrefix("closed root@\(fixture.lab.hosts[0])"), "\(closed.stdout)\(closed.stderr)")
    try fixture.run()
    let counts = try fixture.sessions()
    #expect(counts[fixture.lab.hosts[0]] == 2 && counts[fixture.lab.hosts[1]] == 1, "\(counts)")
    let all = try fixture.connections(["close"])
    #expect(all.stdout.split(separator: "\n").count == 2, "\(all.stdout)")
    #expect(try fixture.mastersGone(within: .seconds(15)), "masters left after 'connections close'")
    try fixture.run()
    let again = try fixture.sessions()
    #expect(again[fixture.lab.hosts[0]] == 3 && again[fixture.lab.hosts[1]] == 2, "after closing all: \(again)")
  }

  @Test func noMasterOutlivesItsWindow() throws {
    let fixture = try Fixture("persistidle", hosts: 2)
    defer { fixture.closeAll() }
    try fixture.run(["--persist", "2s"])
    // ssh ends a master idle for its window: a watchdog at three times it.
    let gone = try fixture.mastersGone(within: .seconds(6))
    #expect(gone, "masters alive past their window: \(gone ? "" : (try? fixture.masters()) ?? "")")
    #expect(try fixture.connections().stdout == "no connections kept open\n")
  }

  /// The shell's connections live for the session, and after it for their window: a run
  /// after the shell opens no new session.
  @Test func theShellsConnectionsOutliveIt() throws {
    let fixture = try Fixture("persistrepl", hosts: 2)
    defer { fixture.closeAll() }
    let repl = try fixture.lab.repl(
      history: fixture.runtime.path + "/history", arguments: ["--no-discovery", "--persist", "5m"], environment: fixture.environment)
    defer { repl.terminate() }
    try repl.expect("cfi> ")
    for _ in 1...2 {
      repl.sendLine(#"on all < run "true" >"#)
      try repl.expect("recap")
      try repl.expect("cfi> ")
    }
    repl.sendLine(":quit")
    #expect(try repl.waitForExit() == 0)
    try fixture.run()
    try fixture.expectSessions(1, "two entries of the shell, then a run")
  }

  /// SIGTERM stops a run as ever — its remote commands killed on their hosts — and its
  /// connections stay for their window, as any run's: the next run uses them.
  @Test func aStoppedRunKillsItsCommandsAndKeepsItsConnections() throws {
    let fixture = try Fixture("persiststop", hosts: 2)
    defer { fixture.closeAll() }
    let lab = fixture.lab
    let run = try lab.start(#"on all < run "sleep 60" >"#, ["--persist", "5m"], environment: fixture.environment)
    try waitUntil("every host runs the sleep", within: .seconds(30)) {
      try lab.hosts.allSatisfy { try lab.exec($0, "pgrep -f '^sleep 60$'").status == 0 }
    }
    kill(run.processIdentifier, SIGTERM)
    // A watchdog at three times the bound of stopping (the remote kill's 5 s connect
    // timeout, then the record): it fails by name rather than hanging the suite.
    let deadline = ContinuousClock.now + .seconds(30)
    while run.isRunning, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if run.isRunning {
      Issue.record("cfi-sh still runs 30 s after SIGTERM")
      kill(run.processIdentifier, SIGKILL)
    }
    #expect(run.finish().status == 143)
    for host in lab.hosts {
      #expect(try lab.exec(host, "pgrep -f '^sleep 60$'").status != 0, "the remote sleep still runs on \(host)")
    }
    let masters = try fixture.masters()
    #expect(masters.split(separator: "\n").count == lab.hosts.count, "\(masters)")
    try fixture.run()
    try fixture.expectSessions(1, "a stopped run, then another")
  }

  /// The shell idle past its connections' window: ssh ended them, leaving their sockets;
  /// the next entry opens one new connection per host (not a direct ssh per command, each
  /// warning of a dead socket).
  @Test func theShellReopensConnectionsThatEndedWhileIdle() throws {
    let fixture = try Fixture("reopen", hosts: 2)
    defer { fixture.closeAll() }
    let repl = try fixture.lab.repl(
      history: fixture.runtime.path + "/history", arguments: ["--no-discovery", "--persist", "2s"], environment: fixture.environment)
    defer { repl.terminate() }
    try repl.expect("cfi> ")
    repl.sendLine(#"on all < run "true" >"#)
    try repl.expect("recap")
    try repl.expect("cfi> ")
    // ssh ends them once idle for their window: a watchdog at three times it.
    #expect(try fixture.mastersGone(within: .seconds(6)), "masters alive past their window")
    // Two commands: over a dead socket, each would be an ssh session of its own.
    repl.sendLine(#"on all < run "true"; run "true" >"#)
    let shown = try repl.expect("recap") + (try repl.expect("cfi> "))
    #expect(!shown.contains("Control socket connect"), "\(shown)")
    try fixture.expectSessions(2, "the first entry's connection, then one new one per host")
    repl.sendLine(":quit")
    #expect(try repl.waitForExit() == 0)
  }

  @Test func persistZeroLeavesNoMaster() throws {
    let fixture = try Fixture("persistzero", hosts: 2)
    defer { fixture.closeAll() }
    try fixture.run(["--persist", "0"])
    // A master told to exit answers before its process is gone: waited for, with a watchdog.
    #expect(try fixture.mastersGone(within: .seconds(15)), "masters left with --persist 0: \((try? fixture.masters()) ?? "")")
    let left = (try? FileManager.default.contentsOfDirectory(atPath: fixture.runtime.path)) ?? []
    #expect(Set(left).isSubset(of: ["persist", "ssh_config"]), "control directories left: \(left)")
    #expect(((try? FileManager.default.contentsOfDirectory(atPath: fixture.runtime.path + "/persist")) ?? []).isEmpty)
    // A runbook's `set persist = 0` does the same.
    let result = try fixture.lab.cfi(["-c", "set persist = 0\non all < run \"true\" >"], environment: fixture.environment.merging(["CFI_PERSIST": ""]) { $1 })
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try fixture.mastersGone(within: .seconds(15)), "masters left with set persist = 0: \((try? fixture.masters()) ?? "")")
  }
}
