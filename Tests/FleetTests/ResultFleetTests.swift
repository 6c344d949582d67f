// Results of actions on a real fleet: `let r = copy …` and the handler pattern (restart only
// where the file changed), `let r = try …` going on after a failure, and check mode.

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct ResultFleetTests {
  /// The runbook under test: copy a config file, "restart" (count in /root/restarts) where it
  /// changed, and probe with `try` whether a host was ever restarted.
  private let runbook = """
    on group lab <
      let conf = copy "etc/cfi-demo.conf"
      if conf.changed < run "echo ${host.name} >> /root/restarts" >
      let probe = try run "test -e /root/restarts"
      if probe.failed < run "echo ${probe.status} ${probe.exit_code} > /root/probe" >
    >
    """

  @Test func theHandlerRunsOnlyWhereTheFileChanged() throws {
    let lab = try Lab("results", hosts: 3, groups: ["lab"])
    try lab.storeFile("lab/etc/cfi-demo.conf", "setting = 2\n")
    // pc01 and pc02 already have the new file; pc03 has an old one.
    let placed = try lab.run(#"on host pc01, pc02 < copy "etc/cfi-demo.conf" >"#, ["--json"])
    #expect(outcomes(placed) == ["pc01": "changed", "pc02": "changed"], "\(placed.stderr)")
    try lab.exec("pc03", "echo 'setting = 1 (old)' > /etc/cfi-demo.conf")

    // --check: the copy would change pc03 only, and the handler there would run; nothing does.
    let check = try lab.run(runbook, ["--check", "--json"])
    #expect(check.status == 0, "\(check.stderr)")
    let checked = steps(check).map { "\($0["host"] as! String) \($0["step"] as! String) \($0["status"] as! String)" }
    #expect(checked.contains(#"pc03 copy "etc/cfi-demo.conf" changed"#), "\(checked)")
    #expect(checked.contains(#"pc03 run "echo ${host.name} >> /root/restarts" skipped"#), "\(checked)")
    #expect(checked.filter { $0.contains(">> /root/restarts") }.count == 1, "\(checked)")
    for host in lab.hosts { #expect(try lab.exec(host, "test -e /root/restarts").status != 0, "\(host)") }
    #expect(try lab.read("pc03", "cat /etc/cfi-demo.conf") == "setting = 1 (old)")

    // The run: pc03 gets the file and is restarted once; the others are left alone, and
    // their failing probe is tolerated (exit status 0).
    let first = try lab.run(runbook, ["--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(outcomes(first) == ["pc01": "ok", "pc02": "ok", "pc03": "changed"])
    #expect(try lab.read("pc03", "cat /etc/cfi-demo.conf") == "setting = 2")
    #expect(try lab.read("pc03", "cat /root/restarts") == "pc03")
    #expect(try lab.exec("pc03", "test -e /root/probe").status != 0)
    for host in ["pc01", "pc02"] {
      #expect(try lab.exec(host, "test -e /root/restarts").status != 0, "\(host)")
      #expect(try lab.read(host, "cat /root/probe") == "failed 1", "\(host)")
    }
    let probes = steps(first).filter { ($0["step"] as? String)?.contains("test -e") == true && $0["status"] as? String == "failed" }
    #expect(Set(probes.map { $0["host"] as! String }) == ["pc01", "pc02"])
    #expect(probes.allSatisfy { $0["tolerated"] as? Bool == true }, "\(probes)")

    // Again: nothing changes, nothing is restarted.
    let second = try lab.run(runbook, ["--json"])
    #expect(second.status == 0, "\(second.stderr)")
    #expect(outcomes(second) == all(lab.hosts, "ok"))
    #expect(try lab.read("pc03", "cat /root/restarts") == "pc03")
    for host in ["pc01", "pc02"] { #expect(try lab.exec(host, "test -e /root/restarts").status != 0, "\(host)") }
  }
}
