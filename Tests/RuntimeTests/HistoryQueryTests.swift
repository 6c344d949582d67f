// The run history read back: runs as FleetRun records them, found by id, prefix or `last`;
// one run with its blocks and events; a host's runs; the last real run of a runbook for
// `--limit @failed`; a store without history; a database from before the blocks were kept.

import Foundation
import GRDB
import Testing

@testable import Runtime
import TestSupport

@Suite struct HistoryQueryTests {
  let scratch = FleetRunScratch()
  var store: Store { Store(root: scratch.path + "/store") }

  private func fleet() -> FleetRun {
    try? FileManager.default.createDirectory(atPath: store.root + "/lab", withIntermediateDirectories: true)
    let sources = InventorySources(store: store, dshDirectory: scratch.path + "/no-dsh", discovery: false)
    return FleetRun(store: store, sources: sources, executor: RecordingExecutor(), audit: .none)
  }

  private static func host(_ name: String) -> Host { Host(name: HostName(name)!, group: "lab") }

  /// One run of `runbook`: a block on pc01-pc03, pc02 failing (inside `try` when `tolerated`),
  /// pc03 unreachable; pc01's status is `first`.
  @discardableResult
  private func run(
    _ fleet: FleetRun, runbook: String = "site.cfi", source: String? = nil, check: Bool = false, first: StepStatus = .ok
  ) async throws -> String {
    let events = EventLog()
    _ = try await fleet.run(source: source, lock: .noWait, sink: events) { sink in
      sink.emit(.runStarted(runbook: runbook, check: check, date: Date()))
      let hosts = ["pc01", "pc02", "pc03"].map(Self.host)
      sink.emit(.blockStarted(BlockInfo(id: 1, label: "on group lab", location: "site.cfi:1:1", hosts: hosts)))
      let step = StepInfo(block: 1, location: "site.cfi:1:16", label: "run \"uname -r\"")
      sink.emit(.stepFinished(step, host: hosts[0], result: StepResult(status: first, exitCode: 0, output: "6.1\n")))
      sink.emit(.stepFinished(step, host: hosts[1], result: StepResult(status: .failed, exitCode: 3, errorOutput: "no\n")))
      sink.emit(
        .stepFinished(
          step, host: hosts[2], result: StepResult(status: .unreachable, message: "connection refused", reason: .refused)))
      let outcomes = [
        HostOutcome(host: hosts[0], status: first), HostOutcome(host: hosts[1], status: .failed, message: "exit 3"),
        HostOutcome(host: hosts[2], status: .unreachable, message: "connection refused", reason: .refused),
      ]
      for outcome in outcomes { sink.emit(.hostFinished(block: 1, outcome)) }
      sink.emit(.blockFinished(id: 1, outcomes: outcomes, stopped: false))
      sink.emit(.runFinished(outcomes: outcomes, interrupted: false, error: nil))
      return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: false))
    }
    for case .runStarted(_, _, _, let id?) in events.events { return id }
    Issue.record("no run id")
    return ""
  }

  private var query: HistoryQuery {
    get throws(HistoryError) { try HistoryQuery.open(store: store) }
  }

  @Test func recentRunsAreNewestFirstWithTheirHostCounts() async throws {
    let fleet = fleet()
    let first = try await run(fleet)
    let second = try await run(fleet, runbook: "other.cfi", check: true, first: .changed)
    let runs = try query.recentRuns(count: 20)
    #expect(runs.map(\.id) == [second, first])
    #expect(runs[0].check && !runs[1].check)
    #expect(runs[0].hostCounts == [.changed: 1, .failed: 1, .unreachable: 1])
    #expect(runs[1].exitStatus == ExitStatus.hostsFailed | ExitStatus.hostsUnreachable)
    #expect(runs.allSatisfy { $0.finished != nil && $0.id.hasPrefix($0.shortID) && $0.shortID.count >= 8 })
    #expect(try query.recentRuns(count: 1).map(\.id) == [second])
  }

  @Test func aRunIsFoundByLastItsIdOrAUniquePrefix() async throws {
    let fleet = fleet()
    let first = try await run(fleet)
    let second = try await run(fleet)
    #expect(try query.runID("last") == second)
    #expect(try query.runID(first) == first)
    #expect(try query.runID(String(first.prefix(10)).uppercased()) == first)
    #expect(throws: HistoryError.self) { try query.runID("0000000z") }
    do {
      _ = try query.runID("ffffffff-no")
      Issue.record("an unknown id was found")
    } catch {
      #expect(error.description.contains("no run 'ffffffff-no'"))
    }
  }

  @Test func anAmbiguousPrefixNamesTheCandidates() async throws {
    let fleet = fleet()
    try await run(fleet)
    let database = try #require(fleet.state)
    try database.write { db in
      for id in ["abcdef01-0000", "abcdef01-1111"] {
        try RunRow(
          id: id, runbook: "site.cfi", source: nil, arguments: "[]", store: store.root, user: "root", sudoUser: nil,
          checkMode: false, started: Date()
        ).insert(db)
      }
    }
    do {
      _ = try query.runID("abcdef")
      Issue.record("an ambiguous prefix was taken")
    } catch {
      guard case .ambiguousRun(_, let candidates) = error else { throw error }
      #expect(candidates == ["abcdef01-0", "abcdef01-1"])
    }
  }

  @Test func oneRunHasItsBlocksStepsOutcomesAndEvents() async throws {
    let fleet = fleet()
    let id = try await run(fleet)
    let detail = try query.run(String(id.prefix(8)))
    #expect(detail.run.id == id)
    #expect(detail.blocks.map(\.info.label) == ["on group lab"])
    #expect(detail.blocks[0].info.hosts.map(\.name.rawValue) == ["pc01", "pc02", "pc03"])
    #expect(detail.blocks[0].outcomes.map(\.status) == [.ok, .failed, .unreachable])
    #expect(detail.steps.map(\.host.name.rawValue) == ["pc01", "pc02", "pc03"])
    #expect(detail.steps[1].result.exitCode == 3 && detail.steps[1].result.errorOutput == "no\n")
    #expect(detail.steps[2].result.reason == .refused)
    #expect(detail.outcomes.map(\.status) == [.ok, .failed, .unreachable])
    let kinds = detail.events.map { event -> String in
      switch event {
      case .runStarted: "run"
      case .blockStarted: "block"
      case .stepFinished: "step"
      case .hostFinished: "host"
      case .blockFinished: "/block"
      case .runFinished: "/run"
      default: "?"
      }
    }
    #expect(kinds == ["run", "block", "step", "step", "step", "host", "host", "host", "/block", "/run"])
  }

  @Test func aHostsHistoryIsItsRunsNewestFirst() async throws {
    let fleet = fleet()
    let first = try await run(fleet)
    let second = try await run(fleet, first: .changed)
    let runs = try query.host(HostName(stringLiteral: "pc01"), runs: 20)
    #expect(runs.map(\.run.id) == [second, first])
    #expect(runs.map { $0.outcome?.status } == [.changed, .ok])
    #expect(runs[0].steps.map(\.step.label) == ["run \"uname -r\""])
    #expect(try query.host(HostName(stringLiteral: "pc99"), runs: 20).isEmpty)
    #expect(try query.host(HostName(stringLiteral: "pc01"), runs: 1).count == 1)
  }

  @Test func theLastRealRunSkipsDryRunsAndOtherRunbooks() async throws {
    let fleet = fleet()
    try await run(fleet, first: .changed)
    try await run(fleet, check: true)
    try await run(fleet, runbook: "other.cfi")
    let last = try #require(try query.lastRealRun(runbook: "site.cfi"))
    #expect(last.hosts("changed") == [HostName(stringLiteral: "pc01")])
    #expect(last.hosts("failed") == [HostName(stringLiteral: "pc02")])
    #expect(last.hosts("unreachable") == [HostName(stringLiteral: "pc03")])
    #expect(try query.lastRealRun(runbook: "never.cfi") == nil)
  }

  /// Per host, its latest result: a run that left hosts out (a delivery to pc03 alone)
  /// changes only the results of the hosts it had.
  @Test func theLastResultIsPerHost() async throws {
    let fleet = fleet()
    try await run(fleet)
    _ = try await fleet.run(lock: .noWait, sink: EventLog()) { sink in
      sink.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
      let outcomes = [HostOutcome(host: Self.host("pc03"), status: .changed), HostOutcome(host: Self.host("pc02"), status: .skipped)]
      sink.emit(.blockFinished(id: 1, outcomes: outcomes, stopped: false))
      sink.emit(.runFinished(outcomes: outcomes, interrupted: false, error: nil))
      return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: false))
    }
    let last = try #require(try query.lastRealRun(runbook: "site.cfi"))
    #expect(last.hosts("failed") == ["pc02"])
    #expect(last.hosts("changed") == ["pc03"])
    #expect(last.hosts("unreachable").isEmpty)
    #expect(last.hosts("ok") == ["pc01"])
  }

  @Test func aCommandLineRunIsKnownByItsText() async throws {
    let fleet = fleet()
    let hash = "$6$salt$" + String(repeating: "a", count: 86)
    try await run(fleet, runbook: "<command line>", source: "on all < password root '\(hash)' >", first: .changed)
    try await run(fleet, runbook: "<command line>", source: "on all < run \"true\" >")
    let last = try query.lastRealRun(runbook: "<command line>", source: "on all < password root '\(hash)' >")
    #expect(last?.hosts("changed") == [HostName(stringLiteral: "pc01")])
  }

  /// `--limit @failed`: the history's last run; the audit log's only when the history has
  /// none of the runbook.
  @Test func theHistoryAnswersBeforeTheAuditLog() async throws {
    let log = scratch.path + "/audit.log"
    let record = #"{"record":"run","runbook":"site.cfi","check":false,"hosts":{"pc09":"failed"},"finished":"t"}"#
    try Data((record + "\n").utf8).write(to: URL(fileURLWithPath: log))
    var warnings: [String] = []
    let before = LastRun.find(store: store, auditLog: log, runbook: "site.cfi") { warnings.append($0) }
    #expect(before?.hosts("failed") == ["pc09"])
    try await run(fleet())
    let after = LastRun.find(store: store, auditLog: log, runbook: "site.cfi") { warnings.append($0) }
    #expect(after?.hosts("failed") == ["pc02"])
    #expect(LastRun.find(store: store, auditLog: log, runbook: "other.cfi") { warnings.append($0) } == nil)
    #expect(LastRun.find(store: store, auditLog: nil, runbook: "site.cfi") { warnings.append($0) }?.hosts("failed") == ["pc02"])
    #expect(warnings.isEmpty)
  }

  @Test func aStoreWithoutHistoryIsSaidAndNoDatabaseIsMade() throws {
    do {
      _ = try HistoryQuery.open(store: store)
      Issue.record("a history was opened")
    } catch {
      guard case .noHistory = error else { throw error }
      #expect(error.description == "no runs recorded in \(store.root) yet")
    }
    #expect(!FileManager.default.fileExists(atPath: StateDatabase.path(store: store)))
  }

  @Test func anEmptyHistorySaysSoForLast() throws {
    _ = try StateDatabase(store: store)
    #expect(try query.recentRuns(count: 5).isEmpty)
    #expect(throws: HistoryError.self) { try query.run("last") }
  }

  @Test func anUnreadableDatabaseIsSaid() throws {
    try FileManager.default.createDirectory(atPath: store.root + "/.cfi", withIntermediateDirectories: true)
    try Data("not a database, only text where one should be".utf8).write(to: URL(fileURLWithPath: StateDatabase.path(store: store)))
    do {
      _ = try query.recentRuns(count: 5)
      Issue.record("text was read as a history")
    } catch {
      guard case .unusable = error else { throw error }
      #expect(error.description.hasPrefix("cannot read the run history: the state database"))
    }
  }

  /// A database of the first schema: its runs are read, blocks made up from their steps.
  @Test func aRunFromBeforeBlocksWereKeptIsShownFromItsSteps() throws {
    let path = StateDatabase.path(store: store)
    let old = try StateDatabase(path: path, upTo: "1-history")
    try old.write { db in
      try RunRow(
        id: "0123abcd-old", runbook: "site.cfi", source: nil, arguments: "[]", store: store.root, user: "root", sudoUser: nil,
        checkMode: false, started: Date()
      ).insert(db)
      try db.execute(
        sql: """
          INSERT INTO step_result (run_id, sequence, block, location, label, host, host_group, status, exit_code, duration, finished)
          VALUES ('0123abcd-old', 1, 2, 'site.cfi:4:3', 'run "true"', 'pc01', 'lab', 'ok', 0, 0.5, ?)
          """, arguments: [Date()])
    }
    let detail = try query.run("0123abcd")
    #expect(try query.database.appliedMigrations() == StateSchema.migrator.migrations)
    #expect(detail.blocks.map(\.info.id) == [2])
    #expect(detail.blocks[0].info.hosts.map(\.name.rawValue) == ["pc01"])
    #expect(detail.blocks[0].info.label.contains("not recorded"))
    #expect(detail.steps.first?.step.tolerated == false)
  }
}
