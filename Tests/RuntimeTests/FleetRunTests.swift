// FleetRun without a lab: the run's lifecycle around its body (lock, audit record, known
// clients, exit status) and the inventory merge. The transport is never asked to do anything.

import Foundation
import GRDB
import Synchronization
import Testing

@testable import Runtime
import TestSupport

/// A fresh directory for one test, removed at the end.
final class FleetRunScratch {
  let path: String
  init() {
    var template = Array((NSTemporaryDirectory() + "cfi-fleetrun-XXXXXX").utf8CString)
    path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
  }
  deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Collects events (the body's sink).
final class FleetRunEvents: EventSink, @unchecked Sendable {
  private(set) var events: [Event] = []
  func emit(_ event: Event) { events.append(event) }
}

@Suite struct FleetRunTests {
  let scratch = FleetRunScratch()
  var store: Store { Store(root: scratch.path + "/store") }

  private func fleet(audit: FleetRun.AuditPolicy = .none, clientList: String? = nil, notices: FleetRunNotices = FleetRunNotices())
    -> FleetRun
  {
    try? FileManager.default.createDirectory(atPath: store.root + "/lab", withIntermediateDirectories: true)
    let sources = InventorySources(
      store: store, clientList: clientList, dshDirectory: scratch.path + "/no-dsh", discovery: false)
    return FleetRun(
      store: store, sources: sources, executor: RecordingExecutor(), audit: audit, notice: notices.add)
  }

  /// A run's end where nothing took part.
  private static let nothing = RunEnd(outcomes: [], runtimeError: false, interrupted: false)

  /// Tries a run that should not start: why it did not, and whether its body ran anyway.
  private func refused(_ fleet: FleetRun) async -> (error: FleetRunError?, ran: Bool) {
    var ran = false
    do {
      _ = try await fleet.run(lock: .noWait, sink: FleetRunEvents()) { _ in
        ran = true
        return ((), Self.nothing)
      }
      return (nil, ran)
    } catch {
      return (error, ran)
    }
  }

  private func outcome(_ name: HostName, _ status: StepStatus) -> HostOutcome {
    HostOutcome(host: Host(name: name, group: "lab"), status: status)
  }

  @Test(arguments: [
    ([StepStatus.ok, .changed, .skipped], false, false, 0, ExitStatus.success),
    ([.ok, .failed], false, false, 0, ExitStatus.hostsFailed),
    ([.unreachable, .ok], false, false, 0, ExitStatus.hostsUnreachable),
    ([.failed, .unreachable], false, false, 0, ExitStatus.hostsFailed | ExitStatus.hostsUnreachable),
    ([.failed], true, false, 0, ExitStatus.runbookError | ExitStatus.hostsFailed),
    ([], true, false, 0, ExitStatus.runbookError),
    ([.failed, .unreachable], false, true, 0, ExitStatus.interrupted),
    ([], false, false, 1, ExitStatus.noHosts),
    ([.ok, .unreachable], false, false, 2, ExitStatus.hostsUnreachable | ExitStatus.noHosts),
    ([.failed], true, false, 1, ExitStatus.runbookError | ExitStatus.hostsFailed | ExitStatus.noHosts),
    ([], false, true, 1, ExitStatus.interrupted),
  ])
  func theExitStatusComesFromTheOutcomes(
    statuses: [StepStatus], runtimeError: Bool, interrupted: Bool, unmatchedTargets: Int, expected: Int32
  ) {
    let outcomes = statuses.enumerated().map { outcome(HostName("pc\($0.offset)")!, $0.element) }
    let end = RunEnd(outcomes: outcomes, runtimeError: runtimeError, interrupted: interrupted, unmatchedTargets: unmatchedTargets)
    #expect(ExitStatus.of(end) == expected)
  }

  @Test func aRunWritesOneAuditRecordAndRemembersTheHostsItReached() async throws {
    let log = scratch.path + "/log/audit.log"
    let fleet = fleet(audit: .required(path: log))
    let events = FleetRunEvents()
    let run = try await fleet.run(arguments: ["x"], lock: .noWait, sink: events) { sink in
      let outcomes = [outcome("pc1", .changed), outcome("pc2", .failed), outcome("pc3", .unreachable)]
      sink.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
      sink.emit(.runFinished(outcomes: outcomes, interrupted: false, error: nil))
      return ("body ran", RunEnd(outcomes: outcomes, runtimeError: false, interrupted: false))
    }
    #expect(run.result == "body ran")
    #expect(run.exitStatus == ExitStatus.hostsFailed | ExitStatus.hostsUnreachable)
    #expect(events.events.count == 2)
    let records = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
    let runRecords = records.filter { $0.contains(#""record":"run""#) }
    #expect(runRecords.count == 1)
    #expect(runRecords.first?.contains(#""exitStatus":6"#) == true)
    let known = try KnownClients(database: try #require(fleet.state), store: store).load().map(\.host.name).sorted()
    #expect(known == ["pc1", "pc2"])
  }

  @Test func theRunsEventsCarryTheAuditLogsRunIDAndRunFinishedTheExitStatus() async throws {
    let log = scratch.path + "/log/audit.log"
    let fleet = fleet(audit: .required(path: log))
    let events = FleetRunEvents()
    _ = try await fleet.run(lock: .noWait, sink: events) { sink in
      let outcomes = [outcome("pc1", .ok), outcome("pc2", .unreachable)]
      sink.emit(.runStarted(runbook: "site.cfi", check: false, date: Date()))
      sink.emit(.runFinished(outcomes: outcomes, interrupted: true, error: nil))
      // The status is decided after the body: a signal may still come (here it did).
      return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: true, stopSignal: .terminate))
    }
    guard case .runStarted(_, _, _, let startedID)? = events.events.first,
      case .runFinished(_, _, _, let status, let finishedID)? = events.events.last, events.events.count == 2
    else {
      Issue.record("expected runStarted then runFinished, got \(events.events)")
      return
    }
    let record = try #require(
      String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").last { $0.contains(#""record":"run""#) })
    let id = try #require(startedID)
    #expect(record.contains(#""run":"\#(id)""#))
    #expect(finishedID == id)
    #expect(status == 128 + StopSignal.terminate.number)
  }

  @Test(arguments: StopSignal.allCases)
  func aSignalThatStoppedTheRunGivesItsStatusAndIsRecorded(signal: StopSignal) async throws {
    let log = scratch.path + "/log/audit.log"
    let fleet = fleet(audit: .required(path: log))
    let run = try await fleet.run(lock: .noWait, sink: FleetRunEvents()) { sink in
      let outcomes = [outcome("pc1", .interrupted), outcome("pc2", .failed)]
      sink.emit(.runFinished(outcomes: outcomes, interrupted: true, error: nil))
      return ((), RunEnd(outcomes: outcomes, runtimeError: false, interrupted: true, stopSignal: signal))
    }
    #expect(run.exitStatus == 128 + signal.number)
    let record = try #require(
      String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").last { $0.contains(#""record":"run""#) })
    #expect(record.contains(#""signal":"\#(signal.name)""#))
    #expect(record.contains(#""exitStatus":\#(128 + signal.number)"#))
  }

  @Test func aRunThatFindsTheLockTakenDoesNotRunUnlessItIsADryRun() async throws {
    let fleet = fleet()
    let holder = try StoreLock(store: store, wait: false)
    let (error, ran) = await refused(fleet)
    guard case .locked(_, let named) = error else {
      Issue.record("expected .locked, got \(String(describing: error))")
      return
    }
    #expect(named?.pid == String(getpid()))
    #expect(!ran)
    let dry = try await fleet.run(lock: .none, sink: FleetRunEvents()) { _ in
      (true, Self.nothing)
    }
    #expect(dry.result)
    withExtendedLifetime(holder) {}
  }

  @Test func aSessionEntryRefusedByTheLockOpensNoAuditLog() async throws {
    let log = scratch.path + "/log/audit.log"
    let fleet = fleet(audit: .bestEffort(path: log))
    let holder = try StoreLock(store: store, wait: false)
    let (error, ran) = await refused(fleet)
    #expect(error != nil && !ran)
    #expect(!FileManager.default.fileExists(atPath: log))
    withExtendedLifetime(holder) {}
  }

  @Test func theLockIsFreeAgainAfterARun() async throws {
    let fleet = fleet()
    for _ in 0..<2 {
      _ = try await fleet.run(lock: .noWait, sink: FleetRunEvents()) { _ in
        ((), Self.nothing)
      }
    }
    #expect(throws: Never.self) { _ = try StoreLock(store: store, wait: false) }
  }

  @Test func aRequiredAuditLogThatCannotBeOpenedStopsTheRunBeforeItStarts() async throws {
    // A regular file where the log's directory should be: ENOTDIR, even for root.
    _ = FileManager.default.createFile(atPath: scratch.path + "/file", contents: Data())
    let fleet = fleet(audit: .required(path: scratch.path + "/file/audit.log"))
    let (error, ran) = await refused(fleet)
    guard case .auditLogUnavailable(_, let reason) = error else {
      Issue.record("expected .auditLogUnavailable, got \(String(describing: error))")
      return
    }
    #expect(reason == "Not a directory")
    #expect(!ran)
  }

  @Test func aSessionGoesOnWithoutItsAuditLogAndSaysSoOnce() async throws {
    _ = FileManager.default.createFile(atPath: scratch.path + "/file", contents: Data())
    let notices = FleetRunNotices()
    let fleet = fleet(audit: .bestEffort(path: scratch.path + "/file/audit.log"), notices: notices)
    for _ in 0..<3 {
      let run = try await fleet.run(lock: .noWait, sink: FleetRunEvents()) { _ in
        (1, Self.nothing)
      }
      #expect(run.result == 1)
    }
    #expect(notices.all.count == 1)
    #expect(notices.all.first?.contains("this session runs without it") == true)
  }

  @Test func theInventoryMergesKnownClientsWithTheClientListWhichWins() async throws {
    let list = scratch.path + "/clients"
    try "pc1 address=10.0.0.1 group=lab\npc9 group=nosuchgroup\n".write(toFile: list, atomically: true, encoding: .utf8)
    let fleet = fleet(clientList: list)
    fleet.remember([Host(name: "pc1", group: "lab", address: "10.9.9.9"), Host(name: "pc2", group: "lab")])
    let snapshot = try await fleet.loadInventory()
    let byName = Dictionary(uniqueKeysWithValues: snapshot.entries.map { ($0.host.name, $0) })
    #expect(byName["pc1"]?.host.address == "10.0.0.1")
    #expect(byName["pc1"]?.sources == ["known", "static"])
    #expect(byName["pc2"]?.sources == ["known"])
    #expect(byName["pc9"]?.host.group == .unknown)
    #expect(snapshot.inventory.hosts(inGroup: "lab").map(\.name) == ["pc1", "pc2"])
  }

  /// The database is input: a row edited in by hand that is no valid host is skipped with
  /// its reason, and the others still count.
  @Test func aBadKnownClientIsSkippedWithItsReason() async throws {
    let fleet = fleet()
    fleet.remember([Host(name: "pc1", group: "lab")])
    let database = try #require(fleet.state)
    try database.write { db in
      try db.execute(sql: "INSERT INTO known_client (name, host_group) VALUES ('-oProxyCommand=x', 'lab')")
    }
    var reasons: [String] = []
    #expect(try KnownClients(database: database, store: store).load { reasons.append($0) }.map(\.name) == ["pc1"])
    #expect(reasons == ["\(database.path): known client '-oProxyCommand=x' ignored: 'name': not a host name: -oProxyCommand=x"])
    // The inventory says it and goes on.
    let notices = FleetRunNotices()
    let snapshot = try await self.fleet(notices: notices).loadInventory()
    #expect(snapshot.entries.map(\.host.name) == ["pc1"])
    #expect(notices.all.contains { $0.contains("'-oProxyCommand=x' ignored") })
  }

  @Test func aMissingOrWrongClientListIsAnErrorThatSaysWhy() async throws {
    await #expect {
      _ = try await fleet(clientList: scratch.path + "/none").loadInventory()
    } throws: { error in
      guard case .unreadable(_, _, let reason) = error as? InventorySourceError else { return false }
      return reason == "No such file or directory"
    }
    let list = scratch.path + "/clients"
    try "pc1 colour=blue\n".write(toFile: list, atomically: true, encoding: .utf8)
    await #expect {
      _ = try await fleet(clientList: list).loadInventory()
    } throws: { error in
      guard case .invalid(let problem) = error as? InventorySourceError else { return false }
      return problem.line == 1 && problem.message.contains("unknown key 'colour'")
    }
  }
}

/// What a FleetRun told the operator.
final class FleetRunNotices: Sendable {
  private let lines = Mutex<[String]>([])
  var all: [String] { lines.withLock { $0 } }
  @Sendable func add(_ line: String) { lines.withLock { $0.append(line) } }
}
