// The run history on a real fleet: `cfi-sh log`, `log last`, `log RUN --json`, `log --host`,
// and `--limit @failed` read from the state database (the audit log only when the database
// has no run of the runbook).

import Foundation
import TestSupport
import Testing

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct LogFleetTests {
  private func log(_ lab: Lab, _ arguments: [String]) throws -> Command {
    try Command.run(["log", "--store", lab.store.path] + arguments)
  }

  private func json(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:] }
  }

  @Test func theHistoryShowsRunsAndHostsAndRerunsWhatFailed() throws {
    let lab = try Lab("log", hosts: 4)
    let empty = try log(lab, [])
    #expect(empty.status == 0 && empty.stdout.isEmpty)
    #expect(empty.stderr.contains("no runs recorded in \(lab.store.path) yet"), "\(empty.stderr)")

    // pc02 fails, pc03 is off; each host that runs the step adds a line to its marker.
    let runbook = try lab.storeFile(
      "site.cfi", "on all < run 'echo ran >> /root/log-marker; test $(hostname) != pc02' >")
    try lab.stopSSHD("pc03")
    let first = try lab.cfi(["--json", "--connect-timeout", "3s", runbook])
    #expect(first.status == 6, "\(first.stderr)")
    let firstID = try #require(events(first, "run_started").first?["run"] as? String)
    let second = try lab.cfi(["-q", "--connect-timeout", "3s", runbook, "again"])
    #expect(second.status == 6, "\(second.stderr)")

    // The list: newest first, with the hosts' counts and the exit status.
    let list = try log(lab, [])
    #expect(list.status == 0, "\(list.stderr)")
    let lines = list.stdout.split(separator: "\n")
    #expect(lines.count == 3, "\(list.stdout)")
    #expect(lines.first?.hasPrefix("RUN ") == true)
    #expect(lines.dropFirst().allSatisfy { $0.contains("2 ok, 1 failed, 1 unreachable") && $0.contains(" 6 ") }, "\(list.stdout)")
    #expect(lines.last?.hasPrefix(firstID.prefix(8)) == true, "\(list.stdout)")
    let listed = try json(try log(lab, ["--json"]).stdout)
    #expect(listed.map { $0["run"] as? String }.last == firstID)
    #expect(listed.first?["arguments"] as? [String] == ["again"])
    #expect(try json(try log(lab, ["--json", "-n", "1"]).stdout).count == 1)

    // One run, as its end-of-run output showed it.
    let last = try log(lab, ["last"])
    #expect(last.status == 0, "\(last.stderr)")
    #expect(last.stdout.contains("runbook: \(runbook) again"), "\(last.stdout)")
    #expect(last.stdout.contains("pc02 (1)") && last.stdout.contains("failed (exit 1)"), "\(last.stdout)")
    #expect(last.stdout.contains("pc03 (1)") && last.stdout.contains("UNREACHABLE"), "\(last.stdout)")
    #expect(last.stdout.contains("recap ok: pc[01,04] (2)  failed: pc02 (1)  unreachable: pc03 (1)"), "\(last.stdout)")
    let shown = try log(lab, ["--json", String(firstID.prefix(10))])
    #expect(shown.status == 0, "\(shown.stderr)")
    let recorded = try json(shown.stdout)
    #expect(recorded.first?["event"] as? String == "run_started" && recorded.first?["run"] as? String == firstID)
    #expect(recorded.filter { $0["event"] as? String == "step_finished" }.count == 4)
    #expect(recorded.last?["event"] as? String == "run_finished" && recorded.last?["exit_status"] as? Int == 6)

    // One host's history: a line per run, newest first.
    let pc02 = try log(lab, ["--host", "pc02"])
    let pc02Lines = pc02.stdout.split(separator: "\n").dropFirst()
    #expect(pc02Lines.count == 2 && pc02Lines.allSatisfy { $0.hasSuffix("failed  1") }, "\(pc02.stdout)")
    let pc03 = try json(try log(lab, ["--host", "pc03", "--json"]).stdout)
    #expect(pc03.count == 2 && pc03.allSatisfy { $0["status"] as? String == "unreachable" }, "\(pc03)")
    #expect((pc03.first?["steps"] as? [[String: Any]])?.first?["reason"] as? String == "refused")

    // Errors: an unknown run, a bad option.
    let unknown = try log(lab, ["ffffffff"])
    #expect(unknown.status == 1 && unknown.stderr.contains("no run 'ffffffff'"), "\(unknown.stderr)")
    #expect(try log(lab, ["last", "--host", "pc01"]).status == 64)

    // --limit @failed reruns exactly the failed host of the last real run, from the history.
    try lab.lab("start-sshd", "pc03")
    let rerun = try lab.cfi(["--json", "--audit-log", "none", "--limit", "@failed", runbook])
    #expect(outcomes(rerun) == ["pc02": "failed"], "\(rerun.stderr)")
    #expect(try lab.read("pc01", "wc -l < /root/log-marker") == "2")
    #expect(try lab.read("pc02", "wc -l < /root/log-marker") == "3")
    let host = try log(lab, ["--host", "pc02", "-n", "1"])
    #expect(host.stdout.split(separator: "\n").count == 2, "\(host.stdout)")

    // A store whose history has no run of the runbook: the audit log's last run.
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: lab.store.path + "/.cfi/state.sqlite" + suffix) }
    let fromAudit = try lab.cfi(["--json", "--limit", "@unreachable", runbook])
    #expect(outcomes(fromAudit) == ["pc03": "ok"], "the audit log's last run is the second: \(fromAudit.stderr)")
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: lab.store.path + "/.cfi/state.sqlite" + suffix) }
    let neither = try lab.cfi(["--audit-log", "none", "--limit", "@failed", runbook])
    #expect(neither.status == 64)
    #expect(neither.stderr.contains("--limit @failed: no earlier run of \(runbook)"), "\(neither.stderr)")
  }
}
