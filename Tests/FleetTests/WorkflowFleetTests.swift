// The admin's daily workflow on a real fleet: the one-line ad-hoc form and the host-set tool.

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct WorkflowFleetTests {
  /// `cfi-sh run OPTIONS ARGUMENTS` on the lab (the tool's name comes first).
  private func adHoc(_ lab: Lab, _ arguments: [String]) throws -> Command {
    try Command.run(
      ["run", "-i", lab.inventory, "--identity", lab.key, "--store", lab.store.path, "--audit-log", lab.auditLog]
        + arguments)
  }

  /// `cfi-sh run TARGET COMMAND` reaches the target's hosts with the command exactly as typed:
  /// quotes, `$`, backslashes and several words need no CFIScript quoting.
  @Test func theAdHocFormRunsTheCommandAsTyped() throws {
    let lab = try Lab("adhoc", hosts: 4)
    let command = #"printf '%s|' "a  b" \x $((6*7)) '$HOME'"#
    let result = try adHoc(lab, ["--json", "@lab", command])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(outcomes(result) == ["pc01": "ok", "pc02": "ok"])
    #expect(steps(result).allSatisfy { $0["stdout"] as? String == "a  b|x|42|$HOME|" }, "\(steps(result))")
    // Words after TARGET are one command; cfi-sh's own options there are refused.
    let words = try adHoc(lab, ["--json", "pc03", "echo", "one", "-n", "two"])
    #expect(words.status == 64, "-n is cfi-sh's option: \(words.stderr)")
    let separated = try adHoc(lab, ["--json", "pc03", "--", "echo", "one", "-n", "two"])
    #expect(steps(separated).first?["stdout"] as? String == "one -n two\n", "\(separated.stderr)")
    // --output-dir: each host's output of each step in files of its own.
    let outputs = try TemporaryDirectory()
    let written = try adHoc(lab, ["-q", "--output-dir", outputs.path, "@office", "echo out; echo err >&2"])
    #expect(written.status == 0, "\(written.stderr)")
    for host in ["pc03", "pc04"] {
      #expect(try String(contentsOfFile: "\(outputs.path)/\(host)/01.stdout", encoding: .utf8) == "out\n")
      #expect(try String(contentsOfFile: "\(outputs.path)/\(host)/01.stderr", encoding: .utf8) == "err\n")
      #expect(try String(contentsOfFile: "\(outputs.path)/\(host)/steps", encoding: .utf8).hasPrefix("01 ok <command line>:1:"))
    }
    let all = try adHoc(lab, ["-q", "all", "true"])
    #expect(all.status == 0)
    #expect(all.stdout.contains("recap ok: pc[01-04] (4)"), "\(all.stdout)")
  }

  /// `--limit` narrows every block; `@failed` and `@unreachable` are the hosts whose latest
  /// result with the same runbook was a failure, or not reached.
  @Test func limitNarrowsARunAndRerunsWhatFailed() throws {
    let lab = try Lab("limit", hosts: 4)
    let runbook = try lab.storeFile("site.cfi", "on all < run 'test $(hostname) != pc02 && touch /root/site' >")
    try lab.stopSSHD("pc03")
    let first = try lab.cfi(["--json", "--connect-timeout", "3s", runbook])
    #expect(first.status == 6, "\(first.stderr)")
    #expect(outcomes(first) == ["pc01": "ok", "pc02": "failed", "pc03": "unreachable", "pc04": "ok"])
    // The events name the run as the audit log does, and the last one says cfi-sh's status.
    let started = events(first, "run_started").first?["run"] as? String
    let finished = events(first, "run_finished").first
    #expect(started != nil && finished?["run"] as? String == started)
    #expect(finished?["exit_status"] as? Int == 6)
    #expect(try String(contentsOfFile: lab.auditLog, encoding: .utf8).contains(#""run":"\#(started ?? "?")""#))

    let failed = try lab.cfi(["--json", "--limit", "@failed", runbook])
    #expect(outcomes(failed) == ["pc02": "failed"], "\(failed.stderr)")
    // Per host, its latest result: the @failed rerun left pc03 out, so it is still unreachable.
    try lab.lab("start-sshd", "pc03")
    let unreachable = try lab.cfi(["--json", "--limit", "@unreachable", runbook])
    #expect(outcomes(unreachable) == ["pc03": "ok"], "\(unreachable.stderr)")
    #expect(unreachable.status == 0)

    let narrowed = try lab.cfi(["--json", "--limit", "pc[01-04]", "--limit", "!pc02,!pc04", runbook])
    #expect(outcomes(narrowed) == ["pc01": "ok", "pc03": "ok"], "\(narrowed.stderr)")
    let none = try lab.cfi(["--json", "--limit", "pc09", runbook])
    #expect(none.status == 8)
    #expect(none.stderr.contains("with --limit pc09") || none.stdout.contains("with --limit pc09"), "\(none.stdout)")
    // Without the audit log, the run history answers: pc02 is where the runbook last failed
    // (the runs since left it out, or reached no host).
    let noLog = try lab.cfi(["--json", "--audit-log", "none", "--limit", "@failed", runbook])
    #expect(noLog.status == 2, "\(noLog.stderr)")
    #expect(outcomes(noLog) == ["pc02": "failed"])
  }
}
