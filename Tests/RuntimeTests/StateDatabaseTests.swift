// The state database without a lab: a run's history as FleetRun records it, the schema's
// migrations, two runs writing at once, and a database that cannot be used (the run goes on).

import Foundation
import GRDB
import Testing

@testable import Runtime
import TestSupport

@Suite struct StateDatabaseTests {
  let scratch = FleetRunScratch()
  var store: Store { Store(root: scratch.path + "/store") }

  private func fleet(notices: FleetRunNotices = FleetRunNotices()) -> FleetRun {
    try? FileManager.default.createDirectory(atPath: store.root + "/lab", withIntermediateDirectories: true)
    let sources = InventorySources(store: store, dshDirectory: scratch.path + "/no-dsh", discovery: false)
    return FleetRun(store: store, sources: sources, executor: RecordingExecutor(), audit: .none, notice: notices.add)
  }

  private static func host(_ name: String) -> Host { Host(name: HostName(name)!, group: "lab") }

  /// One run: a block with a step on two hosts, pc02 failing; `hash` goes into the output.
  private func runOnce(_ fleet: FleetRun, arguments: [String] = ["--x"], output: String = "6.1.0") async throws -> String {
    let events = EventLog()
    _ = try await fleet.run(arguments: arguments, lock: .noWait, sink: events) { sink in
      sink.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
      let step = StepInfo(block: 1, location: "site.cfi:1:13", label: "run \"uname -r\"")
      sink.emit(.stepFinished(step, host: Self.host("pc01"), result: StepResult(status: .ok, exitCode: 0, output: output)))
      sink.emit(
        .stepFinished(step, host: Self.host("pc02"), result: StepResult(status: .failed, exitCode: 3, output: "", errorOutput: "no")))
      let outcomes = [HostOutcome(host: Self.host("pc01"), status: .ok), HostOutcome(host: Self.host("pc02"), status: .failed)]
      sink.emit(.blockFinished(id: 1, outcomes: outcomes, stopped: false))
      sink.emit(.runFinished(outcomes: outcomes, interrupted: false, error: nil))
      return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: false))
    }
    for case .runStarted(_, _, _, let run?) in events.events { return run }
    Issue.record("no run id")
    return ""
  }

  @Test func aRunIsRecordedWithItsStepsOutcomesAndExitStatus() async throws {
    let fleet = fleet()
    let hash = "$6$salt$" + String(repeating: "a", count: 86)
    let id = try await runOnce(fleet, arguments: ["--x", hash], output: "6.1.0 " + hash)
    let database = try #require(fleet.state)
    let run = try database.read { db in
      try Row.fetchOne(db, sql: "SELECT runbook, arguments, exit_status, finished IS NOT NULL AS ended FROM run WHERE id = ?", arguments: [id])
    }
    #expect(run?["runbook"] == "site.cfi")
    #expect(run?["exit_status"] == ExitStatus.hostsFailed)
    #expect(run?["ended"] == true)
    #expect((run?["arguments"] as String?)?.contains("$6$salt") == false)
    let steps = try database.read { db in
      try Row.fetchAll(db, sql: "SELECT host, status, exit_code, output FROM step_result WHERE run_id = ? ORDER BY sequence", arguments: [id])
    }
    #expect(steps.map { $0["host"] as String } == ["pc01", "pc02"])
    #expect(steps.map { $0["exit_code"] as Int32? } == [0, 3])
    #expect((steps[0]["output"] as String).hasPrefix("6.1.0 "))
    #expect(!(steps[0]["output"] as String).contains("$6$salt"))
    let outcomes = try database.read { db in
      try Row.fetchAll(db, sql: "SELECT host, status FROM host_outcome WHERE run_id = ? ORDER BY host", arguments: [id])
    }
    #expect(outcomes.map { "\($0["host"] as String)=\($0["status"] as String)" } == ["pc01=ok", "pc02=failed"])
    let mode = try FileManager.default.attributesOfItem(atPath: database.path)[.posixPermissions] as? Int
    #expect(mode == 0o600)
  }

  @Test func aHostsOutcomeIsItsWorstOverTheBlocks() async throws {
    let fleet = fleet()
    _ = try await fleet.run(lock: .noWait, sink: EventLog()) { sink in
      sink.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
      sink.emit(.blockFinished(id: 1, outcomes: [HostOutcome(host: Self.host("pc01"), status: .unreachable)], stopped: false))
      sink.emit(.blockFinished(id: 2, outcomes: [HostOutcome(host: Self.host("pc01"), status: .ok)], stopped: false))
      return ((), RunEnd(outcomes: [], runtimeError: false, interrupted: false))
    }
    let status = try fleet.state?.read { db in try String.fetchOne(db, sql: "SELECT status FROM host_outcome") }
    #expect(status == "unreachable")
  }

  @Test func anUnusableDatabaseStopsNoRunAndIsSaidOnce() async throws {
    let notices = FleetRunNotices()
    let fleet = fleet(notices: notices)
    try FileManager.default.createDirectory(atPath: store.root + "/.cfi", withIntermediateDirectories: true)
    try Data("this is not a database, it is text that stands where one should".utf8)
      .write(to: URL(fileURLWithPath: StateDatabase.path(store: store)))
    _ = try await runOnce(fleet)
    _ = try await runOnce(fleet)
    let said = notices.all.filter { $0.contains("run history") }
    #expect(said.count == 1)
    #expect(said.first?.contains("state.sqlite") == true)
  }

  @Test func aDatabaseLockedByAnotherProcessCostsTheRunItsHistoryNotItsResult() async throws {
    let database = try StateDatabase(store: store)
    // Another writer holds the lock for longer than the busy timeout.
    let lock = DatabaseWriteLock(path: database.path)
    try lock.lock()
    let notices = FleetRunNotices()
    let fleet = fleet(notices: notices)
    let id = try await runOnce(fleet)
    lock.unlock()
    #expect(notices.all.filter { $0.contains("run history not recorded") }.count == 1)
    #expect(!id.isEmpty)
  }

  @Test func twoRunsWritingAtOnceLoseNothing() async throws {
    // Two FleetRuns on one store, as two processes would be, each with its own connections.
    let first = fleet()
    let second = fleet()
    let count = 20
    try await withThrowingTaskGroup(of: Void.self) { group in
      for fleet in [first, second] {
        group.addTask {
          for _ in 0..<count {
            // No lock: two processes' writes, not the store lock, are what is tested.
            _ = try await fleet.run(lock: .none, sink: EventLog()) { sink in
              sink.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
              let step = StepInfo(block: 1, location: "site.cfi:1:1", label: "run \"true\"")
              for name in ["pc01", "pc02", "pc03"] {
                sink.emit(.stepFinished(step, host: Self.host(name), result: StepResult(status: .ok, exitCode: 0, output: "")))
              }
              sink.emit(.blockFinished(id: 1, outcomes: [], stopped: false))
              return ((), RunEnd(outcomes: [], runtimeError: false, interrupted: false))
            }
          }
        }
      }
      try await group.waitForAll()
    }
    let database = try StateDatabase(store: store)
    let (runs, steps, ended) = try database.read { db in
      (
        try Int.fetchOne(db, sql: "SELECT count(*) FROM run") ?? 0,
        try Int.fetchOne(db, sql: "SELECT count(*) FROM step_result") ?? 0,
        try Int.fetchOne(db, sql: "SELECT count(*) FROM run WHERE exit_status IS NOT NULL") ?? 0
      )
    }
    #expect(runs == 2 * count)
    #expect(ended == 2 * count)
    #expect(steps == 2 * count * 3)
  }

  @Test func anEmptyFileGetsEveryMigration() throws {
    let path = scratch.path + "/empty.sqlite"
    #expect(FileManager.default.createFile(atPath: path, contents: Data()))
    let database = try StateDatabase(path: path)
    #expect(try database.appliedMigrations() == StateSchema.migrator.migrations)
  }
}
