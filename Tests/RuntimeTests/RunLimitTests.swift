// `--limit`: parsing its sets, and finding the last run that `@failed` refers to.

import Foundation
import Runtime
import TestSupport
import Testing

@Suite("RunLimit")
struct RunLimitTests {
  private func parse(_ words: [String]) throws -> RunLimit {
    try RunLimit.parse(words, members: { $0 == "lab" ? ["pc01", "pc02", "pc03"] : [] }) { status in
      status == "failed" ? ["pc02", "pc07"] : []
    }
  }

  private func allowed(_ limit: RunLimit, among names: [HostName]) -> [HostName] { names.filter(limit.allows) }

  private let pool: [HostName] = ["pc01", "pc02", "pc03", "pc04", "pc07", "web1"]

  @Test func patternsGroupsAndExclusionsAddUp() throws {
    #expect(allowed(try parse(["pc[01,03]"]), among: pool) == ["pc01", "pc03"])
    #expect(allowed(try parse(["@lab,!pc02"]), among: pool) == ["pc01", "pc03"])
    #expect(allowed(try parse(["@lab", "web1"]), among: pool) == ["pc01", "pc02", "pc03", "web1"])
    #expect(allowed(try parse(["!pc[01-04]"]), among: pool) == ["pc07", "web1"], "only exclusions: all but those")
    #expect(allowed(try parse(["@failed"]), among: pool) == ["pc02", "pc07"])
    #expect(allowed(try parse(["@lab", "!@failed"]), among: pool) == ["pc01", "pc03"])
    #expect(try parse(["@lab", "!pc02"]).text == "@lab,!pc02")
  }

  @Test func aBadSetSaysWhichLimit() {
    #expect(throws: HostPatternError.self) { try parse(["pc[05-01]"]) }
    do { _ = try parse(["pc[05-01]"]) } catch { #expect((error as? HostPatternError)?.message == "--limit: in 'pc[05-01]': range is reversed: '05-01'") }
  }

  @Test func theLastRunIsTheLatestRealRunOfTheSameRunbookOnTheSameStore() throws {
    let directory = try TemporaryDirectory()
    func record(_ runbook: String, store: String?, check: Bool = false, hosts: [String: String]) -> String {
      var object: [String: Any] = ["record": "run", "runbook": runbook, "check": check, "hosts": hosts, "finished": "t"]
      if let store { object["store"] = store }
      let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
      return String(decoding: data, as: UTF8.self)
    }
    let log = try directory.write(
      "audit.log",
      [
        record("site.cfi", store: nil, hosts: ["pc01": "failed"]),
        record("site.cfi", store: "/s", hosts: ["pc02": "failed", "pc03": "unreachable", "pc04": "ok"]),
        #"{"record":"host","run":"x","host":"pc09","status":"failed"}"#,
        record("site.cfi", store: "/other", hosts: ["pc05": "failed"]),
        record("other.cfi", store: "/s", hosts: ["pc06": "failed"]),
        record("site.cfi", store: "/s", check: true, hosts: ["pc08": "failed"]),
        "not json",
      ].joined(separator: "\n") + "\n")
    let last = try #require(LastRun.find(inAuditLog: log, runbook: "site.cfi", store: "/s"))
    #expect(last.hosts("failed") == ["pc02"])
    #expect(last.hosts("unreachable") == ["pc03"])
    #expect(LastRun.find(inAuditLog: log, runbook: "site.cfi", store: "/t")?.hosts("failed") == ["pc01"], "records without a store count for any")
    #expect(LastRun.find(inAuditLog: log, runbook: "never.cfi", store: "/s") == nil)
    // Runbooks without a file are told apart by their text.
    let commandLine = try directory.write(
      "cli.log",
      [
        record("<command line>", store: "/s", hosts: ["pc01": "failed"]).replacingOccurrences(of: "{", with: #"{"source":"a","#),
        record("<command line>", store: "/s", hosts: ["pc02": "failed"]).replacingOccurrences(of: "{", with: #"{"source":"b","#),
      ].joined(separator: "\n") + "\n")
    #expect(LastRun.find(inAuditLog: commandLine, runbook: "<command line>", source: "a", store: "/s")?.hosts("failed") == ["pc01"])
    #expect(LastRun.find(inAuditLog: directory.path + "/none.log", runbook: "site.cfi", store: "/s") == nil)
  }
}
