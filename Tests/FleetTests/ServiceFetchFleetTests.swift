// service and fetch on a real fleet: `service` against the lab's stand-in systemctl (units
// as files in /var/lib/cfi-lab-systemd, see scripts/README.md), `fetch` into the store's
// .fetched tree; `ok` on a second run, `--check` changing nothing, and the failures.

import Foundation
import TestSupport
import Testing

/// The directory of the stand-in systemctl's unit `unit` inside a host.
private func unitDirectory(_ unit: String) -> String { "/var/lib/cfi-lab-systemd/\(unit)" }

/// How many times the unit was started or restarted on a host.
private func starts(_ lab: Lab, _ host: String, _ unit: String = "cfi-test.service") throws -> Int {
  Int(try lab.read(host, "cat \(unitDirectory(unit))/starts 2>/dev/null | wc -l")) ?? -1
}

/// Whether the unit's state file (`active`, `enabled`) exists on a host.
private func has(_ lab: Lab, _ host: String, _ state: String, _ unit: String = "cfi-test.service") throws -> Bool {
  try lab.exec(host, "test -e \(unitDirectory(unit))/\(state)").status == 0
}

/// Each host's status of one step.
private func statuses(_ result: Command, _ label: String) -> [String: String] {
  stepResults(result, label).mapValues { $0["status"] as? String ?? "" }
}

/// A file's permission bits.
private func mode(_ path: String) -> Int {
  (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
}

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct ServiceFetchFleetTests {
  @Test func serviceActsOnlyWhereNeededAndRestartsOncePerRun() throws {
    let lab = try Lab("service", hosts: 3, groups: ["lab"])
    // pc01: inactive and disabled (as the lab makes it); pc02: active; pc03: active and enabled.
    try lab.exec("pc02", "touch \(unitDirectory("cfi-test.service"))/active")
    try lab.exec("pc03", "touch \(unitDirectory("cfi-test.service"))/active \(unitDirectory("cfi-test.service"))/enabled")
    let runbook = "on all < service \"cfi-test\" started; service \"cfi-test.service\" enabled >"

    let check = try lab.run(runbook, ["--check", "--json"])
    #expect(check.status == 0, "\(check.stderr)")
    let wouldStart = stepResults(check, #"service "cfi-test" started"#)
    #expect(message(wouldStart["pc01"]) == "would start cfi-test")
    #expect(wouldStart["pc02"]?["status"] as? String == "ok")
    #expect(try !has(lab, "pc01", "active"), "--check started the unit")

    let first = try lab.run(runbook, ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(statuses(first, #"service "cfi-test" started"#) == ["pc01": "changed", "pc02": "ok", "pc03": "ok"])
    #expect(message(stepResults(first, #"service "cfi-test" started"#)["pc01"]) == "started cfi-test")
    #expect(statuses(first, #"service "cfi-test.service" enabled"#) == ["pc01": "changed", "pc02": "changed", "pc03": "ok"])
    for host in lab.hosts {
      #expect(try has(lab, host, "active") && has(lab, host, "enabled"), "\(host)")
    }
    #expect(try lab.hosts.map { try starts(lab, $0) } == [1, 0, 0], "started only where it was not active")

    let second = try lab.run(runbook, ["--json"])
    #expect(outcomes(second) == all(lab.hosts, "ok"), "\(second.stdout)")

    // restarted always acts: once per run on every host.
    for run in 1...2 {
      let restart = try lab.run(#"on all < service "cfi-test" restarted >"#, ["--json"])
      #expect(outcomes(restart) == all(lab.hosts, "changed"), "\(restart.stderr)")
      #expect(try lab.hosts.map { try starts(lab, $0) } == [1 + run, run, run])
    }

    // enabled does not start, disabled does not stop; stopped stops, then is ok.
    try lab.exec("pc01", "mkdir \(unitDirectory("cfi-other.service"))")
    let enable = try lab.run(#"on host pc01 < service "cfi-other" enabled >"#, ["--json"])
    #expect(outcomes(enable) == ["pc01": "changed"], "\(enable.stderr)")
    #expect(try has(lab, "pc01", "enabled", "cfi-other.service") && !has(lab, "pc01", "active", "cfi-other.service"))
    let stop = #"on all < service "cfi-test" disabled; service "cfi-test" stopped >"#
    let stopped = try lab.run(stop, ["--json"])
    #expect(outcomes(stopped) == all(lab.hosts, "changed"), "\(stopped.stderr)")
    for host in lab.hosts { #expect(try !has(lab, host, "active") && !has(lab, host, "enabled"), "\(host)") }
    #expect(outcomes(try lab.run(stop, ["--json"])) == all(lab.hosts, "ok"))

    // A unit systemd does not know fails every host with systemctl's message, even `stopped`
    // (is-active calls an unknown unit merely "inactive").
    for state in ["started", "stopped"] {
      let unknown = try lab.run("on all < service nosuch \(state) >", ["--json"])
      #expect(unknown.status == 2, "\(unknown.stderr)")
      #expect(outcomes(unknown) == all(lab.hosts, "failed"))
      for (host, step) in stepResults(unknown, "service") {
        #expect(
          message(step) == "Failed to get unit file state for nosuch.service: No such file or directory", "\(host)")
      }
    }
  }

  @Test func fetchCopiesEachHostsFileAndTreeIntoTheStore() throws {
    let lab = try Lab("fetch", hosts: 3, groups: ["lab"])
    for host in lab.hosts {
      try lab.exec(
        host,
        """
        printf 'conf of %s\\n' \(host) >/etc/cfi-fetch.conf && chmod 0644 /etc/cfi-fetch.conf && \
        mkdir -p /var/log/cfi-fetch/sub && echo a-\(host) >/var/log/cfi-fetch/a.log && echo b-\(host) >/var/log/cfi-fetch/sub/b.log
        """)
    }
    let runbook = #"on all < fetch "/etc/cfi-fetch.conf"; fetch "/var/log/cfi-fetch/" >"#
    let fetched = lab.store.path + "/.fetched"

    let check = try lab.run(runbook, ["--check", "--json"])
    #expect(check.status == 0, "\(check.stderr)")
    #expect(outcomes(check) == all(lab.hosts, "changed"))
    #expect(message(stepResults(check, #"fetch "/etc/cfi-fetch.conf""#)["pc01"]) == "would fetch 1 file")
    #expect(!FileManager.default.fileExists(atPath: fetched), "--check wrote into the store")

    let first = try lab.run(runbook, ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first) == all(lab.hosts, "changed"))
    for host in lab.hosts {
      let root = "\(fetched)/\(host)"
      #expect(try String(contentsOfFile: root + "/etc/cfi-fetch.conf", encoding: .utf8) == "conf of \(host)\n")
      #expect(try String(contentsOfFile: root + "/var/log/cfi-fetch/a.log", encoding: .utf8) == "a-\(host)\n")
      #expect(try String(contentsOfFile: root + "/var/log/cfi-fetch/sub/b.log", encoding: .utf8) == "b-\(host)\n")
      // Owner only: what is fetched may hold secrets.
      for path in [fetched, root, root + "/etc", root + "/var/log/cfi-fetch"] { #expect(mode(path) == 0o700, "\(path)") }
      #expect(mode(root + "/etc/cfi-fetch.conf") == 0o600)
    }

    #expect(outcomes(try lab.run(runbook, ["--json"])) == all(lab.hosts, "ok"))

    // Only what changed on a host changes its copy.
    try lab.exec("pc02", "echo changed >>/etc/cfi-fetch.conf")
    let later = try lab.run(runbook, ["--json"])
    #expect(outcomes(later) == ["pc01": "ok", "pc02": "changed", "pc03": "ok"])
    #expect(try String(contentsOfFile: "\(fetched)/pc02/etc/cfi-fetch.conf", encoding: .utf8) == "conf of pc02\nchanged\n")

    // A host without the file fails saying so; the others are fine.
    try lab.exec("pc01", "rm /etc/cfi-fetch.conf")
    let missing = try lab.run(runbook, ["--json"])
    #expect(missing.status == 2, "\(missing.stderr)")
    #expect(outcomes(missing) == ["pc01": "failed", "pc02": "ok", "pc03": "ok"])
    #expect(message(stepResults(missing, "fetch")["pc01"]) == "'/etc/cfi-fetch.conf' does not exist on the host")

    // A relative path or one with '..' is refused before the run.
    for path in ["etc/cfi-fetch.conf", "/etc/../etc/cfi-fetch.conf"] {
      let refused = try lab.run("on all < fetch \"\(path)\" >")
      #expect(refused.status == 1, "\(refused.stdout)")
      #expect(refused.stderr.contains("'\(path)'"), "\(refused.stderr)")
    }
  }
}
