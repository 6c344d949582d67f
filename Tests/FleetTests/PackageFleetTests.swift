// install, remove, upgrade and pkgsync on a real fleet, from a local apt repository that the
// tests build themselves (AptRepository): the effect inside the hosts (dpkg-query), `ok` on a
// second run, `--check` changing nothing, apt's errors, the dpkg lock, and pkgsync's lists.

import Foundation
import TestSupport
import Testing

/// The store file that gives the hosts the test repository: cfi-sh itself pushes it.
private let sourceList = "etc/apt/sources.list.d/cfi-test.list"
private let copySource = #"copy "etc/apt/sources.list.d/cfi-test.list""#

/// A lab whose store holds the repository's apt source for both groups.
private func packageLab(_ name: String, hosts: Int = 6, repository: AptRepository) throws -> Lab {
  let lab = try Lab(name, hosts: hosts)
  for group in ["lab", "office"] { try lab.storeFile("\(group)/\(sourceList)", repository.sourceLine + "\n") }
  return lab
}

/// The test packages installed on a host, name → version (dpkg status `ii` only).
private func testPackages(_ lab: Lab, _ host: String) throws -> [String: String] {
  let listing = try lab.read(host, "dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\\n' 'cfi-test-*' 2>/dev/null")
  var packages: [String: String] = [:]
  for line in listing.split(separator: "\n") {
    let words = line.split(separator: " ")
    if words.count == 3, words[0] == "ii" { packages[String(words[1])] = String(words[2]) }
  }
  return packages
}

/// The `step_finished` events of one step (by its label, e.g. `install`), per host.
func stepResults(_ result: Command, _ label: String) -> [String: [String: Any]] {
  var results: [String: [String: Any]] = [:]
  for step in steps(result) where (step["step"] as? String)?.hasPrefix(label) == true {
    results[step["host"] as! String] = step
  }
  return results
}

func message(_ step: [String: Any]?) -> String { step?["message"] as? String ?? "" }
private func stdout(_ step: [String: Any]?) -> String { step?["stdout"] as? String ?? "" }

/// Runs a runbook in the background (RunningCommand) with the lab's inventory, key and store.
private func start(_ lab: Lab, _ runbook: String) throws -> RunningCommand {
  try RunningCommand([
    "-i", lab.inventory, "--identity", lab.key, "--store", lab.store.path, "--audit-log", lab.auditLog, "--json",
    "-c", runbook,
  ])
}

/// Polls `condition` (a shell test inside `host`) until it holds; false if it never did.
private func wait(_ lab: Lab, _ host: String, until condition: String, tries: Int = 150) throws -> Bool {
  for _ in 0..<tries {
    if try lab.exec(host, condition).status == 0 { return true }
    usleep(100_000)
  }
  return false
}

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct PackageFleetTests {
  @Test func installNamesAndListsThenOkAndCheckChangesNothing() throws {
    let repository = try AptRepository()
    try repository.publish("cfi-test-a", "1.0")
    try repository.publish("cfi-test-b", "1.0", depends: ["cfi-test-a"])
    try repository.publish("cfi-test-c", "1.0")
    try repository.publish("cfi-test-d", "1.0")
    let lab = try packageLab("install", repository: repository)

    // The source arrives with `copy`, and the package step that follows refreshes the lists.
    let first = try lab.run("on all < \(copySource); install \"cfi-test-b\" >", ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first) == all(lab.hosts, "changed"))
    #expect(stepResults(first, "copy").values.allSatisfy { $0["status"] as? String == "changed" })
    for (host, step) in stepResults(first, "install") {
      #expect(step["status"] as? String == "changed", "\(host)")
      #expect(message(step) == "+cfi-test-a +cfi-test-b", "\(host): the packages dpkg installed")
      #expect(stdout(step) == "install cfi-test-a 1.0\ninstall cfi-test-b 1.0", "\(host)")
    }
    for host in lab.hosts {
      #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0", "cfi-test-b": "1.0"], "\(host)")
      #expect(try lab.read(host, "cat /usr/share/cfi-test/cfi-test-b") == "cfi-test-b 1.0")
    }

    // Nothing due: ok, without a message.
    let second = try lab.run("on all < \(copySource); install \"cfi-test-b\" >", ["--json"])
    #expect(second.status == 0, "\(second.stderr)")
    #expect(outcomes(second) == all(lab.hosts, "ok"))
    #expect(stepResults(second, "install").values.allSatisfy { $0["message"] == nil })

    // A list and names together; --check says what would change and changes nothing.
    let more = #"let extra = ["cfi-test-c", ["cfi-test-d"]]"# + "\non all < install extra \"cfi-test-b\" >"
    let check = try lab.run(more, ["--check", "--json"])
    #expect(check.status == 0, "\(check.stderr)")
    #expect(outcomes(check) == all(lab.hosts, "changed"))
    for (host, step) in stepResults(check, "install") {
      #expect(message(step) == "would change: +cfi-test-c +cfi-test-d", "\(host)")
    }
    for host in lab.hosts {
      #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0", "cfi-test-b": "1.0"], "\(host): --check installed something")
    }
    let real = try lab.run(more, ["--json"])
    #expect(outcomes(real) == all(lab.hosts, "changed"))
    for host in lab.hosts { #expect(try testPackages(lab, host).keys.sorted() == ["cfi-test-a", "cfi-test-b", "cfi-test-c", "cfi-test-d"]) }
    #expect(outcomes(try lab.run(more, ["--json"])) == all(lab.hosts, "ok"))
  }

  /// The seed's John: extra packages listed in a file on the server (per group), installed, and
  /// upgraded when a new version is published.
  @Test func packagesListFromTheStoreIsInstalledAndLaterUpgraded() throws {
    let repository = try AptRepository()
    try repository.publish("cfi-test-a", "1.0")
    try repository.publish("cfi-test-b", "1.0", depends: ["cfi-test-a"])
    try repository.publish("cfi-test-c", "1.0")
    let lab = try packageLab("john", repository: repository)
    try lab.storeFile("lab/packages.list", "# extra packages for the lab\ncfi-test-a\ncfi-test-c\n")
    try lab.storeFile("office/packages.list", "cfi-test-b\n")
    let john = "on all < \(copySource); install lines(\"packages.list\"); upgrade >"
    let labHosts = Array(lab.hosts.prefix(3)), officeHosts = Array(lab.hosts.suffix(3))

    let first = try lab.run(john, ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first) == all(lab.hosts, "changed"))
    let installs = stepResults(first, "install")
    for host in labHosts {
      #expect(message(installs[host]) == "+cfi-test-a +cfi-test-c")
      #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0", "cfi-test-c": "1.0"], "\(host)")
    }
    for host in officeHosts {
      #expect(message(installs[host]) == "+cfi-test-a +cfi-test-b")
      #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0", "cfi-test-b": "1.0"], "\(host)")
    }
    #expect(outcomes(try lab.run(john, ["--json"])) == all(lab.hosts, "ok"))

    // A new version: the lab hosts list cfi-test-a, so `install` upgrades it; the office hosts
    // have it as a dependency, so `upgrade` does.
    try repository.publish("cfi-test-a", "1.1")
    let later = try lab.run(john, ["--json"])
    #expect(later.status == 0, "\(later.stderr)")
    #expect(outcomes(later) == all(lab.hosts, "changed"))
    let (laterInstalls, laterUpgrades) = (stepResults(later, "install"), stepResults(later, "upgrade"))
    for host in labHosts {
      #expect(message(laterInstalls[host]) == "+cfi-test-a")
      #expect(stdout(laterInstalls[host]) == "upgrade cfi-test-a 1.0 -> 1.1")
      #expect(laterUpgrades[host]?["status"] as? String == "ok")
    }
    for host in officeHosts {
      #expect(laterInstalls[host]?["status"] as? String == "ok")
      #expect(stdout(laterUpgrades[host]) == "upgrade cfi-test-a 1.0 -> 1.1")
    }
    for host in lab.hosts { #expect(try testPackages(lab, host)["cfi-test-a"] == "1.1", "\(host)") }
    #expect(try lab.read("pc01", "cat /usr/share/cfi-test/cfi-test-a") == "cfi-test-a 1.1")
    #expect(outcomes(try lab.run(john, ["--json"])) == all(lab.hosts, "ok"))
  }

  @Test func removeThenOkAndCheckKeepsThePackages() throws {
    let repository = try AptRepository()
    try repository.publish("cfi-test-a", "1.0")
    try repository.publish("cfi-test-b", "1.0", depends: ["cfi-test-a"])
    let lab = try packageLab("remove", hosts: 5, repository: repository)
    let setup = try lab.run("on all < \(copySource); install \"cfi-test-b\" >", ["--json"])
    #expect(outcomes(setup) == all(lab.hosts, "changed"), "\(setup.stderr)")

    // Removing cfi-test-a takes cfi-test-b, which depends on it, along.
    let check = try lab.run(#"on all < remove "cfi-test-a" >"#, ["--check", "--json"])
    #expect(check.status == 0, "\(check.stderr)")
    #expect(outcomes(check) == all(lab.hosts, "changed"))
    for (host, step) in stepResults(check, "remove") {
      #expect(message(step).hasPrefix("would change: "), "\(host)")
      #expect(Set(message(step).dropFirst(14).split(separator: " ")) == ["-cfi-test-a", "-cfi-test-b"], "\(host)")
    }
    for host in lab.hosts { #expect(try testPackages(lab, host).count == 2, "\(host): --check removed something") }

    let first = try lab.run(#"on all < remove "cfi-test-a" >"#, ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first) == all(lab.hosts, "changed"))
    for (host, step) in stepResults(first, "remove") {
      #expect(Set(message(step).split(separator: " ")) == ["-cfi-test-a", "-cfi-test-b"], "\(host)")
      #expect(Set(stdout(step).split(separator: "\n")) == ["remove cfi-test-a 1.0", "remove cfi-test-b 1.0"], "\(host)")
    }
    for host in lab.hosts {
      #expect(try testPackages(lab, host) == [:], "\(host)")
      #expect(try lab.exec(host, "dpkg -s cfi-test-a").status != 0)
      #expect(try lab.exec(host, "test -e /usr/share/cfi-test/cfi-test-a").status != 0)
    }
    let second = try lab.run(#"on all < remove "cfi-test-a" "cfi-test-b" >"#, ["--json"])
    #expect(outcomes(second) == all(lab.hosts, "ok"))
  }

  @Test func upgradeInstallsTheNewVersionThenOk() throws {
    let repository = try AptRepository()
    try repository.publish("cfi-test-a", "1.0")
    try repository.publish("cfi-test-b", "1.0", depends: ["cfi-test-a"])
    let lab = try packageLab("upgrade", hosts: 5, repository: repository)
    let setup = try lab.run("on all < \(copySource); install \"cfi-test-b\"; upgrade >", ["--json"])
    #expect(outcomes(setup) == all(lab.hosts, "changed"), "\(setup.stderr)")
    #expect(stepResults(setup, "upgrade").values.allSatisfy { $0["status"] as? String == "ok" })

    try repository.publish("cfi-test-a", "1.1")
    try repository.publish("cfi-test-b", "1.1", depends: ["cfi-test-a (>= 1.1)"])
    // --check does not refresh the package lists (it changes nothing): a run that refreshes them
    // (here `install` of what is there, ok) comes first for a check to see the new versions.
    let refresh = try lab.run(#"on all < install "cfi-test-a" >"#, ["--json"])
    #expect(outcomes(refresh) == all(lab.hosts, "changed"), "install upgrades a listed package")
    for host in lab.hosts { #expect(try testPackages(lab, host) == ["cfi-test-a": "1.1", "cfi-test-b": "1.0"]) }

    let check = try lab.run("on all < upgrade >", ["--check", "--json"])
    #expect(check.status == 0, "\(check.stderr)")
    #expect(outcomes(check) == all(lab.hosts, "changed"))
    for (host, step) in stepResults(check, "upgrade") {
      #expect(message(step) == "would change: +cfi-test-b", "\(host)")
      #expect(stdout(step) == "upgrade cfi-test-b 1.0 -> 1.1", "\(host)")
    }
    for host in lab.hosts { #expect(try testPackages(lab, host)["cfi-test-b"] == "1.0", "\(host): --check upgraded") }

    let first = try lab.run("on all < upgrade >", ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first) == all(lab.hosts, "changed"))
    for (host, step) in stepResults(first, "upgrade") {
      #expect(message(step) == "+cfi-test-b", "\(host)")
      #expect(stdout(step) == "upgrade cfi-test-b 1.0 -> 1.1", "\(host)")
    }
    for host in lab.hosts {
      #expect(try testPackages(lab, host) == ["cfi-test-a": "1.1", "cfi-test-b": "1.1"], "\(host)")
      #expect(try lab.read(host, "cat /usr/share/cfi-test/cfi-test-b") == "cfi-test-b 1.1")
    }
    #expect(outcomes(try lab.run("on all < upgrade >", ["--json"])) == all(lab.hosts, "ok"))
  }

  /// A new version that needs a new package: `upgrade` holds it back, `upgrade full` (apt-get
  /// full-upgrade, as for a new kernel ABI) installs both; --check says so and changes nothing.
  @Test func upgradeFullTakesWhatUpgradeHoldsBack() throws {
    let repository = try AptRepository()
    try repository.publish("cfi-test-a", "1.0")
    let lab = try packageLab("fullupgrade", hosts: 3, repository: repository)
    let setup = try lab.run("on all < \(copySource); install \"cfi-test-a\" >", ["--json"])
    #expect(outcomes(setup) == all(lab.hosts, "changed"), "\(setup.stderr)")

    try repository.publish("cfi-test-n", "1.0")
    try repository.publish("cfi-test-a", "2.0", depends: ["cfi-test-n"])
    // Plain upgrade refreshes the lists and holds the new version back: nothing to do.
    let plain = try lab.run("on all < upgrade >", ["--json"])
    #expect(plain.status == 0, "\(plain.stderr)")
    #expect(outcomes(plain) == all(lab.hosts, "ok"))
    for host in lab.hosts { #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0"], "\(host): upgrade took it") }

    let check = try lab.run("on all < upgrade full >", ["--check", "--json"])
    #expect(check.status == 0, "\(check.stderr)")
    #expect(outcomes(check) == all(lab.hosts, "changed"))
    for (host, step) in stepResults(check, "upgrade full") {
      #expect(message(step) == "would change: +cfi-test-n +cfi-test-a", "\(host)")
    }
    for host in lab.hosts { #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0"], "\(host): --check upgraded") }

    let full = try lab.run("on all < upgrade full >", ["--json"])
    #expect(full.status == 0, "\(full.stderr)")
    #expect(outcomes(full) == all(lab.hosts, "changed"))
    for (host, step) in stepResults(full, "upgrade full") {
      #expect(Set(message(step).split(separator: " ")) == ["+cfi-test-n", "+cfi-test-a"], "\(host): \(message(step))")
    }
    for host in lab.hosts {
      #expect(try testPackages(lab, host) == ["cfi-test-a": "2.0", "cfi-test-n": "1.0"], "\(host)")
    }
    #expect(outcomes(try lab.run("on all < upgrade full >", ["--json"])) == all(lab.hosts, "ok"))
  }

  @Test func unknownPackageFailsTheHostWithAptsMessage() throws {
    let repository = try AptRepository()
    try repository.publish("cfi-test-a", "1.0")
    let lab = try packageLab("unknown", hosts: 5, repository: repository)
    let result = try lab.run(
      "on all < \(copySource); install \"cfi-test-a\" \"cfi-test-nosuch\"; run \"touch /root/after\" >", ["--json"])
    #expect(result.status == 2, "a failed host: exit status bit 2")
    #expect(outcomes(result) == all(lab.hosts, "failed"))
    for (host, step) in stepResults(result, "install") {
      #expect(step["status"] as? String == "failed")
      #expect(message(step) == "Unable to locate package cfi-test-nosuch", "\(host)")
      #expect((step["stderr"] as? String)?.contains("E: Unable to locate package cfi-test-nosuch") == true)
    }
    for host in lab.hosts {
      #expect(try testPackages(lab, host) == [:], "\(host): apt installs all or nothing")
      #expect(try lab.exec(host, "test -e /root/after").status != 0, "a failure ends the host's block")
    }
  }

  @Test func invalidPackageNamesAreRefusedBeforeAnythingRuns() throws {
    let lab = try Lab("badnames", hosts: 5)
    try lab.storeFile("lab/packages.list", "cfi-test-a\nFoo\n")
    let cases: [(String, String)] = [
      (#"on all < install "--purge" >"#, "'--purge' is not a valid Debian package name"),
      (#"on all < remove "cfi-test-a" "Foo" >"#, "'Foo' is not a valid Debian package name"),
      (#"on group lab < install lines("packages.list") >"#, "'Foo' in lab/packages.list is not a valid Debian package name"),
    ]
    for (action, error) in cases {
      let runbook = "on all < run \"touch /root/ran\" >\n" + action
      let dryRun = try lab.run(runbook, ["-n"])
      #expect(dryRun.status == 1, "\(action)")
      #expect(dryRun.stderr.contains(error), "\(action): \(dryRun.stderr)")
      let real = try lab.run(runbook)
      #expect(real.status == 1, "\(action)")
      #expect(real.stderr.contains(error), "\(action): \(real.stderr)")
      for host in lab.hosts { #expect(try lab.exec(host, "test -e /root/ran").status != 0, "\(action) ran on \(host)") }
    }
    // A name known only on the host fails that host before apt runs.
    let late = try lab.run(#"on all < let p = run "echo Foo"; install p >"#, ["--json"])
    #expect(late.status == 2)
    #expect(outcomes(late) == all(lab.hosts, "failed"))
    #expect(stepResults(late, "install").values.allSatisfy { message($0) == "'Foo' is not a valid Debian package name" })
  }

  /// A package step waits for another apt instead of failing: hosts pc01–pc03 are in the middle
  /// of an `apt-get install` (its postinst waits for a file: the dpkg frontend lock is held),
  /// pc04–pc06 in the middle of an `apt-get update` (the lists lock, held with fcntl as apt does).
  @Test func installWaitsForTheDpkgAndListsLocks() throws {
    let repository = try AptRepository()
    try repository.publish("cfi-test-a", "1.0")
    try repository.publish("cfi-test-b", "1.0")
    try repository.publish(
      "cfi-test-slow", "1.0",
      postinst: "touch /run/cfi-test-slow.started\nwhile [ ! -e /run/cfi-test.release ]; do sleep 0.1; done")
    let lab = try packageLab("aptlock", repository: repository)
    let setup = try lab.run("on all < \(copySource); install \"cfi-test-a\" >", ["--json"])
    #expect(outcomes(setup) == all(lab.hosts, "changed"), "\(setup.stderr)")
    let dpkgLocked = Array(lab.hosts.prefix(3)), listsLocked = Array(lab.hosts.suffix(3))
    defer { for host in lab.hosts { _ = try? lab.exec(host, "touch /run/cfi-test.release") } }

    for host in dpkgLocked {
      try lab.exec(
        host, "(DEBIAN_FRONTEND=noninteractive apt-get install -y -q cfi-test-slow </dev/null >/root/slow.log 2>&1 &)")
      #expect(try wait(lab, host, until: "test -e /run/cfi-test-slow.started"), "\(host): the slow install did not start")
      let blocked = try lab.exec(host, "apt-get install -y -o DPkg::Lock::Timeout=0 cfi-test-b")
      #expect(blocked.status != 0 && blocked.stderr.contains("Could not get lock /var/lib/dpkg/lock-frontend"), "\(host)")
    }
    let holdListsLock = #"""
      perl -MFcntl -e 'open(my $f, "+<", "/var/lib/apt/lists/lock") or die; my $l = pack("s s x4 q q i x4", F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLK, $l) or die; open(my $m, ">", "/run/cfi-test-lists.locked"); close($m); select(undef, undef, undef, 0.1) until -e "/run/cfi-test.release"'
      """#
    for host in listsLocked {
      try lab.exec(host, "(\(holdListsLock) </dev/null >/dev/null 2>&1 &)")
      #expect(try wait(lab, host, until: "test -e /run/cfi-test-lists.locked"), "\(host): no lists lock")
      let blocked = try lab.exec(host, "apt-get update")
      #expect(blocked.status != 0 && blocked.stderr.contains("Could not get lock /var/lib/apt/lists/lock"), "\(host)")
    }

    let run = try start(lab, #"on all < install "cfi-test-b" >"#)
    // Release the locks only once cfi-sh waits for them: its apt-get blocked on the dpkg lock
    // (not the lock-free simulation, `-s`), or its retry loop sleeping on the lists lock.
    for host in dpkgLocked {
      #expect(
        try wait(lab, host, until: "ps -eo args | grep -v -e ' -s ' -e grep | grep -q 'apt-get .*install -- cfi-test-b'"),
        "\(host): cfi-sh's apt-get never waited for the lock")
    }
    for host in listsLocked {
      #expect(try wait(lab, host, until: "ps -eo args | grep -qx 'sleep 1'"), "\(host): cfi-sh never waited for the lists lock")
    }
    for host in lab.hosts { try lab.exec(host, "touch /run/cfi-test.release") }
    let result = run.finish()
    #expect(result.status == 0, "\(result.stderr)")
    #expect(outcomes(result) == all(lab.hosts, "changed"))
    for (host, step) in stepResults(result, "install") { #expect(message(step) == "+cfi-test-b", "\(host)") }
    for host in dpkgLocked {
      #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0", "cfi-test-b": "1.0", "cfi-test-slow": "1.0"], "\(host)")
    }
    for host in listsLocked {
      #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0", "cfi-test-b": "1.0"], "\(host)")
    }
  }

  /// pkgsync with the essential packages in musthave: installs musthave, removes maynothave,
  /// keeps mayhave — and, as cfi-sh runs `pkgsync -k`, every other package of the host, with
  /// its manual/automatic mark.
  @Test func pkgsyncInstallsAndRemovesByTheListsAndKeepsTheRest() throws {
    let repository = try AptRepository()
    try repository.publish("cfi-test-a", "1.0")
    try repository.publish("cfi-test-b", "1.0", depends: ["cfi-test-a"])
    try repository.publish("cfi-test-c", "1.0")
    let lab = try packageLab("pkgsync", repository: repository)
    let setup = try lab.run("on all < \(copySource); install \"cfi-test-b\" >", ["--json"])
    #expect(outcomes(setup) == all(lab.hosts, "changed"), "\(setup.stderr)")
    // A real Debian host has /run/lock (aptitude's lock lives there); the lab's fresh /run lacks it.
    for host in lab.hosts { try lab.exec(host, "mkdir -p -m 1777 /run/lock") }
    for group in ["lab", "office"] {
      try lab.storeFile(
        "\(group)/etc/pkgsync/musthave",
        "# what keeps a client manageable\nopenssh-server\nrsync\navahi-daemon\npkgsync\naptitude\n\ncfi-test-c\n")
      try lab.storeFile("\(group)/etc/pkgsync/mayhave", "cfi-test-a\n")
      try lab.storeFile("\(group)/etc/pkgsync/maynothave", "cfi-test-b\n")
    }
    let installedCount = "dpkg-query -W -f='${db:Status-Abbrev}\\n' | grep -c '^ii'"
    let countBefore = try lab.read("pc01", installedCount)
    let manualBefore = Set(try lab.read("pc01", "apt-mark showmanual").split(separator: "\n"))
    #expect(manualBefore.contains("cfi-test-b") && !manualBefore.contains("cfi-test-a"))

    let check = try lab.run("on all < pkgsync >", ["--check", "--json"])
    #expect(check.status == 0, "\(check.stderr)")
    #expect(outcomes(check) == all(lab.hosts, "changed"))
    for host in lab.hosts {
      #expect(try lab.exec(host, "test -e /etc/pkgsync").status != 0, "\(host): --check sent the lists")
      #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0", "cfi-test-b": "1.0"], "\(host)")
    }

    let first = try lab.run("on all < pkgsync >", ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first) == all(lab.hosts, "changed"))
    for (host, step) in stepResults(first, "pkgsync") {
      #expect(message(step).hasPrefix("updated /etc/pkgsync; "), "\(host): \(message(step))")
      #expect(Set(message(step).dropFirst(22).split(separator: " ")) == ["-cfi-test-b", "+cfi-test-c"], "\(host)")
      #expect(Set(stdout(step).split(separator: "\n")) == ["remove cfi-test-b 1.0", "install cfi-test-c 1.0"], "\(host)")
    }
    for host in lab.hosts {
      #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0", "cfi-test-c": "1.0"], "\(host)")
      #expect(try lab.read(host, "cat /etc/pkgsync/maynothave") == "cfi-test-b")
    }
    // Nothing else was removed, and no package lost its manual mark (pkgsync marks every
    // unlisted package automatic; cfi-sh gives the marks back).
    #expect(try lab.read("pc01", installedCount) == countBefore)
    let manualAfter = Set(try lab.read("pc01", "apt-mark showmanual").split(separator: "\n"))
    #expect(manualBefore.subtracting(["cfi-test-b"]).subtracting(manualAfter).isEmpty)
    #expect(manualAfter.isSuperset(of: ["cfi-test-a", "cfi-test-c"]), "mayhave and musthave are manual")

    let second = try lab.run("on all < pkgsync >", ["--json"])
    #expect(second.status == 0, "\(second.stderr)")
    #expect(outcomes(second) == all(lab.hosts, "ok"))
    for host in lab.hosts { #expect(try testPackages(lab, host) == ["cfi-test-a": "1.0", "cfi-test-c": "1.0"]) }
  }

  @Test func pkgsyncRefusesListsThatWouldRemoveAnEssentialPackage() throws {
    let lab = try Lab("pkgsyncbad", hosts: 5)
    for host in lab.hosts { try lab.exec(host, "mkdir -p -m 1777 /run/lock") }
    let must = "openssh-server\nrsync\navahi-daemon\npkgsync\naptitude\n"
    func lists(must: String, may: String = "", maynot: String) throws {
      for group in ["lab", "office"] {
        try lab.storeFile("\(group)/etc/pkgsync/musthave", must)
        try lab.storeFile("\(group)/etc/pkgsync/mayhave", may)
        try lab.storeFile("\(group)/etc/pkgsync/maynothave", maynot)
      }
    }
    let installedCount = "dpkg-query -W -f='${db:Status-Abbrev}\\n' | grep -c '^ii'"
    let countBefore = try lab.read("pc01", installedCount)
    let runbook = "on all < run \"touch /root/ran\" >\non group lab, office < pkgsync >"

    // Named in maynothave, or by a name pattern there: refused before anything runs.
    for (maynot, error) in [
      ("openssh-server\n", "would remove 'openssh-server'"),
      ("cfi-test-x\nrsyn.*\n", "maynothave pattern 'rsyn.*' matches 'rsync'"),
    ] {
      try lists(must: maynot.hasPrefix("openssh") ? "rsync\navahi-daemon\npkgsync\n" : must, maynot: maynot)
      let dryRun = try lab.run(runbook, ["-n"])
      #expect(dryRun.status == 1 && dryRun.stderr.contains(error), "\(dryRun.stderr)")
      // With --json the diagnostics are JSON events on stdout.
      let real = try lab.run(runbook, ["--json"])
      #expect(real.status == 1 && real.stdout.contains(#""event":"diagnostic""#) && real.stdout.contains(error), "\(real.stdout)")
      for host in lab.hosts {
        #expect(try lab.exec(host, "test -e /root/ran || test -e /etc/pkgsync").status != 0, "\(host): something ran")
      }
    }
    // Other aptitude patterns (`~i`: every installed package) are expanded on the host, as
    // pkgsync would: the host fails before its lists are sent.
    try lists(must: must, maynot: "~i\n")
    let result = try lab.run("on all < pkgsync >", ["--json"])
    #expect(result.status == 2, "\(result.stderr)")
    #expect(outcomes(result) == all(lab.hosts, "failed"))
    for (host, step) in stepResults(result, "pkgsync") {
      #expect(message(step).contains("its maynothave pattern '~i' matches '"), "\(host): \(message(step))")
    }
    for host in lab.hosts { #expect(try lab.exec(host, "test -e /etc/pkgsync").status != 0, "\(host): lists sent") }
    #expect(try lab.read("pc01", installedCount) == countBefore, "nothing removed")
  }
}
