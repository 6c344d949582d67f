// Each action on a real fleet: its effect inside the hosts, `ok` on a second run, and
// `--check` changing nothing.

import Foundation
import TestSupport
import Testing

/// The status of every host in a run's recap, from the JSON event stream.
func outcomes(_ result: Command) -> [String: String] {
  var statuses: [String: String] = [:]
  for line in result.stdout.split(separator: "\n") {
    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
      object["event"] as? String == "run_finished", let list = object["outcomes"] as? [[String: Any]]
    else { continue }
    for outcome in list { statuses[outcome["host"] as! String] = outcome["status"] as? String }
  }
  return statuses
}

/// The `step_finished` events of a run.
func steps(_ result: Command) -> [[String: Any]] {
  events(result, "step_finished")
}

/// The events named `name` of a `--json` run, in order.
func events(_ result: Command, _ name: String) -> [[String: Any]] {
  result.stdout.split(separator: "\n").compactMap { line in
    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
      object["event"] as? String == name
    else { return nil }
    return object
  }
}

func all(_ hosts: [String], _ status: String) -> [String: String] {
  Dictionary(uniqueKeysWithValues: hosts.map { ($0, status) })
}

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct ActionFleetTests {
  @Test func runExecutesOnEveryHostWithItsOwnOutput() throws {
    let lab = try Lab("run")
    let result = try lab.run(#"on all < let name = run "hostname"; run "echo $name > /root/seen" >"#, ["--json"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(outcomes(result) == all(lab.hosts, "ok"))
    for host in lab.hosts { #expect(try lab.read(host, "cat /root/seen") == host) }
    // --check runs nothing.
    let check = try lab.run(#"on all < run "touch /root/checked" >"#, ["--check", "--json"])
    #expect(check.status == 0)
    #expect(steps(check).allSatisfy { $0["status"] as? String == "skipped" })
    #expect(try lab.exec("pc01", "test -e /root/checked").status != 0)
  }

  @Test func runReportsFailuresWithExitCodeAndOutput() throws {
    let lab = try Lab("runfail")
    let result = try lab.run(
      #"on all < run 'echo out; echo err >&2; [ $(hostname) != pc02 ] || exit 7'; run "touch /root/after" >"#,
      ["--json"])
    #expect(result.status == 2)
    let failed = try #require(steps(result).first { $0["host"] as? String == "pc02" })
    #expect(failed["exit_code"] as? Int == 7)
    #expect(failed["stdout"] as? String == "out\n")
    #expect(failed["stderr"] as? String == "err\n")
    #expect(try lab.exec("pc02", "test -e /root/after").status != 0, "a failure ends the host's block")
    #expect(try lab.exec("pc01", "test -e /root/after").status == 0)
  }

  @Test func timeoutKillsTheRemoteCommand() throws {
    let lab = try Lab("timeout", hosts: 5)
    let result = try lab.run(#"set timeout = 2s; on all < run "sleep 30; touch /root/late" >"#, ["--json"])
    #expect(result.status == 2)
    #expect(outcomes(result) == all(lab.hosts, "failed"))
    #expect(steps(result).allSatisfy { ($0["message"] as? String)?.contains("timed out after 2s") == true })
    for host in lab.hosts {
      #expect(try lab.read(host, "pgrep -f '^sleep 30$' || true") == "", "the remote sleep must be gone on \(host)")
    }
  }

  @Test func copyPushesFilesWithTheirModesAndLeavesParentsAlone() throws {
    let lab = try Lab("copy")
    for group in ["lab", "office"] {
      try lab.storeFile("\(group)/etc/dpkg/dpkg.cfg.d/cfi", "# from \(group)\nforce-confold\n")
      try lab.storeFile("\(group)/etc/cfi-secret.conf", "token\n", mode: 0o600)
    }
    // Give the store's etc/ an odd mode: it must not reach the host's /etc.
    chmod(lab.store.path + "/lab/etc", 0o700)
    let before = try lab.read("pc01", "stat -c %a /etc")
    let first = try lab.run(#"on all < copy "etc/dpkg/dpkg.cfg.d/cfi"; copy "etc/cfi-secret.conf" >"#, ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first) == all(lab.hosts, "changed"))
    #expect(try lab.read("pc01", "cat /etc/dpkg/dpkg.cfg.d/cfi") == "# from lab\nforce-confold")
    #expect(try lab.read("pc05", "cat /etc/dpkg/dpkg.cfg.d/cfi") == "# from office\nforce-confold")
    #expect(try lab.read("pc01", "stat -c '%a %U' /etc/cfi-secret.conf") == "600 root")
    #expect(try lab.read("pc01", "stat -c %a /etc") == before)
    let second = try lab.run(#"on all < copy "etc/dpkg/dpkg.cfg.d/cfi" >"#, ["--json"])
    #expect(outcomes(second) == all(lab.hosts, "ok"))
    // A change is reported by --check and not made.
    try lab.storeFile("lab/etc/dpkg/dpkg.cfg.d/cfi", "# changed\n")
    let check = try lab.run(#"on group lab < copy "etc/dpkg/dpkg.cfg.d/cfi" >"#, ["--check", "--json"])
    #expect(outcomes(check) == all(["pc01", "pc02", "pc03"], "changed"))
    #expect(try lab.read("pc01", "cat /etc/dpkg/dpkg.cfg.d/cfi") == "# from lab\nforce-confold")
  }

  @Test func copyToADestinationAndSyncOfTheWholeTree() throws {
    let lab = try Lab("sync")
    try lab.storeFile("lab/etc/cfi/a.conf", "a\n")
    try lab.storeFile("lab/opt/tool/bin/run.sh", "#!/bin/sh\necho hi\n", mode: 0o755)
    try lab.storeFile("office/etc/cfi/a.conf", "office\n")
    let result = try lab.run(#"on all < sync; copy "etc/cfi/a.conf" to "/root/copied.conf" >"#, ["--json"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try lab.read("pc02", "cat /etc/cfi/a.conf /root/copied.conf") == "a\na")
    #expect(try lab.read("pc02", "/opt/tool/bin/run.sh") == "hi")
    #expect(try lab.read("pc06", "cat /etc/cfi/a.conf; test -e /opt/tool || echo absent") == "office\nabsent")
    #expect(try lab.read("pc02", "stat -c %a / /etc") == "755\n755")
    let again = try lab.run("on all < sync >", ["--json"])
    #expect(outcomes(again) == all(lab.hosts, "ok"))
  }

  /// The store may be writable by others than root. A directory of a copy's source swapped
  /// for a link between the check and rsync (here: while ssh connects, from a `Match exec`
  /// of the run's ssh_config) must not send what the link leads to: the host gets what was
  /// checked.
  @Test func aSourceSwappedForALinkWhileConnectingSendsWhatWasChecked() throws {
    let lab = try Lab("pushswap", hosts: 1, groups: ["lab"])
    try lab.storeFile("lab/etc/app/conf", "checked\n")
    let outside = try TemporaryDirectory()
    _ = try outside.write("etc/app/conf", "SECRET\n")
    let etc = lab.store.path + "/lab/etc"
    let swap = try lab.storeFile(
      "swap.sh", "#!/bin/sh\n[ -L '\(etc)' ] || { mv '\(etc)' '\(etc).checked' && ln -s '\(outside.path)/etc' '\(etc)'; }\nexit 1\n",
      mode: 0o755)
    let config = try lab.storeFile("ssh_config", "Match exec \"\(swap)\"\n")
    func restore() throws {
      try FileManager.default.removeItem(atPath: etc)
      try FileManager.default.moveItem(atPath: etc + ".checked", toPath: etc)
    }
    for (runbook, file) in [
      (#"on all < copy "etc/app" >"#, "/etc/app/conf"), (#"on all < copy "etc/app/conf" to "/root/conf" >"#, "/root/conf"),
    ] {
      let result = try lab.run(runbook, ["--ssh-config", config, "--json"])
      #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: etc)) == outside.path + "/etc", "the swap happened")
      #expect(try lab.read("pc01", "cat \(file)") != "SECRET", "\(runbook) sent a file from outside the store")
      #expect(result.status == 0 && outcomes(result) == ["pc01": "changed"], "\(result.stderr)")
      #expect(try lab.read("pc01", "cat \(file)") == "checked")
      try restore()
    }
  }

  @Test func scriptIsUploadedRunWithArgumentsAndRemoved() throws {
    let lab = try Lab("script")
    for group in ["lab", "office"] {
      try lab.storeFile("\(group)/install-myapp.sh", "#!/bin/sh\nset -e\nmkdir -p /opt/myapp\necho \"$1 $2 $0\" > /opt/myapp/VERSION\n", mode: 0o755)
    }
    let result = try lab.run(#"on all < script "install-myapp.sh" "1.2" "with space" >"#, ["--json"])
    #expect(result.status == 0, "\(result.stderr)")
    for host in lab.hosts {
      let line = try lab.read(host, "cat /opt/myapp/VERSION")
      #expect(line.hasPrefix("1.2 with space /tmp/cfi-script."))
      #expect(try lab.read(host, "ls /tmp | grep -c cfi-script || true") == "0", "the uploaded script is removed")
    }
    let check = try lab.run(#"on all < script "install-myapp.sh" "2.0" "x" >"#, ["--check"])
    #expect(check.status == 0)
    #expect(try lab.read("pc01", "cut -d' ' -f1 /opt/myapp/VERSION") == "1.2")
  }

  @Test func passwordSetsTheHashOnceAndNeverShowsIt() throws {
    let lab = try Lab("password")
    let hash = "$y$j9T$7kGf0c7lq2X1yJ2sQwZfK/$c3chAj6.6IVz7a7qa80bHD1MiRr4Lsd.HIQ/VvnFNlD"
    let runbook = "let hash = '\(hash)'\non all < password root hash >"
    let check = try lab.run(runbook, ["--check", "--json"])
    #expect(outcomes(check) == all(lab.hosts, "changed"))
    #expect(try lab.read("pc01", "getent shadow root | cut -d: -f2") != hash)
    let first = try lab.run(runbook, ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first) == all(lab.hosts, "changed"))
    for host in lab.hosts { #expect(try lab.read(host, "getent shadow root | cut -d: -f2") == hash) }
    let second = try lab.run(runbook, ["--json"])
    #expect(outcomes(second) == all(lab.hosts, "ok"))
    let audit = try String(contentsOfFile: lab.auditLog, encoding: .utf8)
    #expect(!first.stdout.contains(hash) && !audit.contains(hash) && !first.stderr.contains(hash))
  }

  @Test func badHashIsRefusedBeforeAnythingRuns() throws {
    let lab = try Lab("badhash")
    let result = try lab.run(#"on all < run "touch /root/ran" >"# + "\non all < password root 'plaintext' >")
    #expect(result.status == 1)
    #expect(result.stderr.contains("not a valid crypt hash"))
    #expect(try lab.exec("pc01", "test -e /root/ran").status != 0)
  }
}
