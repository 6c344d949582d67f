// RunHistory: writes one run into the state database as it goes: the run's row when it starts,
// each `on` block's step results and host outcomes when the block ends, the end (exit status,
// signal, final outcomes) at `finish`. An EventSink next to the audit log, fed by `FleetRun`.
//
// Never in the run's way: when a write fails (a locked or broken database), `warning` is told
// once, what it would have written stays buffered, and no more writes are tried until `finish`,
// which tries once more with everything: a database held for a moment costs a run at most two
// busy waits and loses nothing, one that stays unusable loses the run's history (the audit log
// has it). What it stores passes the same redaction as the audit log, and output is capped.

import Foundation
import GRDB
import Synchronization

public final class RunHistory: EventSink {
  /// The most of a step's stdout, and of its stderr, kept per host (the rest is cut, and
  /// the cut said): history is for looking back, `--output-dir` for keeping everything.
  public static let outputCap = 16 << 10

  /// What is still to write.
  private struct Rows {
    var run: RunRow?
    /// The error that stopped the run.
    var error: String?
    var steps: [StepRow] = []
    var outcomes: [OutcomeRow] = []
    var blocks: [BlockRow] = []

    /// These rows, not written, before those buffered since.
    func followed(by later: Rows) -> Rows {
      Rows(
        run: run ?? later.run, error: later.error ?? error, steps: steps + later.steps,
        outcomes: outcomes + later.outcomes, blocks: blocks + later.blocks)
    }
  }

  private struct Pending {
    var rows = Rows()
    var blocks: [Int: BlockInfo] = [:]
    var sequence = 0
    var started = false
    /// A write failed: the rest waits for `finish`.
    var failed = false
    /// Writes tried (for tests).
    var attempts = 0
  }

  private let database: StateDatabase
  private let store: String
  private let runID: String
  private let arguments: [String]
  private let source: String?
  private let warning: @Sendable (String) -> Void
  /// The time steps and the run end at (a test fixes it).
  private let now: @Sendable () -> Date
  private let pending = Mutex(Pending())

  /// Records the run `runID` into `database`; `warning` hears why history stopped, once.
  public init(
    database: StateDatabase, store: Store, runID: String, arguments: [String], source: String?,
    warning: @escaping @Sendable (String) -> Void, now: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.database = database
    self.store = store.root
    self.runID = runID
    self.arguments = arguments.map(Secret.redactingHashes(in:))
    self.source = source.map(Secret.redactingHashes(in:))
    self.warning = warning
    self.now = now
  }

  public func emit(_ event: Event) {
    switch event {
    case .runStarted(let runbook, let check, let date, _):
      let row = RunRow(
        id: runID, runbook: Secret.redactingHashes(in: runbook), source: source, arguments: Self.json(arguments),
        store: store, user: Self.user, sudoUser: ProcessInfo.processInfo.environment["SUDO_USER"],
        checkMode: check, started: date)
      pending.withLock { state in
        state.rows.run = row
        state.started = true
      }
      flush()
    case .blockStarted(let info):
      pending.withLock { $0.blocks[info.id] = info }
    case .hostsJoined(let block, let hosts):
      pending.withLock { state in
        state.blocks[block]?.hosts += hosts
        state.blocks[block]?.hosts.sort { HostFolding.naturalLess($0.name, $1.name) }
      }
    case .stepFinished(let step, let host, let result):
      pending.withLock { state in
        state.sequence += 1
        state.rows.steps.append(StepRow(run: runID, sequence: state.sequence, step: step, host: host, result: result, finished: now()))
      }
    case .blockFinished(let id, let outcomes, let stopped):
      pending.withLock { state in
        state.rows.outcomes += outcomes.map { OutcomeRow(run: runID, outcome: $0) }
        if let info = state.blocks.removeValue(forKey: id) {
          state.rows.blocks.append(BlockRow(run: runID, info: info, outcomes: outcomes, stopped: stopped))
        }
      }
      flush()
    case .runFinished(let outcomes, _, let error, _, _):
      pending.withLock { state in
        state.rows.outcomes += outcomes.map { OutcomeRow(run: runID, outcome: $0) }
        state.rows.error = error.map(Secret.redactingHashes(in:))
      }
      flush()
    default:
      break
    }
  }

  /// Writes the end of the run: what is still buffered, the exit status and the signal; after
  /// a failed write, the one more try.
  public func finish(exitStatus: Int32, signal: StopSignal? = nil) {
    let (id, finished) = (runID, now())
    flush(final: true) { db in
      try db.execute(
        sql: "UPDATE run SET finished = ?, exit_status = ?, signal = ? WHERE id = ?",
        arguments: [finished, exitStatus, signal?.name, id])
    }
  }

  /// Writes the buffered rows (and `more`) in one transaction, unless a write failed earlier
  /// and this is not the `final` one; rows not written go back to the buffer. A host's outcome
  /// over the whole run is its worst over the blocks, so an outcome row replaces an earlier
  /// one only when it is worse.
  private func flush(final: Bool = false, _ more: @escaping (Database) throws -> Void = { _ in }) {
    let taken = pending.withLock { state -> Rows? in
      // Nothing is written for a run whose start was never seen.
      guard state.started, final || !state.failed else { return nil }
      state.attempts += 1
      defer { state.rows = Rows() }
      return state.rows
    }
    guard let taken else { return }
    let id = runID
    do {
      try database.write { db in
        try taken.run?.insert(db)
        for block in taken.blocks { try block.insert(db) }
        for step in taken.steps { try step.insert(db) }
        for outcome in taken.outcomes {
          try db.execute(
            sql: """
              INSERT INTO host_outcome (run_id, host, host_group, status, reason, message) VALUES (?, ?, ?, ?, ?, ?)
              ON CONFLICT (run_id, host) DO UPDATE SET status = excluded.status, reason = excluded.reason,
                message = excluded.message, host_group = excluded.host_group
              WHERE \(StepStatus.severitySQL("excluded.status")) > \(StepStatus.severitySQL("host_outcome.status"))
              """,
            arguments: [
              outcome.run, outcome.host, outcome.group, outcome.status, outcome.reason, outcome.message,
            ])
        }
        if let error = taken.error {
          try db.execute(sql: "UPDATE run SET error = ? WHERE id = ?", arguments: [error, id])
        }
        try more(db)
      }
    } catch {
      let first = pending.withLock { state in
        defer { state.failed = true }
        state.rows = taken.followed(by: state.rows)
        return !state.failed
      }
      if final {
        warning("run history not recorded: \(error); the audit log has the run")
      } else if first {
        warning("run history held back: \(error); it is written at the end of the run if it can be (the audit log has the run)")
      }
    }
  }

  /// How many writes were tried.
  var attempts: Int { pending.withLock { $0.attempts } }

  private static var user: String {
    getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? String(getuid())
  }

  static func json(_ list: [some Encodable]) -> String {
    (try? String(decoding: JSONEncoder().encode(list), as: UTF8.self)) ?? "[]"
  }

  /// `text` cut to `outputCap` bytes at a character boundary, with a note of how much went.
  static func capped(_ text: String) -> String {
    let utf8 = text.utf8
    guard utf8.count > outputCap else { return text }
    var end = utf8.index(utf8.startIndex, offsetBy: outputCap)
    while end > utf8.startIndex, end.samePosition(in: text.unicodeScalars) == nil { end = utf8.index(before: end) }
    return String(text[..<end]) + "\n[… \(utf8.count - utf8.distance(from: utf8.startIndex, to: end)) more bytes not kept]"
  }
}

// MARK: - Rows

struct RunRow: PersistableRecord, Sendable {
  static let databaseTableName = "run"
  var id: String
  var runbook: String
  var source: String?
  var arguments: String
  var store: String
  var user: String
  var sudoUser: String?
  var checkMode: Bool
  var started: Date

  func encode(to container: inout PersistenceContainer) {
    container["id"] = id
    container["runbook"] = runbook
    container["source"] = source
    container["arguments"] = arguments
    container["store"] = store
    container["user"] = user
    container["sudo_user"] = sudoUser
    container["check_mode"] = checkMode
    container["started"] = started
  }
}

struct StepRow: PersistableRecord, Sendable {
  static let databaseTableName = "step_result"
  var run: String
  var sequence: Int
  var block: Int
  var location: String
  var label: String
  var host: String
  var group: String
  var status: String
  var exitCode: Int32?
  var reason: String?
  var message: String?
  var duration: Double
  var output: String
  var stderr: String
  var finished: Date
  var tolerated: Bool

  init(run: String, sequence: Int, step: StepInfo, host: Host, result: StepResult, finished: Date) {
    self.run = run
    self.sequence = sequence
    block = step.block
    location = step.location
    label = Secret.redactingHashes(in: step.label)
    self.host = host.name.rawValue
    group = host.group.rawValue
    status = result.status.rawValue
    exitCode = result.exitCode
    reason = result.reason?.rawValue
    message = result.message.map(Secret.redactingHashes(in:))
    duration = Double(result.duration.components.seconds) + Double(result.duration.components.attoseconds) / 1e18
    output = RunHistory.capped(Secret.redactingHashes(in: result.output))
    stderr = RunHistory.capped(Secret.redactingHashes(in: result.errorOutput))
    self.finished = finished
    tolerated = step.tolerated
  }

  func encode(to container: inout PersistenceContainer) {
    container["run_id"] = run
    container["sequence"] = sequence
    container["block"] = block
    container["location"] = location
    container["label"] = label
    container["host"] = host
    container["host_group"] = group
    container["status"] = status
    container["exit_code"] = exitCode
    container["reason"] = reason
    container["message"] = message
    container["duration"] = duration
    container["output"] = output
    container["stderr"] = stderr
    container["finished"] = finished
    container["tolerated"] = tolerated
  }
}

struct BlockRow: PersistableRecord, Sendable {
  static let databaseTableName = "block"
  var run: String
  var block: Int
  var target: String
  var location: String
  var hosts: String
  var outcomes: String
  var stopped: Bool

  init(run: String, info: BlockInfo, outcomes: [HostOutcome], stopped: Bool) {
    self.run = run
    block = info.id
    target = Secret.redactingHashes(in: info.label)
    location = info.location
    hosts = RunHistory.json(info.hosts.map(\.name.rawValue))
    self.outcomes = RunHistory.json(outcomes.map(RecordedOutcome.init))
    self.stopped = stopped
  }

  func encode(to container: inout PersistenceContainer) {
    container["run_id"] = run
    container["block"] = block
    container["target"] = target
    container["location"] = location
    container["hosts"] = hosts
    container["outcomes"] = outcomes
    container["stopped"] = stopped
  }
}

struct OutcomeRow: Sendable {
  var run: String
  var host: String
  var group: String
  var status: String
  var reason: String?
  var message: String?

  init(run: String, outcome: HostOutcome) {
    self.run = run
    host = outcome.host.name.rawValue
    group = outcome.host.group.rawValue
    status = outcome.status.rawValue
    reason = outcome.reason?.rawValue
    message = outcome.message.map(Secret.redactingHashes(in:))
  }
}

extension StepStatus {
  /// A SQL expression giving the severity of the status word in `column` (worse is larger),
  /// the order `StepStatus` compares in.
  static func severitySQL(_ column: String) -> String {
    "CASE \(column) "
      + StepStatus.allCases.sorted().enumerated().map { "WHEN '\($1.rawValue)' THEN \($0)" }.joined(separator: " ")
      + " ELSE -1 END"
  }
}

extension RunHistory {
  /// Removes the runs that started before `date`, with their steps, blocks and outcomes
  /// (server.conf's `keep_history`); returns how many went.
  @discardableResult
  public static func prune(_ database: StateDatabase, startedBefore date: Date) throws(StateDatabaseError) -> Int {
    try database.write { db in
      try db.execute(sql: "DELETE FROM run WHERE started < ?", arguments: [date])
      return db.changesCount
    }
  }
}
