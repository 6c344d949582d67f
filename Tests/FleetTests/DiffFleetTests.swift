// --diff on a real fleet: three hosts, two with one old version of a file and one with
// another, get a third from the store. `--check --diff` shows two diff groups and changes
// nothing; `--diff` alone changes the files and shows the same; a crypt hash in the file
// never shows. Packages from the local apt repository show their versions from → to.
//
// The text output is compared with files in `Golden/` (next to this file), the store's path
// written as STORE. Recording: `CFI_RECORD=1 swift test --filter DiffFleetTests` rewrites
// them (the test then fails, so a recording run never passes).

import Foundation
import TestSupport
import Testing

private let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden").path

/// `actual` against `Golden/NAME`, or recorded there with CFI_RECORD=1.
private func expectGolden(_ name: String, _ actual: String) throws {
  let path = goldenDirectory + "/" + name
  if ProcessInfo.processInfo.environment["CFI_RECORD"] == "1" {
    try FileManager.default.createDirectory(atPath: goldenDirectory, withIntermediateDirectories: true)
    try actual.write(toFile: path, atomically: true, encoding: .utf8)
    Issue.record("recorded \(name); run again without CFI_RECORD")
    return
  }
  let expected = try? String(contentsOfFile: path, encoding: .utf8)
  #expect(expected == actual, "\(name) differs:\n\(actual)")
}

private let hashA = "$6$saltsalt$" + String(repeating: "A", count: 86)
private let hashC = "$6$saltsalt$" + String(repeating: "C", count: 86)

private let versionA = "# cfi test\ngreeting = hello\nversion = A\nroot_hash = \(hashA)\nport = 80\n"
private let versionB = "# cfi test\ngreeting = bonjour\nversion = B\nport = 80\nextra = yes\n"
private let versionC = "# cfi test\ngreeting = hello\nversion = C\nroot_hash = \(hashC)\nport = 80\n"

@Suite(.serialized, .enabled(if: fleetAvailable, "fleet tests need root"))
struct DiffFleetTests {
  @Test func copyShowsOneDiffPerOldVersionThenChanges() throws {
    let lab = try Lab("diff", hosts: 3, groups: ["lab"])
    try lab.storeFile("lab/etc/cfi-test.conf", versionC, mode: 0o644)
    for host in lab.hosts {
      let (text, mode) = host == "pc03" ? (versionB, "600") : (versionA, "644")
      // An old time: A and C have one size, and rsync's quick check skips a file whose size
      // and time match.
      let written = try lab.exec(
        host, "printf '%s' '\(text)' > /etc/cfi-test.conf && chmod \(mode) /etc/cfi-test.conf && touch -d 2020-01-01 /etc/cfi-test.conf")
      try #require(written.status == 0, "\(written.stderr)")
    }
    let runbook = #"on all < copy "etc/cfi-test.conf" >"#
    func text(_ result: Command) -> String { result.stdout.replacingOccurrences(of: lab.store.path, with: "STORE") }

    let check = try lab.run(runbook, ["--check", "--diff"])
    #expect(check.status == 0, "\(check.stderr)")
    try expectGolden("diff-check.txt", text(check))
    for host in lab.hosts {
      #expect(try lab.read(host, "cat /etc/cfi-test.conf") + "\n" == (host == "pc03" ? versionB : versionA), "\(host): --check changed it")
    }

    // The same as JSON: the diff of step_finished, equal where the old version was.
    let json = try lab.run(runbook, ["--check", "--diff", "--json"])
    let diffs = Dictionary(uniqueKeysWithValues: steps(json).map { ($0["host"] as! String, $0["diff"] as? String ?? "") })
    #expect(diffs["pc01"] == diffs["pc02"] && diffs["pc01"] != diffs["pc03"])
    #expect(diffs["pc03"]?.contains("/etc/cfi-test.conf: mode changed 0600 → 0644") == true)
    #expect(diffs["pc01"]?.contains("\n-root_hash = <redacted>\n") == true && diffs["pc01"]?.contains("\n+root_hash = <redacted>\n") == true)

    let real = try lab.run(runbook, ["--diff"])
    #expect(real.status == 0, "\(real.stderr)")
    try expectGolden("diff-real.txt", text(real))
    for host in lab.hosts { #expect(try lab.read(host, "cat /etc/cfi-test.conf") + "\n" == versionC, "\(host)") }

    // Nothing more to change: ok, no diff.
    let again = try lab.run(runbook, ["--diff", "--json"])
    #expect(outcomes(again) == all(lab.hosts, "ok"))
    #expect(steps(again).allSatisfy { $0["diff"] == nil })

    // No hash in any output or in the audit log.
    let audit = (try? String(contentsOfFile: lab.auditLog, encoding: .utf8)) ?? ""
    for output in [check.stdout, json.stdout, real.stdout, audit] {
      #expect(!output.contains("$6$saltsalt"), "a crypt hash was shown")
    }
  }

  @Test func packagesShowVersionsFromTo() throws {
    let repository = try AptRepository()
    try repository.publish("cfi-test-a", "1.0")
    try repository.publish("cfi-test-b", "2.0")
    let lab = try Lab("diffpkg", hosts: 2, groups: ["lab"])
    try lab.storeFile("lab/etc/apt/sources.list.d/cfi-test.list", repository.sourceLine + "\n")
    let setup = try lab.run(#"on all < copy "etc/apt/sources.list.d/cfi-test.list"; install "cfi-test-a" >"#, ["--json"])
    #expect(outcomes(setup) == all(lab.hosts, "changed"), "\(setup.stderr)")
    try repository.publish("cfi-test-a", "1.1")
    // The lists must know 1.1 before the check (check mode does not refresh them).
    for host in lab.hosts { try lab.exec(host, "apt-get -q update >/dev/null 2>&1") }

    let runbook = #"on all < install "cfi-test-a" "cfi-test-b" >"#
    let check = try lab.run(runbook, ["--check", "--diff"])
    #expect(check.status == 0, "\(check.stderr)")
    try expectGolden("diff-packages-check.txt", check.stdout)
    for host in lab.hosts {
      #expect(try lab.read(host, "dpkg-query -W -f='${Version}' cfi-test-a") == "1.0", "\(host): --check upgraded it")
    }

    let real = try lab.run(runbook, ["--diff", "--json"])
    #expect(outcomes(real) == all(lab.hosts, "changed"), "\(real.stderr)")
    for step in steps(real) {
      #expect(step["diff"] as? String == "cfi-test-a 1.0 → 1.1\ncfi-test-b (new) 2.0\n", "\(step["host"] ?? "")")
    }
  }
}
