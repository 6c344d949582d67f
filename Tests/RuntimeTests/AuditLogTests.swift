// AuditLog: the JSON lines a run leaves behind, read back from a real file.

import Foundation
import Runtime
import Testing

@Suite("AuditLog")
struct AuditLogTests {
  /// Builds every event these tests emit; the one place to change if an event's shape does.
  enum Make {
    static let started = Date(timeIntervalSince1970: 1_790_000_000)

    static func host(_ name: String, _ group: String = "lab") -> Runtime.Host {
      Runtime.Host(name: HostName(name)!, group: GroupName(group)!)
    }

    static func runStarted(_ runbook: String = "site.cfi", check: Bool = false) -> Event {
      .runStarted(runbook: runbook, check: check, date: started)
    }

    static func outcome(_ name: String, _ status: StepStatus, _ message: String? = nil) -> HostOutcome {
      HostOutcome(host: host(name), status: status, message: message)
    }

    static func hostFinished(block: Int, _ name: String, _ status: StepStatus, _ message: String? = nil) -> Event {
      .hostFinished(block: block, outcome(name, status, message))
    }

    /// The events around the host results that the log does not record.
    static func noise(block: Int, hosts: [String]) -> [Event] {
      let step = StepInfo(block: block, location: "site.cfi:2:3", label: #"run "true""#)
      return [.blockStarted(BlockInfo(id: block, label: "on group lab", location: "site.cfi:1:1", hosts: hosts.map { host($0) }))]
        + hosts.flatMap { name in
          [.stepStarted(step, host: host(name)), .stepFinished(step, host: host(name), result: StepResult(status: .ok))]
        } + [.message("hello", host: nil)]
    }

    static func blockFinished(_ id: Int, _ outcomes: [HostOutcome]) -> Event {
      .blockFinished(id: id, outcomes: outcomes, stopped: false)
    }

    static func runFinished(_ outcomes: [HostOutcome], error: String? = nil) -> Event {
      .runFinished(outcomes: outcomes, interrupted: false, error: error)
    }
  }

  /// A log file in a fresh directory (`…/logs/audit.log`, the directory not created yet).
  final class TemporaryLog {
    let directory: String
    var path: String { directory + "/logs/audit.log" }

    init() {
      directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfi-audit-\(UUID().uuidString)").path
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    var text: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// Every line, parsed; a line that is not a JSON object fails the test.
    func records(sourceLocation: SourceLocation = #_sourceLocation) -> [[String: Any]] {
      text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().compactMap { line in
        let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        if object == nil { Issue.record("not a JSON object: \(line)", sourceLocation: sourceLocation) }
        return object
      }
    }
  }

  static let hash = "$6$saltsalt$" + String(repeating: "a", count: 86)

  static func isTimestamp(_ value: Any?) -> Bool {
    (value as? String).flatMap { ISO8601DateFormatter().date(from: $0) } != nil
  }

  static func emit(_ events: [Event], to log: AuditLog) {
    for event in events { log.emit(event) }
  }

  // MARK: - Records

  @Test func aRunWritesOneLinePerHostResultThenOneRunRecord() throws {
    let file = TemporaryLog()
    let log = try AuditLog(path: file.path, arguments: ["--check", "x"])
    let outcomes = [Make.outcome("pc01", .ok), Make.outcome("pc02", .changed), Make.outcome("pc03", .failed, "site.cfi:2:3: run: exit status 1")]
    AuditLogTests.emit(
      [Make.runStarted(check: true)] + Make.noise(block: 1, hosts: ["pc01", "pc02", "pc03"])
        + outcomes.map { .hostFinished(block: 1, $0) } + [Make.blockFinished(1, outcomes), Make.runFinished(outcomes)],
      to: log)
    #expect(file.records().count == 3, "host records are written as hosts finish, the run record only by finish")
    log.finish(exitStatus: 2)

    let records = file.records()
    try #require(records.count == 4)
    let run = try #require(records.last)
    let runID = try #require(run["run"] as? String)
    #expect(UUID(uuidString: runID) != nil && runID == runID.lowercased())

    for (record, outcome) in zip(records, outcomes) {
      var keys: Set = ["record", "run", "time", "block", "host", "group", "status"]
      if outcome.message != nil { keys.insert("message") }
      #expect(Set(record.keys) == keys)
      #expect(record["record"] as? String == "host")
      #expect(record["run"] as? String == runID)
      #expect(AuditLogTests.isTimestamp(record["time"]))
      #expect(record["block"] as? Int == 1)
      #expect(record["host"] as? String == outcome.host.name.rawValue)
      #expect(record["group"] as? String == "lab")
      #expect(record["status"] as? String == outcome.status.rawValue)
      #expect(record["message"] as? String == outcome.message)
    }

    var keys: Set = ["record", "run", "started", "finished", "user", "runbook", "arguments", "check", "exitStatus", "hosts"]
    if ProcessInfo.processInfo.environment["SUDO_USER"] != nil { keys.insert("sudoUser") }
    #expect(Set(run.keys) == keys)
    #expect(run["record"] as? String == "run")
    #expect(run["started"] as? String == ISO8601DateFormatter().string(from: Make.started))
    #expect(AuditLogTests.isTimestamp(run["finished"]))
    #expect((run["user"] as? String)?.isEmpty == false)
    #expect(run["sudoUser"] as? String == ProcessInfo.processInfo.environment["SUDO_USER"])
    #expect(run["runbook"] as? String == "site.cfi")
    #expect(run["arguments"] as? [String] == ["--check", "x"])
    #expect(run["check"] as? Bool == true)
    #expect(run["exitStatus"] as? Int == 2)
    #expect(run["hosts"] as? [String: String] == ["pc01": "ok", "pc02": "changed", "pc03": "failed"])
  }

  /// Over several blocks, the run record keeps each host's status for the whole run (the
  /// worst, as the run's outcomes say), and the runtime error when there was one.
  @Test func theRunRecordHoldsTheRunsOutcomesAndError() throws {
    let file = TemporaryLog()
    let log = try AuditLog(path: file.path, arguments: [])
    AuditLogTests.emit(
      [
        Make.runStarted("<command line>"),
        Make.hostFinished(block: 1, "pc01", .failed, "site.cfi:2:3: fail"),
        Make.hostFinished(block: 1, "pc02", .ok),
        Make.hostFinished(block: 2, "pc01", .ok),
        Make.hostFinished(block: 2, "pc02", .changed),
        Make.runFinished([Make.outcome("pc01", .failed), Make.outcome("pc02", .changed)], error: "site.cfi:4:1: boom"),
      ], to: log)
    log.finish(exitStatus: 1)
    let records = file.records()
    #expect(records.map { $0["block"] as? Int } == [1, 1, 2, 2, nil])
    let run = try #require(records.last)
    #expect(run["runbook"] as? String == "<command line>")
    #expect(run["check"] as? Bool == false)
    #expect(run["hosts"] as? [String: String] == ["pc01": "failed", "pc02": "changed"])
    #expect(run["error"] as? String == "site.cfi:4:1: boom")
    #expect(run["exitStatus"] as? Int == 1)
  }

  @Test func aRunWithoutHostsStillLeavesItsRecord() throws {
    let file = TemporaryLog()
    let log = try AuditLog(path: file.path, arguments: [])
    AuditLogTests.emit([Make.runStarted(), Make.runFinished([])], to: log)
    log.finish(exitStatus: 0)
    let records = file.records()
    #expect(records.count == 1)
    #expect(records.first?["record"] as? String == "run")
    #expect(records.first?["hosts"] as? [String: String] == [:])
  }

  /// A runbook without a file (`-c`, stdin) is recorded with its text and the store it ran on,
  /// so `--limit @failed` finds that very runbook's last run.
  @Test func theRecordHoldsTheStoreAndTheTextOfARunbookWithoutAFile() throws {
    let file = TemporaryLog()
    let log = try AuditLog(path: file.path, arguments: [], store: "/srv/cfi", source: #"on all < run "true" >"#)
    AuditLogTests.emit([Make.runStarted(), Make.runFinished([])], to: log)
    log.finish(exitStatus: 0)
    #expect(file.records().first?["store"] as? String == "/srv/cfi")
    #expect(file.records().first?["source"] as? String == #"on all < run "true" >"#)
  }

  // MARK: - Secrets

  @Test func hashArgumentsAreRedacted() throws {
    let file = TemporaryLog()
    let log = try AuditLog(path: file.path, arguments: ["--check", AuditLogTests.hash, "plain"])
    AuditLogTests.emit([Make.runStarted(), Make.runFinished([])], to: log)
    log.finish(exitStatus: 0)
    #expect(file.records().last?["arguments"] as? [String] == ["--check", Secret.redacted, "plain"])
    #expect(!file.text.contains("$6$saltsalt$"))
  }

  /// A host's failure message and the run's error are free text: a runbook's `fail` can put a
  /// hash there. Nothing in the log may carry one.
  @Test func hashesInMessagesNeverReachTheLog() throws {
    let file = TemporaryLog()
    let log = try AuditLog(path: file.path, arguments: ["--password=" + AuditLogTests.hash])
    AuditLogTests.emit(
      [
        Make.runStarted(),
        Make.hostFinished(block: 1, "pc01", .failed, "site.cfi:3:5: refused \(AuditLogTests.hash)"),
        Make.runFinished([Make.outcome("pc01", .failed)], error: "site.cfi:9:1: \"\(AuditLogTests.hash)\" is bad"),
      ], to: log)
    log.finish(exitStatus: 1)
    #expect(!file.text.contains("$6$saltsalt$"))
    #expect(file.text.contains(#""arguments":["--password=<redacted>"]"#))
    // Still one JSON object per line.
    for line in file.text.split(separator: "\n") {
      #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
    }
  }

  // MARK: - The file

  @Test func theLogAndItsDirectoryAreCreatedPrivate() throws {
    let file = TemporaryLog()
    let log = try AuditLog(path: file.path, arguments: [])
    log.finish(exitStatus: 0)
    let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
    #expect((attributes[.posixPermissions] as? Int).map { $0 & 0o777 } == 0o600)
  }

  /// Two logs on one file (two runs at once, or one after the other): both append, nothing
  /// earlier is overwritten, and lines written concurrently never mix.
  @Test func twoLogsOnOneFileOnlyAppend() async throws {
    let file = TemporaryLog()
    try FileManager.default.createDirectory(atPath: file.directory + "/logs", withIntermediateDirectories: true)
    try #"{"record":"earlier"}"#.appending("\n").write(toFile: file.path, atomically: false, encoding: .utf8)
    let first = try AuditLog(path: file.path, arguments: ["first"])
    let second = try AuditLog(path: file.path, arguments: ["second"])
    let hosts = (1...200).map { "pc\($0)" }
    await withTaskGroup(of: Void.self) { group in
      for log in [first, second] {
        for name in hosts {
          group.addTask { log.emit(Make.hostFinished(block: 1, name, .ok, String(repeating: "x", count: 500))) }
        }
      }
    }
    first.finish(exitStatus: 0)
    second.finish(exitStatus: 3)

    let records = file.records()
    #expect(records.count == 1 + 2 * hosts.count + 2)
    #expect(records.first?["record"] as? String == "earlier")
    let runs = records.filter { $0["record"] as? String == "run" }
    try #require(runs.count == 2)
    #expect(runs.map { $0["arguments"] as? [String] } == [["first"], ["second"]])
    #expect(runs.map { $0["exitStatus"] as? Int } == [0, 3])
    let ids = runs.compactMap { $0["run"] as? String }
    #expect(Set(ids).count == 2)
    for id in ids {
      let hostRecords = records.filter { $0["record"] as? String == "host" && $0["run"] as? String == id }
      #expect(Set(hostRecords.compactMap { $0["host"] as? String }) == Set(hosts))
    }
  }

  @Test func anUnusablePathIsAnError() throws {
    let file = TemporaryLog()
    try FileManager.default.createDirectory(atPath: file.directory, withIntermediateDirectories: true)
    try "".write(toFile: file.directory + "/plain", atomically: false, encoding: .utf8)
    #expect(throws: (any Error).self) { try AuditLog(path: file.directory + "/plain/audit.log", arguments: []) }
  }
}
