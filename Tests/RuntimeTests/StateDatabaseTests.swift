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

  /// A fleet on the scratch store; `configuration`: the text of its server.conf.
  private func fleet(notices: FleetRunNotices = FleetRunNotices(), configuration: String = "") -> FleetRun {
    try? FileManager.default.createDirectory(atPath: store.root + "/lab", withIntermediateDirectories: true)
    let file = scratch.path + "/server-\(UUID().uuidString).conf"
    _ = FileManager.default.createFile(atPath: file, contents: Data(configuration.utf8))
    let sources = InventorySources(
      store: store, dshDirectory: scratch.path + "/no-dsh", discovery: false, configurationFile: file)
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

  /// A history on a database whose writes wait `busyTimeout` for another's, and what it warned.
  private func history(busyTimeout: TimeInterval = 0.05) throws -> (RunHistory, StateDatabase, FleetRunNotices) {
    let database = try StateDatabase(store: store, busyTimeout: busyTimeout)
    let notices = FleetRunNotices()
    let history = RunHistory(database: database, store: store, runID: "r1", arguments: [], source: nil, warning: notices.add)
    return (history, database, notices)
  }

  /// Block `block` of run r1: a step on pc01, its outcome.
  private func emitBlock(_ block: Int, to history: RunHistory) {
    let step = StepInfo(block: block, location: "site.cfi:\(block):1", label: "run \"true\"")
    history.emit(.blockStarted(BlockInfo(id: block, label: "on pc01", location: step.location, hosts: [Self.host("pc01")])))
    history.emit(.stepFinished(step, host: Self.host("pc01"), result: StepResult(status: .ok, exitCode: 0, output: "")))
    history.emit(.blockFinished(id: block, outcomes: [HostOutcome(host: Self.host("pc01"), status: .ok)], stopped: false))
  }

  private func recorded(_ database: StateDatabase) throws -> (runs: Int, ended: Int, steps: Int, blocks: Int, outcomes: Int) {
    try database.read { db in
      (
        try Int.fetchOne(db, sql: "SELECT count(*) FROM run") ?? 0,
        try Int.fetchOne(db, sql: "SELECT count(*) FROM run WHERE finished IS NOT NULL AND exit_status = 0") ?? 0,
        try Int.fetchOne(db, sql: "SELECT count(*) FROM step_result") ?? 0,
        try Int.fetchOne(db, sql: "SELECT count(*) FROM block") ?? 0,
        try Int.fetchOne(db, sql: "SELECT count(*) FROM host_outcome") ?? 0
      )
    }
  }

  @Test func aDatabaseLockedThroughTheRunCostsTwoWaitsAndTheHistoryNotTheRun() throws {
    let (history, database, notices) = try history()
    let holder = DatabaseWriteLock(path: database.path)
    try holder.lock()
    history.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
    for block in 1...3 { emitBlock(block, to: history) }
    history.emit(.runFinished(outcomes: [], interrupted: false, error: nil))
    history.finish(exitStatus: 0)
    holder.unlock()
    // The start failed; the blocks and the end waited for the one more try at `finish`.
    #expect(history.attempts == 2)
    #expect(notices.all.count == 2)
    #expect(notices.all.first?.hasPrefix("run history held back: ") == true)
    #expect(notices.all.last?.hasPrefix("run history not recorded: ") == true)
    #expect(try recorded(database) == (0, 0, 0, 0, 0))
  }

  @Test func aDatabaseLockedForAMomentLosesNothing() throws {
    let (history, database, notices) = try history()
    let holder = DatabaseWriteLock(path: database.path)
    try holder.lock()
    history.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
    emitBlock(1, to: history)
    holder.unlock()
    emitBlock(2, to: history)
    history.emit(.runFinished(outcomes: [], interrupted: false, error: "stopped \("$6$salt$" + String(repeating: "a", count: 86))"))
    history.finish(exitStatus: 0)
    #expect(history.attempts == 2)
    #expect(notices.all.count == 1)
    #expect(notices.all.first?.hasPrefix("run history held back: ") == true)
    #expect(try recorded(database) == (1, 1, 2, 2, 1))
    let error = try database.read { db in try String.fetchOne(db, sql: "SELECT error FROM run") }
    #expect(error?.hasPrefix("stopped ") == true && error?.contains("$6$salt") == false)
  }

  @Test func aMigrationLockHeldTooLongFailsTheOpen() throws {
    let path = scratch.path + "/state.sqlite"
    let stuck = try LockFile(path: path + ".migrating")
    #expect {
      try StateDatabase(path: path, busyTimeout: 0.01)
    } throws: { error in
      (error as? StateDatabaseError)?.reason.contains("another process has been bringing its schema up to date") == true
    }
    stuck.unlock()
    #expect(try StateDatabase(path: path, busyTimeout: 0.01).appliedMigrations() == StateSchema.migrator.migrations)
  }

  @Test func outputIsCutAtAScalarBoundary() {
    #expect(RunHistory.capped("short é") == "short é")
    // A cut one byte into "€" (three bytes) keeps the bytes before it.
    let text = String(repeating: "a", count: RunHistory.outputCap - 1) + "€" + "tail"
    let cut = RunHistory.capped(text)
    #expect(cut == String(repeating: "a", count: RunHistory.outputCap - 1) + "\n[… 7 more bytes not kept]")
  }

  /// server.conf's `keep_history`: a run older than it goes, with its steps and outcomes,
  /// at the end of the next run; `forever` keeps it.
  @Test func runsOlderThanKeepHistoryAreRemovedAfterTheNextRun() async throws {
    func run(_ fleet: FleetRun, startedDaysAgo days: Double) async throws {
      _ = try await fleet.run(lock: .noWait, sink: EventLog()) { sink in
        sink.emit(.runStarted(runbook: "site.cfi", check: false, date: Date().addingTimeInterval(-days * 86_400)))
        let step = StepInfo(block: 1, location: "site.cfi:1:1", label: "run \"true\"")
        sink.emit(.blockStarted(BlockInfo(id: 1, label: "on pc01", location: step.location, hosts: [Self.host("pc01")])))
        sink.emit(.stepFinished(step, host: Self.host("pc01"), result: StepResult(status: .ok, exitCode: 0, output: "")))
        let outcomes = [HostOutcome(host: Self.host("pc01"), status: .ok)]
        sink.emit(.blockFinished(id: 1, outcomes: outcomes, stopped: false))
        return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: false))
      }
    }
    try await run(fleet(configuration: "keep_history = forever\n"), startedDaysAgo: 40)
    try await run(fleet(configuration: "keep_history = forever\n"), startedDaysAgo: 10)
    let database = try StateDatabase(store: store)
    func count(_ table: String) throws -> Int {
      try database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0 }
    }
    #expect(try count("run") == 2 && count("block") == 2)
    try await run(fleet(configuration: "keep_history = 30d\n"), startedDaysAgo: 0)
    #expect(try count("run") == 2)
    #expect(try count("step_result") == 2 && count("host_outcome") == 2 && count("block") == 2)
    let kept = try database.read { db in try Date.fetchAll(db, sql: "SELECT started FROM run") }
    #expect(kept.allSatisfy { $0 > Date().addingTimeInterval(-30 * 86_400) })
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
