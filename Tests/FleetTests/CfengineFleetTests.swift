// runbooks/cfengine-bootstrap.cfi on a real fleet, with the example store: cfengine3 installed,
// the group's policy and the hub's key pushed, the agent bootstrapped to the hub once, the
// service started and enabled once, a second run all `ok`, and restarts only where something
// changed.
//
// The hosts have no network, so Debian's cfengine3 cannot be installed there; a stand-in
// package of the same name comes from the test's own apt repository: its cf-agent records
// `--bootstrap HUB` in policy_server.dat as the real one does, and its postinst makes the lab's
// stand-in systemctl know cfengine3.service (scripts/README.md, "How the lab fakes systemd").

import Foundation
import TestSupport
import Testing

private let workDirectory = "/var/lib/cfengine3"
private let unitDirectory = "/var/lib/cfi-lab-systemd/cfengine3.service"

/// The stand-in cf-agent: `--bootstrap HUB` (also `-B HUB`) writes the hub into
/// policy_server.dat, prints roughly what cf-agent 3.21 prints, and counts the bootstraps in
/// the work dir's `stand-in-bootstraps`; every other invocation succeeds and does nothing.
private let standInAgent = """
  #!/bin/sh
  # Stand-in for CFEngine's cf-agent, for the fleet tests of cfi-sh.
  case "$1" in
    --bootstrap|-B)
      [ -n "$2" ] || { echo "   error: Option '$1' requires an argument" >&2; exit 1; }
      echo "R: Bootstrapping from host '$2' via built-in policy '\(workDirectory)/inputs/failsafe.cf'"
      printf '%s\\n' "$2" >\(workDirectory)/policy_server.dat
      echo "$2" >>\(workDirectory)/stand-in-bootstraps
      echo "R: This host assumes the role of policy client"
      echo "  notice: Bootstrap to '$2' completed successfully!"
      ;;
  esac
  exit 0

  """

/// The stand-in package's postinst: the work dir as the real package ships it (owner-only
/// inputs and keys), and the unit the real package installs, for the lab's systemctl.
private let standInPostinst = """
  mkdir -p \(workDirectory)/inputs \(workDirectory)/ppkeys \(workDirectory)/outputs
  chmod 700 \(workDirectory)/inputs \(workDirectory)/ppkeys
  mkdir -p \(unitDirectory)
  """

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct CfengineFleetTests {
  private let runbook = Command.packageRoot.appendingPathComponent("runbooks/cfengine-bootstrap.cfi").path

  /// How many times the stand-in systemctl started or restarted cfengine3 on each host.
  private func starts(_ lab: Lab) throws -> [Int] {
    try lab.hosts.map { Int(try lab.read($0, "cat \(unitDirectory)/starts 2>/dev/null | wc -l")) ?? -1 }
  }

  /// How many times each host's agent was bootstrapped.
  private func bootstraps(_ lab: Lab) throws -> [Int] {
    try lab.hosts.map { Int(try lab.read($0, "cat \(workDirectory)/stand-in-bootstraps 2>/dev/null | wc -l")) ?? -1 }
  }

  @Test func bootstrapsOnceThenIsOkAndRestartsOnlyWhereSomethingChanged() throws {
    let repository = try AptRepository()
    try repository.publish(
      "cfengine3", "3.21.0-2+cfitest1", postinst: standInPostinst,
      files: ["/usr/bin/cf-agent": (standInAgent, 0o755)])
    let lab = try Lab("cfengine", hosts: 3, groups: ["lab"])
    let copied = try shell(
      ["/bin/cp", "-a", Command.packageRoot.appendingPathComponent("runbooks/store/lab").path + "/.", lab.store.path + "/lab"])
    #expect(copied.status == 0, "\(copied.stderr)")
    try lab.storeFile("lab/etc/apt/sources.list.d/cfi-test.list", repository.sourceLine + "\n")
    // The repository as the hosts' apt source, with fresh lists: --check simulates with them.
    let source = try lab.run(#"on all < copy "etc/apt/sources.list.d/cfi-test.list"; run "apt-get update -q" >"#)
    try #require(source.status == 0, "\(source.stderr)")
    let hub = lab.serverAddress
    let storePolicy = try String(contentsOfFile: lab.store.path + "/lab/var/lib/cfengine3/inputs/promises.cf", encoding: .utf8)

    // Without the hub: the usage, and nothing runs.
    let usage = try lab.cfi([runbook])
    #expect(usage.status == 1)
    #expect(usage.stderr.contains("usage: cfengine-bootstrap.cfi HUB [GROUP]"), "\(usage.stderr)")

    // --check says what would change and changes nothing.
    let check = try lab.cfi(["--check", "--json", runbook, hub])
    #expect(check.status == 0, "\(check.stderr)\n\(check.stdout)")
    #expect(outcomes(check) == all(lab.hosts, "changed"))
    #expect(message(stepResults(check, "install")["pc01"]).contains("+cfengine3"))
    // systemd would not know cfengine3.service yet: the runbook says so instead of failing.
    let notes = events(check, "message").compactMap { $0["message"] as? String }
    #expect(notes.filter { $0 == "would start and enable cfengine3 once it is installed" }.count == lab.hosts.count, "\(notes)")
    for host in lab.hosts {
      #expect(try lab.exec(host, "test -e \(workDirectory) || test -e /usr/bin/cf-agent").status != 0, "\(host): --check installed")
    }

    // The first run does it all: package, policy, key, bootstrap, service started once.
    let first = try lab.cfi(["--json", runbook, hub])
    #expect(first.status == 0, "\(first.stderr)\n\(first.stdout)")
    #expect(outcomes(first) == all(lab.hosts, "changed"))
    for host in lab.hosts {
      #expect(try lab.read(host, "dpkg-query -W -f='${db:Status-Abbrev}' cfengine3") == "ii", "\(host)")
      #expect(try lab.exec(host, "cat \(workDirectory)/inputs/promises.cf").stdout == storePolicy, "\(host)")
      #expect(try lab.exec(host, "test -s \(workDirectory)/inputs/def.cf && ls \(workDirectory)/ppkeys | grep -q '^root-SHA=.*\\.pub$'").status == 0, "\(host)")
      #expect(try lab.read(host, "cat \(workDirectory)/policy_server.dat") == hub, "\(host)")
      #expect(try lab.exec(host, "test -e \(unitDirectory)/active && test -e \(unitDirectory)/enabled").status == 0, "\(host)")
    }
    #expect(try starts(lab) == [1, 1, 1], "started once, not restarted on top")
    #expect(try bootstraps(lab) == [1, 1, 1])

    // The second run changes nothing: every step ok, no restart, no bootstrap.
    let second = try lab.cfi(["--json", runbook, hub])
    #expect(second.status == 0, "\(second.stderr)")
    #expect(outcomes(second) == all(lab.hosts, "ok"))
    let changedSteps = steps(second).filter { $0["status"] as? String != "ok" }
    #expect(changedSteps.isEmpty, "\(changedSteps)")
    #expect(try starts(lab) == [1, 1, 1])
    #expect(try bootstraps(lab) == [1, 1, 1])

    // A host that lost its bootstrap is bootstrapped again and restarted; the others are ok.
    try lab.exec("pc02", "rm \(workDirectory)/policy_server.dat")
    let lost = try lab.cfi(["--json", runbook, hub])
    #expect(lost.status == 0, "\(lost.stderr)")
    #expect(outcomes(lost) == ["pc01": "ok", "pc02": "changed", "pc03": "ok"])
    #expect(try lab.read("pc02", "cat \(workDirectory)/policy_server.dat") == hub)
    #expect(try bootstraps(lab) == [1, 2, 1])
    #expect(try starts(lab) == [1, 2, 1])

    // A new policy in the store: every host gets it and restarts once; a hub unchanged is not
    // bootstrapped again.
    try lab.storeFile("lab/var/lib/cfengine3/inputs/def.cf", "bundle common def\n{\n  vars:\n      \"motd\" string => \"policy 2\";\n}\n")
    let newPolicy = try lab.cfi(["--json", runbook, hub])
    #expect(newPolicy.status == 0, "\(newPolicy.stderr)")
    #expect(outcomes(newPolicy) == all(lab.hosts, "changed"))
    for host in lab.hosts { #expect(try lab.read(host, "grep -c 'policy 2' \(workDirectory)/inputs/def.cf") == "1") }
    #expect(try starts(lab) == [2, 3, 2])
    #expect(try bootstraps(lab) == [1, 2, 1])
    #expect(outcomes(try lab.cfi(["--json", runbook, hub])) == all(lab.hosts, "ok"))
  }
}
