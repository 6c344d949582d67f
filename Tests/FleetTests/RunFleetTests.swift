// How runs behave on a real fleet: unreachable hosts, pinned host keys, the store lock, exit
// statuses, known clients, one handshake per host.

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct RunFleetTests {
  @Test func aHostWithoutSSHDIsUnreachableWhileTheOthersSucceed() throws {
    let lab = try Lab("unreach")
    try lab.stopSSHD("pc03")
    let result = try lab.run(#"on all < run "touch /root/done" >"#, ["--json", "--connect-timeout", "3s"])
    #expect(result.status == 4)
    var expected = all(lab.hosts, "ok")
    expected["pc03"] = "unreachable"
    #expect(outcomes(result) == expected)
    let step = try #require(steps(result).first { $0["host"] as? String == "pc03" })
    #expect(step["message"] as? String == "connection refused (no sshd listening)")
    #expect(step["reason"] as? String == "refused")
    #expect(try lab.exec("pc01", "test -e /root/done").status == 0)
  }

  @Test func aSilentHostCostsTheConnectTimeoutAndIsUnreachable() throws {
    let lab = try Lab("silent", hosts: 5)
    try shell(["/bin/bash", Command.packageRoot.appendingPathComponent("scripts/lab").path, "--prefix", lab.prefix, "unplug", "pc02"])
    let result = try lab.run(#"on all < run "true" >"#, ["--json", "--connect-timeout", "2s"])
    #expect(result.status == 4)
    let step = try #require(steps(result).first { $0["host"] as? String == "pc02" })
    #expect(step["status"] as? String == "unreachable")
    #expect(step["message"] as? String == "connect timeout after 2s")
    #expect(step["reason"] as? String == "connect_timeout")
  }

  @Test func exitStatusesTellFailedAndUnreachableApart() throws {
    let lab = try Lab("exits", hosts: 5)
    #expect(try lab.run(#"on all < run "true" >"#).status == 0)
    #expect(try lab.run(#"on all < run '[ $(hostname) != pc01 ]' >"#).status == 2)
    try lab.stopSSHD("pc05")
    #expect(try lab.run(#"on host pc[02-05] < run "true" >"#).status == 4)
    #expect(try lab.run(#"on all < run '[ $(hostname) != pc01 ]' >"#).status == 6)
    #expect(try lab.run("on all < run \"true\" >\nfor x in 5 < print x >").status == 1 | 4)
  }

  @Test func aChangedHostKeyIsRefusedUntilForgotten() throws {
    let lab = try Lab("hostkey", hosts: 5)
    #expect(try lab.run(#"on all < run "true" >"#).status == 0)
    // pc02 is "reinstalled": a new host key.
    try lab.exec(
      "pc02",
      "rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && pkill -HUP -x sshd")
    let refused = try lab.run(#"on all < run "touch /root/after-rekey" >"#, ["--json"])
    #expect(refused.status == 2)
    let step = try #require(steps(refused).first { $0["host"] as? String == "pc02" })
    #expect((step["message"] as? String)?.contains("cfi-sh hosts forget pc02") == true)
    #expect(try lab.exec("pc02", "test -e /root/after-rekey").status != 0)
    #expect(try lab.exec("pc01", "test -e /root/after-rekey").status == 0)
    let forget = try Command.run(["hosts", "forget", "--store", lab.store.path, "pc02"])
    #expect(forget.status == 0)
    #expect(forget.stdout.contains("pc02: forgot its host key"))
    #expect(hostKeys(lab)["pc02"] == nil, "forgotten with its pin")
    #expect(try lab.run(#"on host pc02 < run "touch /root/after-rekey" >"#).status == 0)
    // The new pin is recorded with the known client.
    #expect(hostKeys(lab)["pc02"] == [try fingerprint(lab, "pc02")])
  }

  /// The fingerprints `cfi-sh hosts --json` shows per host (without discovery).
  private func hostKeys(_ lab: Lab) -> [String: [String]] {
    guard let listed = try? Command.run(["hosts", "--store", lab.store.path, "--json", "--no-discovery"]) else { return [:] }
    var keys: [String: [String]] = [:]
    for line in listed.stdout.split(separator: "\n") {
      guard let row = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        let name = row["name"] as? String, let key = row["host_keys"] as? [String]
      else { continue }
      keys[name] = key
    }
    return keys
  }

  /// The fingerprint of `host`'s own ed25519 key, as ssh-keygen prints it there.
  private func fingerprint(_ lab: Lab, _ host: String) throws -> String {
    let fields = try lab.read(host, "ssh-keygen -l -E sha256 -f /etc/ssh/ssh_host_ed25519_key.pub").split(separator: " ")
    return "ED25519 " + (fields.count > 1 ? fields[1] : "?")
  }

  @Test func reachedHostsAreRememberedAndListed() throws {
    let lab = try Lab("known", hosts: 5)
    #expect(try lab.run(#"on group lab < run "true" >"#).status == 0)
    let listed = try Command.run(["hosts", "--store", lab.store.path, "--json"])
    #expect(listed.status == 0)
    let rows = listed.stdout.split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    let labHosts = Array(lab.hosts.prefix(rows.count))
    #expect(rows.map { $0["name"] as? String } == labHosts)
    #expect(rows.allSatisfy { $0["group"] as? String == "lab" && $0["last_seen"] != nil && $0["address"] != nil })
    // Each with the key its name is pinned to: the host's own.
    let keys = hostKeys(lab)
    for host in labHosts { #expect(keys[host] == [try fingerprint(lab, host)], "\(host)") }
    // A host known from an earlier run is tried without the client list.
    let again = try Command.run([
      "--identity", lab.key, "--store", lab.store.path, "--audit-log", "none", "-c", #"on group lab < run "true" >"#,
    ])
    #expect(again.status == 0, "\(again.stderr)")
  }

  /// A store an older cfi-sh kept its known clients in JSON: the first run imports them
  /// (once, said once) and reaches them without a client list.
  @Test func knownClientsOfAnOlderStoreAreImportedOnce() throws {
    let lab = try Lab("import", hosts: 4)
    let clients = try String(contentsOfFile: lab.inventory, encoding: .utf8).split(separator: "\n").compactMap { line in
      var entry: [String: String] = [:]
      for (position, field) in line.split(separator: " ").enumerated() {
        if position == 0 { entry["name"] = String(field) } else if let equals = field.firstIndex(of: "=") {
          entry[String(field[..<equals])] = String(field[field.index(after: equals)...])
        }
      }
      return entry["group"] == "lab" ? entry : nil
    }
    #expect(clients.count == 2)
    try FileManager.default.createDirectory(atPath: lab.store.path + "/.cfi", withIntermediateDirectories: true)
    try JSONSerialization.data(withJSONObject: clients).write(to: URL(fileURLWithPath: lab.store.path + "/.cfi/known-clients.json"))
    let arguments = [
      "--identity", lab.key, "--store", lab.store.path, "--audit-log", "none", "--no-discovery", "--json", "-c",
      #"on group lab < run "echo x >> /root/imported" >"#,
    ]
    let first = try Command.run(arguments)
    #expect(outcomes(first) == Dictionary(uniqueKeysWithValues: clients.map { ($0["name"]!, "ok") }), "\(first.stderr)")
    #expect(first.stderr.contains("imported 2 known clients from \(lab.store.path)/.cfi/known-clients.json"), "\(first.stderr)")
    #expect(FileManager.default.fileExists(atPath: lab.store.path + "/.cfi/known-clients.json.imported"))
    let second = try Command.run(arguments)
    #expect(outcomes(second).count == 2, "\(second.stderr)")
    #expect(!second.stderr.contains("imported"), "\(second.stderr)")
  }

  @Test func twoRunsOnOneStoreTakeTurns() throws {
    let lab = try Lab("lock", hosts: 5)
    let runbook = #"on host pc01 < run 'echo "$(date +%s%N) start" >> /root/log; sleep 2; echo "$(date +%s%N) end" >> /root/log' >"#
    let runs = try [lab.start(runbook), lab.start(runbook)]
    let results = runs.map { $0.finish() }
    #expect(results.allSatisfy { $0.status == 0 })
    // The log must read start, end, start, end: the second run waited for the first.
    let events = try lab.read("pc01", "cat /root/log").split(separator: "\n").map { $0.split(separator: " ")[1] }
    #expect(events == ["start", "end", "start", "end"])
    #expect(results.contains { $0.stderr.contains("waiting for another run") })
    // With --no-wait, a second run fails at once with status 75.
    let holder = try lab.start(#"on host pc01 < run "sleep 3" >"#)
    Thread.sleep(forTimeInterval: 1)
    let refused = try lab.run(#"on host pc01 < run "true" >"#, ["--no-wait"])
    #expect(holder.finish().status == 0)
    #expect(refused.status == 75)
    #expect(refused.stderr.contains("another run holds the lock"))
  }

  @Test func oneHandshakePerHostForAWholeRunAndNoMasterLeftAfter() throws {
    let lab = try Lab("mux", hosts: 5)
    // This run's control sockets go to a directory of its own (CFI_RUNTIME_DIR), to be checked after.
    let temporary = try TemporaryDirectory()
    let runbook = (1...10).map { #"on all < run "echo step\#($0)" >"# }.joined(separator: "\n")
    let result = try Command.run(
      ["-i", lab.inventory, "--identity", lab.key, "--store", lab.store.path, "--audit-log", "none", "-c", runbook],
      environment: ["CFI_RUNTIME_DIR": temporary.path])
    #expect(result.status == 0, "\(result.stderr)")
    for host in lab.hosts {
      // sshd logs one accepted publickey per connection.
      let accepted = try lab.read(host, "grep -c 'Accepted publickey' /var/log/lab-sshd.log || true")
      #expect(accepted == "1", "\(host) accepted \(accepted) connections")
    }
    // The masters were told to exit (over their sockets): none is left running.
    var left = ""
    for _ in 0..<50 {
      left = try shell(["/bin/sh", "-c", "pgrep -af '^[^ ]*ssh[: ].*\(temporary.path)' || true"]).stdout
      if left.isEmpty { break }
      Thread.sleep(forTimeInterval: 0.1)
    }
    #expect(left == "", "ssh masters left running")
    #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path) == [], "control sockets left behind")
  }

  /// In a runbook's last block, a host's master is closed as soon as the host is done with
  /// it, not when the last host is: a run over hundreds of hosts does not hold a connection
  /// to every host it is done with. The other host goes on over its own master.
  @Test func aHostsConnectionClosesOnceTheRunIsDoneWithIt() throws {
    let lab = try Lab("release", hosts: 2)
    let (done, held) = (lab.hosts[0], lab.hosts[1])
    let temporary = try TemporaryDirectory()
    // The held host's command waits for /root/hold to go (a minute at most); the other's does
    // not. Each says it ran (/root/ran), so that a master is known to have been opened.
    _ = try lab.exec(held, "touch /root/hold")
    let running = try lab.start(
      "on all < run 'touch /root/ran; i=0; while [ -e /root/hold ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo released' >",
      ["--json", "--persist", "0"], environment: ["CFI_RUNTIME_DIR": temporary.path])
    func master(_ host: String) throws -> String {
      try shell(["/bin/sh", "-c", "pgrep -af '^[^ ]*ssh[: ].*ControlPath=\(temporary.path)/[^ ]*/\(host) ' || true"]).stdout
    }
    // Waited for as conditions, with a watchdog each: the held host runs its command...
    #expect(waitUntil(seconds: 30) { (try? lab.read(held, "pgrep -f '[r]oot/hold' || true"))?.isEmpty == false })
    #expect(try !master(held).isEmpty, "the held host's master must run while its command does")
    // ... the other host's command has run over its master ...
    #expect(waitUntil(seconds: 30) { (try? lab.exec(done, "test -e /root/ran"))?.status == 0 }, "\(done) must have run its command")
    // ... and its master goes while the held host's command still runs.
    #expect(
      waitUntil(seconds: 30) { (try? master(done))?.isEmpty == true }, "\(done)'s master must be closed once the run is done with it")
    #expect(running.isRunning, "the run must still wait for \(held)")
    _ = try lab.exec(held, "rm -f /root/hold")
    let result = running.finish()
    #expect(result.status == 0, "\(result.stderr)")
    #expect(outcomes(result) == all(lab.hosts, "ok"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path) == [], "control sockets left behind")
  }

  @Test func auditLogHasOneRecordPerRunAndPerHost() throws {
    let lab = try Lab("audit", hosts: 5)
    #expect(try lab.run(#"on all < run "true" >"#, []).status == 0)
    let lines = try String(contentsOfFile: lab.auditLog, encoding: .utf8).split(separator: "\n")
    let records = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    #expect(records.filter { $0["record"] as? String == "host" }.count == 5)
    let runs = records.filter { $0["record"] as? String == "run" }
    #expect(runs.count == 1)
    #expect(runs.first?["exit_status"] as? Int == 0 || runs.first?["exitStatus"] as? Int == 0)
  }

  @Test func anInterruptStopsTheRemoteCommandsAndLeavesNothingBehind() throws {
    let lab = try Lab("intr", hosts: 5)
    // This run's control sockets go to a directory of its own (CFI_RUNTIME_DIR), to be found empty after.
    let temporary = try TemporaryDirectory()
    let running = try lab.start(
      #"on all < run "sleep 30"; run "touch /root/after" >"#, ["--json"], environment: ["CFI_RUNTIME_DIR": temporary.path])
    // Wait until every host runs the sleep.
    for _ in 0..<50 {
      if try lab.hosts.allSatisfy({ try lab.read($0, "pgrep -f '^sleep 30$' || true") != "" }) { break }
      Thread.sleep(forTimeInterval: 0.2)
    }
    running.interrupt()
    let result = running.finish()
    #expect(result.status == 130)
    #expect(outcomes(result) == all(lab.hosts, "interrupted"))
    for host in lab.hosts {
      #expect(try lab.read(host, "pgrep -f '^sleep 30$' || true") == "", "the remote sleep must be gone on \(host)")
      #expect(try lab.exec(host, "test -e /root/after").status != 0)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: temporary.path) == [], "control sockets left behind")
  }

  @Test func dshGroupFilesAreGroups() throws {
    let lab = try Lab("dsh", hosts: 5)
    let dsh = try TemporaryDirectory()
    try dsh.write("web", "# the web servers\npc01\n  root@pc03  \npc01\n")
    let result = try Command.run(
      ["-i", lab.inventory, "--identity", lab.key, "--store", lab.store.path, "--audit-log", "none", "--json",
       "-c", #"on group web < run "touch /root/web" >"#],
      environment: ["CFI_DSH_GROUPS": dsh.path])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(outcomes(result) == ["pc01": "ok", "pc03": "ok"])
    #expect(try lab.exec("pc03", "test -e /root/web").status == 0)
    #expect(try lab.exec("pc02", "test -e /root/web").status != 0)
  }

  @Test func anSSHConfigFileReachesSSHAndRsync() throws {
    let lab = try Lab("sshcfg", hosts: 5)
    try lab.storeFile("lab/etc/cfi-probe", "probe\n")
    try lab.storeFile("office/etc/cfi-probe", "probe\n")
    // No --identity: the key comes from the config file only.
    let config = try lab.storeFile("ssh_config", "Host *\n  IdentityFile \(lab.key)\n  IdentitiesOnly yes\n")
    let result = try Command.run(
      ["-i", lab.inventory, "--store", lab.store.path, "--audit-log", "none", "--ssh-config", config,
       "-c", #"on all < run "true"; copy "etc/cfi-probe" >"#],
      environment: ["CFI_IDENTITY": ""])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try lab.read("pc05", "cat /etc/cfi-probe") == "probe")
  }

  @Test func aSymlinkOutOfTheStoreIsRefused() throws {
    let lab = try Lab("escape", hosts: 5)
    try FileManager.default.createDirectory(atPath: lab.store.path + "/lab/etc", withIntermediateDirectories: true)
    try FileManager.default.createSymbolicLink(atPath: lab.store.path + "/lab/etc/shadow", withDestinationPath: "/etc/shadow")
    let result = try lab.run(#"on all < copy "etc/shadow" >"#)
    #expect(result.status == 1)
    #expect(result.stderr.contains("leads out of the store"))
    #expect(try lab.exec("pc01", "cmp -s /etc/shadow /dev/null; test -L /etc/shadow").status != 0)
  }
}
