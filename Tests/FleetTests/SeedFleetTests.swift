// The seed's use cases end to end: the example runbooks of runbooks/, with the example
// store, run as an admin would run them (shebang scripts), on a real fleet.

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct SeedFleetTests {
  /// A lab whose store is a copy of runbooks/store.
  private func labWithExampleStore(_ name: String) throws -> Lab {
    let lab = try Lab(name, hosts: 6)
    let copy = try shell(["/bin/cp", "-a", Command.packageRoot.appendingPathComponent("runbooks/store").path + "/.", lab.store.path])
    #expect(copy.status == 0)
    return lab
  }

  /// Runs a runbook of runbooks/ as an executable script, the way cron would.
  private func runScript(_ lab: Lab, _ runbook: String) throws -> Command {
    let path = Command.packageRoot.appendingPathComponent("runbooks/\(runbook)")
    // The shebang is `#!/usr/bin/env cfi-sh`: put the built binary first on PATH.
    let directory = Command.binary.deletingLastPathComponent().path
    return try Command.run(
      [], executable: path,
      environment: [
        "PATH": directory + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
        "CFI_CLIENTS": lab.inventory, "CFI_IDENTITY": lab.key, "CFI_STORE": lab.store.path, "CFI_AUDIT_LOG": "none",
      ])
  }

  @Test func cathlinaSetsTheRootPasswordOfThePool() throws {
    let lab = try labWithExampleStore("cathlina")
    let expected = try #require(
      try String(contentsOf: Command.packageRoot.appendingPathComponent("runbooks/root-password.cfi"), encoding: .utf8)
        .split(separator: "\n").first { $0.hasPrefix("let hash = '") }?.split(separator: "'")[1])
    let result = try runScript(lab, "root-password.cfi")
    #expect(result.status == 0, "\(result.stderr)")
    for host in lab.hosts { #expect(try lab.read(host, "getent shadow root | cut -d: -f2") == expected) }
    #expect(!result.stdout.contains(expected))
    #expect(try runScript(lab, "root-password.cfi").stdout.contains("recap ok: pc[01-06] (6)"))
  }

  @Test func peterRunsHisScriptOnEveryMachine() throws {
    let lab = try labWithExampleStore("peter")
    let result = try runScript(lab, "homemade-script.cfi")
    #expect(result.status == 0, "\(result.stderr)")
    for host in lab.hosts { #expect(try lab.read(host, "cat /opt/myapp/VERSION") == "1.0.0") }
    #expect(result.stdout.contains("myapp 1.0.0 installed in /opt/myapp"))
    #expect(try runScript(lab, "homemade-script.cfi").stdout.contains("myapp 1.0.0 is already installed"))
  }

  @Test func configurationFilesReachTheirGroups() throws {
    let lab = try labWithExampleStore("config")
    let result = try runScript(lab, "config-files.cfi")
    #expect(result.status == 0, "\(result.stderr)")
    let store = lab.store.path
    for (host, group) in [("pc01", "lab"), ("pc06", "office")] {
      let expected = try String(contentsOfFile: "\(store)/\(group)/etc/dpkg/dpkg.cfg.d/cfi", encoding: .utf8)
      #expect(try lab.exec(host, "cat /etc/dpkg/dpkg.cfg.d/cfi").stdout == expected)
    }
  }
}
