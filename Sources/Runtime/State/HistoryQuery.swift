// HistoryQuery: the run history read back (`cfi-sh log`, `:log`, `--limit @failed`): recent
// runs with their host counts, one run with its blocks and step results (and the events it
// emitted, replayed, so a renderer shows it as it showed it live), one host's history, and the
// last real run of a runbook.
//
// It changes no record: a missing database is "no history yet", never created here (opening
// an existing one from an older cfi-sh brings its schema up to date first). What it returns
// was redacted and capped when it was written (`RunHistory`).

import Foundation
import GRDB

/// Why the history cannot answer.
public enum HistoryError: Error, Sendable, CustomStringConvertible {
  /// The store has no state database yet, or one without runs.
  case noHistory(store: String)
  /// No run has this id (or id prefix).
  case unknownRun(String, store: String)
  /// Several runs start with this prefix (their short ids).
  case ambiguousRun(String, candidates: [String])
  /// The database cannot be read.
  case unusable(StateDatabaseError)

  public var description: String {
    switch self {
    case .noHistory(let store): "no runs recorded in \(store) yet"
    case .unknownRun(let reference, let store): "no run '\(reference)' in \(store)'s history ('cfi-sh log' lists the runs)"
    case .ambiguousRun(let reference, let candidates):
      "run id '\(reference)' is ambiguous: \(candidates.joined(separator: ", "))\(candidates.count == HistoryQuery.candidatesShown ? ", …" : "")"
    case .unusable(let error): "cannot read the run history: \(error)"
    }
  }
}

/// One run as the history has it.
public struct RecordedRun: Sendable, Hashable {
  public var id: String
  /// The shortest prefix of `id` (8 characters at least) that no other run of the store shares.
  public var shortID: String
  /// The runbook's path, or `<command line>`, `<stdin>`.
  public var runbook: String
  /// The runbook's text as it ran (its main file, or the text of one without a file).
  public var source: String?
  public var arguments: [String]
  public var user: String
  public var sudoUser: String?
  public var check: Bool
  public var started: Date
  /// Nil while it runs, or when it was killed outright.
  public var finished: Date?
  public var exitStatus: Int32?
  /// What stopped it from outside (`SIGTERM`, …).
  public var signal: String?
  /// The error that stopped it on the server.
  public var error: String?
  /// How many hosts ended the run with each status.
  public var hostCounts: [StepStatus: Int]
}

/// One host's result of one step.
public struct RecordedStep: Sendable, Hashable {
  public var step: StepInfo
  public var host: Host
  public var result: StepResult
  public var finished: Date
}

/// One `on` block: its target and hosts, and how each host ended it.
public struct RecordedBlock: Sendable, Hashable {
  public var info: BlockInfo
  public var outcomes: [HostOutcome]
  /// `max_fail` stopped it.
  public var stopped: Bool
}

/// One run in full.
public struct RunDetail: Sendable {
  public var run: RecordedRun
  /// In run order; a block the history has no row of (written before blocks were kept, or
  /// cut short by a kill) is made up from its steps, its target unknown.
  public var blocks: [RecordedBlock]
  /// Every host's result of every step, in the order they came.
  public var steps: [RecordedStep]
  /// Per host, its worst status over the run.
  public var outcomes: [HostOutcome]

  /// The run's events as it emitted them, as far as the history keeps them (no `step_started`,
  /// no `print`): a renderer given these shows the run as it was shown live.
  public var events: [Event] {
    var events: [Event] = [.runStarted(runbook: run.runbook, check: run.check, date: run.started, run: run.id)]
    for block in blocks {
      events.append(.blockStarted(block.info))
      if block.info.hosts.isEmpty {
        events.append(.noHosts(block: block.info.id, target: block.info.label, location: block.info.location))
      }
      for step in steps where step.step.block == block.info.id {
        events.append(.stepFinished(step.step, host: step.host, result: step.result))
      }
      for outcome in block.outcomes { events.append(.hostFinished(block: block.info.id, outcome)) }
      events.append(.blockFinished(id: block.info.id, outcomes: block.outcomes, stopped: block.stopped))
    }
    events.append(
      .runFinished(
        outcomes: outcomes, interrupted: run.signal != nil || outcomes.contains { $0.status == .interrupted }, error: run.error,
        exitStatus: run.exitStatus, run: run.id))
    return events
  }
}

/// One run as one host lived it.
public struct HostRun: Sendable {
  public var run: RecordedRun
  /// The host's worst status over the run; nil when it has none (the run was killed).
  public var outcome: HostOutcome?
  /// The host's step results, in order.
  public var steps: [RecordedStep]
}

/// A host's end of a block, as `block.outcomes` keeps it (JSON).
struct RecordedOutcome: Codable, Sendable {
  var host: String
  var group: String
  var status: String
  var reason: String?
  var message: String?

  init(_ outcome: HostOutcome) {
    host = outcome.host.name.rawValue
    group = outcome.host.group.rawValue
    status = outcome.status.rawValue
    reason = outcome.reason?.rawValue
    message = outcome.message.map(Secret.redactingHashes(in:))
  }

  var outcome: HostOutcome? {
    guard let name = HostName(host) else { return nil }
    return HostOutcome(
      host: Host(name: name, group: GroupName(group) ?? .unknown), status: StepStatus(rawValue: status) ?? .failed,
      message: message, reason: reason.flatMap(UnreachableReason.init(rawValue:)))
  }
}

/// Reads one store's run history.
public struct HistoryQuery: Sendable {
  public let database: StateDatabase
  /// The store's root, for messages.
  public let store: String

  /// The most candidates an ambiguous prefix lists.
  static let candidatesShown = 5
  /// The shortest short id.
  static let shortIDLength = 8

  public init(database: StateDatabase, store: String) {
    self.database = database
    self.store = store
  }

  /// The history of `store`; `noHistory` when it has no state database yet (none is created).
  public static func open(store: Store) throws(HistoryError) -> HistoryQuery {
    let path = StateDatabase.path(store: store)
    guard FileManager.default.fileExists(atPath: path) else { throw .noHistory(store: store.root) }
    do { return HistoryQuery(database: try StateDatabase(path: path), store: store.root) } catch { throw .unusable(error) }
  }

  /// The `count` newest runs, newest first.
  public func recentRuns(count: Int) throws(HistoryError) -> [RecordedRun] {
    try read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM run ORDER BY started DESC, rowid DESC LIMIT ?", arguments: [count])
        .map { try Self.run($0, db) }
    }
  }

  /// The full id `reference` names: `last` (the newest run), a full id, or a unique prefix.
  public func runID(_ reference: String) throws(HistoryError) -> String {
    let store = store
    let found: [String] = try read { db in
      if reference == "last" {
        return try String.fetchAll(db, sql: "SELECT id FROM run ORDER BY started DESC, rowid DESC LIMIT 1")
      }
      // Ids are lower-case hex and dashes: a prefix is a range of the primary key.
      let prefix = reference.lowercased()
      guard !prefix.isEmpty, prefix.allSatisfy({ $0.isHexDigit || $0 == "-" }) else { return [] }
      return try String.fetchAll(
        db, sql: "SELECT id FROM run WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
        arguments: [prefix, prefix + "~", Self.candidatesShown])
    }
    if found.count == 1 { return found[0] }
    if found.isEmpty {
      let runs = try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM run") ?? 0 }
      if runs == 0 { throw .noHistory(store: store) }
      throw .unknownRun(reference, store: store)
    }
    let short = try read { db in try found.map { try Self.shortID($0, db) } }
    throw .ambiguousRun(reference, candidates: short)
  }

  /// The run `reference` names (as `runID` reads it), in full.
  public func run(_ reference: String) throws(HistoryError) -> RunDetail {
    let id = try runID(reference)
    let detail: RunDetail? = try read { db in
      guard let row = try Row.fetchOne(db, sql: "SELECT * FROM run WHERE id = ?", arguments: [id]) else { return nil }
      let run = try Self.run(row, db)
      let steps = try Self.steps(db, sql: "SELECT * FROM step_result WHERE run_id = ? ORDER BY sequence", [id])
      let outcomes = try Row.fetchAll(
        db, sql: "SELECT * FROM host_outcome WHERE run_id = ?", arguments: [id]
      ).compactMap(Self.outcome).sorted { HostFolding.naturalLess($0.host.name, $1.host.name) }
      var blocks: [Int: RecordedBlock] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT * FROM block WHERE run_id = ?", arguments: [id]) {
        let names: [String] = Self.decode(row["hosts"]) ?? []
        let recorded: [RecordedOutcome] = Self.decode(row["outcomes"]) ?? []
        let ended = recorded.compactMap(\.outcome)
        let groups = Dictionary(ended.map { ($0.host.name, $0.host.group) }, uniquingKeysWith: { first, _ in first })
        let hosts = names.compactMap(HostName.init).map { Host(name: $0, group: groups[$0] ?? .unknown) }
        let info = BlockInfo(id: row["block"], label: row["target"], location: row["location"], hosts: hosts)
        blocks[info.id] = RecordedBlock(info: info, outcomes: ended, stopped: row["stopped"])
      }
      // Blocks without a row: made up from their steps.
      for step in steps where blocks[step.step.block] == nil {
        let id = step.step.block
        let hosts = steps.filter { $0.step.block == id }.map(\.host)
        var seen: Set<HostName> = []
        let info = BlockInfo(
          id: id, label: "block \(id) (target not recorded)", location: step.step.location,
          hosts: hosts.filter { seen.insert($0.name).inserted })
        blocks[id] = RecordedBlock(info: info, outcomes: [], stopped: false)
      }
      return RunDetail(run: run, blocks: blocks.values.sorted { $0.info.id < $1.info.id }, steps: steps, outcomes: outcomes)
    }
    guard let detail else { throw .unknownRun(reference, store: store) }
    return detail
  }

  /// The runs that reached (or tried to reach) `host`, newest first, at most `count`.
  public func host(_ host: HostName, runs count: Int) throws(HistoryError) -> [HostRun] {
    try read { db in
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT * FROM run WHERE id IN (
            SELECT run_id FROM host_outcome WHERE host = ?1 UNION SELECT run_id FROM step_result WHERE host = ?1)
          ORDER BY started DESC, rowid DESC LIMIT ?2
          """,
        arguments: [host.rawValue, count])
      return try rows.map { row in
        let run = try Self.run(row, db)
        let outcome = try Row.fetchOne(
          db, sql: "SELECT * FROM host_outcome WHERE run_id = ? AND host = ?", arguments: [run.id, host.rawValue]
        ).flatMap(Self.outcome)
        let steps = try Self.steps(
          db, sql: "SELECT * FROM step_result WHERE run_id = ? AND host = ? ORDER BY sequence", [run.id, host.rawValue])
        return HostRun(run: run, outcome: outcome, steps: steps)
      }
    }
  }

  /// What `--limit @failed` (and `@unreachable`, `@changed`) reads: per host, its result in
  /// the latest real (not `--check`), finished run of `runbook` (its path, or `<command
  /// line>` whose text is `source`) that it took part in; nil when the history has no such
  /// run. Per host, not per run: a later run that left a host out (a `--limit`, a delivery to
  /// another host that was off) leaves that host's result as it was, so `@failed` after
  /// `cfi-sh watch` delivered to some hosts still names the hosts that failed the runbook
  /// wherever it last ran. A host `skipped` in a run (never started) keeps its earlier result.
  public func lastRealRun(runbook: String, source: String? = nil) throws(HistoryError) -> LastRun? {
    try read { db in
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT o.host, o.status, r.finished FROM host_outcome o JOIN run r ON r.id = o.run_id
          WHERE r.runbook = ? AND (?2 IS NULL OR r.source = ?2) AND NOT r.check_mode AND r.finished IS NOT NULL
            AND o.status != 'skipped'
          ORDER BY r.started, r.rowid
          """,
        // Stored as written: hashes redacted.
        arguments: [Secret.redactingHashes(in: runbook), source.map(Secret.redactingHashes(in:))])
      guard let finished = rows.last.map({ $0["finished"] as Date }) else { return nil }
      var statuses: [HostName: String] = [:]
      for row in rows {
        if let name = HostName(row["host"] as String) { statuses[name] = row["status"] }
      }
      return LastRun(statuses: statuses, finished: ISO8601DateFormatter().string(from: finished))
    }
  }

  // MARK: - Rows

  private func read<T>(_ work: (Database) throws -> T) throws(HistoryError) -> T {
    do { return try database.read(work) } catch { throw .unusable(error) }
  }

  private static func run(_ row: Row, _ db: Database) throws -> RecordedRun {
    let id: String = row["id"]
    var counts: [StepStatus: Int] = [:]
    for count in try Row.fetchAll(
      db, sql: "SELECT status, count(*) AS n FROM host_outcome WHERE run_id = ? GROUP BY status", arguments: [id])
    {
      if let status = StepStatus(rawValue: count["status"]) { counts[status] = count["n"] }
    }
    return RecordedRun(
      id: id, shortID: try shortID(id, db), runbook: row["runbook"], source: row["source"],
      arguments: decode(row["arguments"]) ?? [], user: row["user"], sudoUser: row["sudo_user"], check: row["check_mode"],
      started: row["started"], finished: row["finished"], exitStatus: row["exit_status"], signal: row["signal"],
      error: row["error"], hostCounts: counts)
  }

  /// The shortest prefix of `id`, `shortIDLength` at least, that its neighbours in id order
  /// do not share (as git shortens commit ids).
  static func shortID(_ id: String, _ db: Database) throws -> String {
    let neighbours = [
      try String.fetchOne(db, sql: "SELECT max(id) FROM run WHERE id < ?", arguments: [id]),
      try String.fetchOne(db, sql: "SELECT min(id) FROM run WHERE id > ?", arguments: [id]),
    ].compactMap { $0 }
    let shared = neighbours.map { zip($0, id).prefix { $0 == $1 }.count }.max() ?? 0
    return String(id.prefix(max(shortIDLength, shared + 1)))
  }

  private static func steps(_ db: Database, sql: String, _ arguments: StatementArguments) throws -> [RecordedStep] {
    try Row.fetchAll(db, sql: sql, arguments: arguments).compactMap { row in
      guard let name = HostName(row["host"] as String) else { return nil }
      let result = StepResult(
        status: StepStatus(rawValue: row["status"]) ?? .failed, exitCode: row["exit_code"], output: row["output"],
        errorOutput: row["stderr"], message: row["message"],
        reason: (row["reason"] as String?).flatMap(UnreachableReason.init(rawValue:)),
        duration: .seconds(row["duration"] as Double))
      return RecordedStep(
        step: StepInfo(block: row["block"], location: row["location"], label: row["label"], tolerated: row["tolerated"]),
        host: Host(name: name, group: GroupName(row["host_group"] as String) ?? .unknown), result: result,
        finished: row["finished"])
    }
  }

  private static func outcome(_ row: Row) -> HostOutcome? {
    guard let name = HostName(row["host"] as String) else { return nil }
    return HostOutcome(
      host: Host(name: name, group: GroupName(row["host_group"] as String) ?? .unknown),
      status: StepStatus(rawValue: row["status"]) ?? .failed, message: row["message"],
      reason: (row["reason"] as String?).flatMap(UnreachableReason.init(rawValue:)))
  }

  private static func decode<T: Decodable>(_ text: String?) -> T? {
    text.flatMap { try? JSONDecoder().decode(T.self, from: Data($0.utf8)) }
  }
}
