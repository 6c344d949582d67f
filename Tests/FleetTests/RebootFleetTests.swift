// `reboot` and `reboot if needed` on lab hosts, whose `shutdown -r` is the lab's stand-in
// (scripts/lab.d/shutdown): sshd stops, the host's sessions die, it gets a new boot id, and
// sshd comes back a second later (or never, after `lab reboot-hangs`).

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct RebootFleetTests {
  static let bootID = "cat /proc/sys/kernel/random/boot_id"

  /// The steps of `host` in a run, in order.
  static func steps(of host: String, _ result: Command) -> [[String: Any]] {
    events(result, "step_finished").filter { $0["host"] as? String == host }
  }

  /// No ssh of the run still running (every one names its control path under `runtime`),
  /// no control socket left.
  static func expectNothingLeft(under runtime: TemporaryDirectory) {
    #expect(
      waitUntil(seconds: 10) { ((try? localSSH(under: runtime)) ?? "x").isEmpty },
      "ssh left running: \((try? localSSH(under: runtime)) ?? "")")
    #expect((try? FileManager.default.subpathsOfDirectory(atPath: runtime.path)) == [], "control sockets left behind")
  }

  /// Only the host that asks reboots; it comes back with a new boot id, and the step after
  /// the reboot runs there over a new master. `--check` first says so and changes nothing.
  @Test func rebootIfNeededRebootsOnlyTheHostThatAsks() throws {
    let lab = try Lab("reboot", hosts: 3, groups: ["lab"])
    let before = try Dictionary(uniqueKeysWithValues: lab.hosts.map { ($0, try lab.read($0, Self.bootID)) })
    #expect(Set(before.values).count == 3, "each lab host has a boot id of its own")
    try lab.lab("reboot-required", "pc02")
    let runbook = #"on all < reboot if needed; run "cat /proc/sys/kernel/random/boot_id" >"#

    let check = try lab.run(runbook, ["--check", "--json"])
    #expect(check.status == 0, "\(check.stderr)")
    #expect(outcomes(check) == ["pc01": "ok", "pc02": "changed", "pc03": "ok"])
    #expect(Self.steps(of: "pc02", check).first?["message"] as? String == "would reboot (/run/reboot-required exists)")
    #expect(try lab.read("pc02", Self.bootID) == before["pc02"])
    #expect(try lab.exec("pc02", "test -e /run/reboot-required").status == 0)

    let runtime = try TemporaryDirectory()
    let result = try lab.cfi(["--json", "-c", runbook], environment: ["CFI_RUNTIME_DIR": runtime.path])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(outcomes(result) == ["pc01": "ok", "pc02": "changed", "pc03": "ok"])
    let rebooted = Self.steps(of: "pc02", result)
    #expect(rebooted.first?["status"] as? String == "changed")
    #expect((rebooted.first?["message"] as? String)?.hasPrefix("rebooted in ") == true, "\(rebooted)")
    let after = try lab.read("pc02", Self.bootID)
    #expect(after != before["pc02"])
    // The step after the reboot ran on the host as it came back.
    #expect(rebooted.last?["stdout"] as? String == after + "\n")
    #expect(try lab.exec("pc02", "test -e /run/reboot-required").status != 0, "a reboot empties /run")
    for host in ["pc01", "pc03"] {
      let steps = Self.steps(of: host, result)
      #expect(steps.first?["message"] as? String == "no reboot needed")
      #expect(steps.last?["stdout"] as? String == before[host]! + "\n")
      #expect(try lab.read(host, Self.bootID) == before[host])
    }
    // Nothing left: no master (the one closed for the reboot, the one opened after it) and
    // no control socket.
    Self.expectNothingLeft(under: runtime)
  }

  /// A host whose sshd does not come back is unreachable (reboot_timeout) once the reboot
  /// timeout is up; the other host reboots; the run ends within 3× its bound.
  @Test func aHostThatDoesNotComeBackIsUnreachable() throws {
    let lab = try Lab("reboothang", hosts: 2, groups: ["lab"])
    try lab.lab("reboot-hangs", "pc01")
    let before = try lab.read("pc02", Self.bootID)
    let runtime = try TemporaryDirectory()
    let running = try lab.start(
      #"set reboot_timeout = 5s; on all < reboot; run "true" >"#, ["--json", "--connect-timeout", "2s"],
      environment: ["CFI_RUNTIME_DIR": runtime.path])
    // The bound: the reboot timeout, a last try of at most the connect timeout, the other steps.
    let finished = waitUntil(seconds: 3 * (5 + 2 + 5)) { !running.isRunning }
    if !finished { running.interrupt() }
    let result = running.finish()
    try #require(finished, "the run did not end within 3× its bound")
    #expect(result.status == 4, "\(result.stderr)")
    #expect(outcomes(result) == ["pc01": "unreachable", "pc02": "changed"])
    let lost = try #require(Self.steps(of: "pc01", result).first)
    #expect(lost["reason"] as? String == "reboot_timeout")
    #expect((lost["message"] as? String)?.hasPrefix("not back within 5s of its reboot") == true, "\(lost)")
    #expect(Self.steps(of: "pc01", result).count == 1, "an unreachable host's block ends")
    #expect(try lab.read("pc02", Self.bootID) != before)
    Self.expectNothingLeft(under: runtime)
  }

  /// Ctrl-C while a host is away ends the wait at once: interrupted, status 130, nothing left.
  @Test func anInterruptEndsTheWait() throws {
    let lab = try Lab("rebootintr", hosts: 1, groups: ["lab"])
    try lab.lab("reboot-hangs", "pc01")
    let runtime = try TemporaryDirectory()
    let running = try lab.start(
      #"on all < reboot; run "true" >"#, ["--json"], environment: ["CFI_RUNTIME_DIR": runtime.path])
    let down = waitUntil(seconds: 30) {
      ((try? lab.read("pc01", "cat /var/log/lab-reboot.log")) ?? "").contains("stays down")
    }
    running.interrupt()
    let finished = waitUntil(seconds: 30) { !running.isRunning }
    if !finished { kill(running.processIdentifier, SIGKILL) }
    let result = running.finish()
    try #require(down, "the host did not go down")
    try #require(finished, "cfi-sh still waits 30s after the interrupt")
    #expect(result.status == 130, "\(result.stderr)")
    #expect(outcomes(result) == ["pc01": "interrupted"])
    Self.expectNothingLeft(under: runtime)
  }
}
