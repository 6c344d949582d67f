// Deliveries: what a run owes to the hosts that were off when it ran. A run that delivers
// (`cfi-sh deliver`, `--deliver`, `set deliver = until_done`) records, for each targeted host
// it found unreachable, a pending delivery: the runbook as it ran (its files' texts, its
// arguments, the command-line options that shape a run), to be run again for that host alone
// when it comes back (`cfi-sh watch`). The store's files are not frozen: a delivery pushes
// the group tree as it is when it is delivered.
//
// The life of a delivery:
//   pending ──claim──▶ running ──settle──▶ done                (the host ok or changed)
//      ▲                  │                                    (unreachable, failed or
//      └──────────────────┘ settle: pending again, reason kept   interrupted: tried again)
//   pending ──▶ expired (past its expiry)    pending ──▶ cancelled (`deliveries cancel`)
// A claim is one UPDATE that succeeds for one process only, so two watchers (or a watcher
// restarted while a delivery ran) never run a delivery twice. A claim names its process by
// pid and boot id (a pid is reused, after a reboot even by the next watcher): one whose
// process died, or was of another boot, is released by the next `recoverAbandoned`, and a
// process settles only its own claims. A delivery that is done stays done.
//
// The runbook's texts are kept as they are, hashes included (a delivery must be able to set
// that password), in the database only, which is owner-only; run history never holds them.
// Once no delivery of a recording run is open (all done, expired or cancelled), its texts
// are redacted too, in the transaction that closed the last one.

import Foundation
import GRDB

/// The state of one delivery.
public enum DeliveryState: String, Codable, Sendable, CaseIterable {
  case pending, running, done, expired, cancelled
}

/// A runbook as it ran, to run again later: every file it loaded (the main one first, then
/// its includes, each under the name the loader gave it), its arguments, and the options of
/// the command line that shape a run (`--timeout 5m`, …), as words.
public struct DeliveryRunbook: Codable, Hashable, Sendable {
  public struct File: Codable, Hashable, Sendable {
    public var name: String
    public var text: String

    public init(name: String, text: String) {
      self.name = name
      self.text = text
    }
  }

  /// The runbook's name: its path, or `<command line>`, `<stdin>`.
  public var name: String
  public var files: [File]
  public var arguments: [String]
  public var options: [String]

  public init(name: String, files: [File], arguments: [String], options: [String]) {
    self.name = name
    self.files = files
    self.arguments = arguments
    self.options = options
  }
}

/// One delivery: one runbook owed to one host.
public struct Delivery: Hashable, Sendable, Identifiable {
  public var id: Int64
  public var host: HostName
  /// The run that recorded it (the run whose targets it was unreachable in).
  public var origin: String
  public var runbook: String
  public var created: Date
  public var expires: Date?
  public var state: DeliveryState
  public var attempts: Int
  public var lastAttempt: Date?
  /// How the last attempt ended for the host: `unreachable`, `failed`, `interrupted`, …
  public var lastStatus: String?
  /// Why (the unreachable reason, the failure's message).
  public var lastReason: String?
  /// The run of the last attempt (the one that delivered it, when done).
  public var lastRun: String?
  /// When it left `pending` for good (done, expired, cancelled).
  public var finished: Date?

  /// The word shown for it: `failed` for a pending delivery whose last attempt failed on
  /// the host (it is tried again), else its state.
  public var displayState: String {
    state == .pending && lastStatus == StepStatus.failed.rawValue ? "failed" : state.rawValue
  }
}

/// How one attempt ended for one host.
public struct DeliveryAttempt: Sendable {
  /// The host's outcome in the delivery's run; nil when the run gave none for it (the
  /// runbook no longer targets it, or the run could not start).
  public var status: StepStatus?
  public var reason: String?
  /// The delivery's run.
  public var run: String?

  public init(status: StepStatus?, reason: String? = nil, run: String? = nil) {
    self.status = status
    self.reason = reason
    self.run = run
  }
}

/// Who holds a claim: a process, by its pid and the boot it runs in.
public struct DeliveryClaimer: Hashable, Sendable {
  public var pid: Int32
  /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`); nil in a claim made before
  /// claims named it (that claim is judged by its pid alone).
  public var boot: String?

  public init(pid: Int32, boot: String?) {
    self.pid = pid
    self.boot = boot
  }

  /// This process.
  public static let current = DeliveryClaimer(pid: getpid(), boot: currentBoot)

  /// This boot's id; empty when it cannot be read (every claim then is of this boot).
  static let currentBoot: String = {
    let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
  }()

  /// Whether the claim of `holder` still has a live process behind it, as this claimer sees
  /// it; `starting`: this claimer has made no claim yet (one in its name is a dead one's).
  func deemsLive(_ holder: DeliveryClaimer, starting: Bool, alive: (Int32) -> Bool) -> Bool {
    if let boot = holder.boot, boot != self.boot { return false }
    if starting && holder.pid == pid { return false }
    return alive(holder.pid)
  }
}

/// The deliveries of one store.
public struct Deliveries: Sendable {
  public let database: StateDatabase

  public init(database: StateDatabase) {
    self.database = database
  }

  // MARK: Recording

  /// Records `runbook` as owed to each of `hosts` by the run `origin`; returns the ids made.
  /// A host that already has a pending delivery of the same runbook (same texts, arguments
  /// and options) gets no second one: the next delivery brings the host up to date once.
  @discardableResult
  public func record(
    _ runbook: DeliveryRunbook, hosts: [HostName], origin: String, expires: Date?, at date: Date = Date()
  ) throws(StateDatabaseError) -> [Int64] {
    guard !hosts.isEmpty else { return [] }
    let encoded: String
    do { encoded = try Self.encode(runbook) } catch { throw StateDatabaseError(path: database.path, error) }
    return try database.write { db in
      var owed: [HostName] = []
      for host in hosts where !owed.contains(host) {
        let duplicate = try Int64.fetchOne(
          db,
          sql: """
            SELECT d.id FROM delivery d JOIN delivery_runbook r ON r.origin_run = d.origin_run
            WHERE d.host = ? AND d.state IN ('pending', 'running') AND r.content = ?
            """, arguments: [host.rawValue, encoded])
        if duplicate == nil { owed.append(host) }
      }
      // No row for a runbook owed to no one: it would keep its texts for nothing.
      guard !owed.isEmpty else { return [] }
      try db.execute(
        sql: "INSERT OR IGNORE INTO delivery_runbook (origin_run, runbook, content) VALUES (?, ?, ?)",
        arguments: [origin, runbook.name, encoded])
      var ids: [Int64] = []
      for host in owed {
        try db.execute(
          sql: "INSERT INTO delivery (origin_run, host, created, expires, state) VALUES (?, ?, ?, ?, 'pending')",
          arguments: [origin, host.rawValue, date, expires])
        ids.append(db.lastInsertedRowID)
      }
      return ids
    }
  }

  // MARK: Reading

  /// Deliveries, oldest first: those in `states` (all when empty), of `host` when given.
  public func list(states: Set<DeliveryState> = [], host: HostName? = nil) throws(StateDatabaseError) -> [Delivery] {
    try database.read { db in
      var conditions: [String] = []
      var arguments: StatementArguments = []
      if !states.isEmpty {
        conditions.append("d.state IN (\(states.map { _ in "?" }.joined(separator: ", ")))")
        for state in states.sorted(by: { $0.rawValue < $1.rawValue }) { arguments += [state.rawValue] }
      }
      if let host {
        conditions.append("d.host = ?")
        arguments += [host.rawValue]
      }
      let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
      return try Row.fetchAll(db, sql: Self.select + " \(filter) ORDER BY d.id", arguments: arguments).compactMap(Self.delivery)
    }
  }

  /// The runbook a delivery runs.
  public func runbook(of delivery: Delivery) throws(StateDatabaseError) -> DeliveryRunbook {
    let content = try database.read { db in
      try String.fetchOne(db, sql: "SELECT content FROM delivery_runbook WHERE origin_run = ?", arguments: [delivery.origin])
    }
    guard let content, let runbook = try? JSONDecoder().decode(DeliveryRunbook.self, from: Data(content.utf8)) else {
      throw StateDatabaseError(path: database.path, reason: "delivery \(delivery.id): its runbook is missing or unreadable")
    }
    return runbook
  }

  // MARK: Changing

  /// Marks the pending deliveries past their expiry `expired`; returns them.
  @discardableResult
  public func expire(at date: Date = Date()) throws(StateDatabaseError) -> [Delivery] {
    try database.write { db in
      let due = try Row.fetchAll(
        db, sql: Self.select + " WHERE d.state = 'pending' AND d.expires IS NOT NULL AND d.expires <= ? ORDER BY d.id",
        arguments: [date]
      ).compactMap(Self.delivery)
      for delivery in due {
        try db.execute(
          sql: "UPDATE delivery SET state = 'expired', finished = ? WHERE id = ? AND state = 'pending'",
          arguments: [date, delivery.id])
      }
      for origin in Set(due.map(\.origin)) { try Self.redactIfClosed(origin, db) }
      return due.map { var expired = $0; expired.state = .expired; expired.finished = date; return expired }
    }
  }

  /// Takes the pending deliveries `ids` for `claimer` (this process): the ones it got, which
  /// no other process can take until they are settled or the claimer is gone.
  public func claim(_ ids: [Int64], by claimer: DeliveryClaimer = .current, at date: Date = Date()) throws(StateDatabaseError)
    -> [Int64]
  {
    try database.write { db in
      var claimed: [Int64] = []
      for id in ids {
        try db.execute(
          sql: """
            UPDATE delivery SET state = 'running', claimed_by = ?, claimed_boot = ?, claimed_at = ?
            WHERE id = ? AND state = 'pending' AND (expires IS NULL OR expires > ?)
            """, arguments: [claimer.pid, claimer.boot, date, id, date])
        if db.changesCount == 1 { claimed.append(id) }
      }
      return claimed
    }
  }

  /// Records how an attempt at the delivery `id`, claimed by `claimer`, ended: `done` when
  /// the host was ok or changed, else pending again with the status and reason kept. Returns
  /// false, changing nothing, when the claim is no longer the claimer's (taken back as
  /// abandoned, perhaps claimed by another process since: its result is not overwritten).
  @discardableResult
  public func settle(_ id: Int64, _ attempt: DeliveryAttempt, by claimer: DeliveryClaimer = .current, at date: Date = Date())
    throws(StateDatabaseError) -> Bool
  {
    let done = attempt.status == .ok || attempt.status == .changed
    let reason = attempt.reason.map(Secret.redactingHashes(in:))
    return try database.write { db in
      try db.execute(
        sql: """
          UPDATE delivery SET state = ?, attempts = attempts + 1, last_attempt = ?, last_status = ?,
            last_reason = ?, last_run = ?, finished = ?, claimed_by = NULL, claimed_boot = NULL, claimed_at = NULL
          WHERE id = ? AND state = 'running' AND claimed_by = ? AND claimed_boot IS ?
          """,
        arguments: [
          done ? "done" : "pending", date, attempt.status?.rawValue ?? "not_run", reason, attempt.run, done ? date : nil, id,
          claimer.pid, claimer.boot,
        ])
      guard db.changesCount == 1 else { return false }
      if done, let origin = try String.fetchOne(db, sql: "SELECT origin_run FROM delivery WHERE id = ?", arguments: [id]) {
        try Self.redactIfClosed(origin, db)
      }
      return true
    }
  }

  /// Gives back the claims whose process is gone (killed while delivering), as `claimer`
  /// sees them: its pid not running, or the claim made in another boot (the pid may be
  /// another process's now). `starting`: the claimer is a watcher that has made no claim
  /// yet, so one in its own name (its pid and boot) is a dead process's too. Their
  /// deliveries are pending again. Returns how many.
  @discardableResult
  public func recoverAbandoned(
    by claimer: DeliveryClaimer = .current, starting: Bool = false, alive: (Int32) -> Bool = Deliveries.processAlive
  ) throws(StateDatabaseError) -> Int {
    try database.write { db in
      let claims = try Row.fetchAll(db, sql: "SELECT id, claimed_by, claimed_boot FROM delivery WHERE state = 'running'")
      var count = 0
      for claim in claims {
        let holder = (claim["claimed_by"] as Int32?).map { DeliveryClaimer(pid: $0, boot: claim["claimed_boot"]) }
        if let holder, claimer.deemsLive(holder, starting: starting, alive: alive) { continue }
        try db.execute(
          sql: "UPDATE delivery SET state = 'pending', claimed_by = NULL, claimed_boot = NULL, claimed_at = NULL WHERE id = ?",
          arguments: [claim["id"] as Int64])
        count += 1
      }
      return count
    }
  }

  /// Cancels the pending delivery `id`; returns it, or nil when there is no such delivery.
  /// Throws when it is not pending (done, running, expired or already cancelled).
  public func cancel(_ id: Int64, at date: Date = Date()) throws(StateDatabaseError) -> Delivery? {
    try database.write { db in
      guard let delivery = try Row.fetchOne(db, sql: Self.select + " WHERE d.id = ?", arguments: [id]).flatMap(Self.delivery)
      else { return nil }
      guard delivery.state == .pending else {
        throw StateDatabaseError(path: database.path, reason: "delivery \(id) is \(delivery.state.rawValue), not pending")
      }
      try db.execute(sql: "UPDATE delivery SET state = 'cancelled', finished = ? WHERE id = ?", arguments: [date, id])
      try Self.redactIfClosed(delivery.origin, db)
      var cancelled = delivery
      cancelled.state = .cancelled
      cancelled.finished = date
      return cancelled
    }
  }

  /// Whether process `pid` runs (a claim of a live process is never taken away).
  public static func processAlive(_ pid: Int32) -> Bool {
    kill(pid, 0) == 0 || errno == EPERM
  }

  /// Once no delivery of the recording run `origin` is open, its runbook's texts and
  /// arguments lose their hashes: nothing will run them any more.
  private static func redactIfClosed(_ origin: String, _ db: Database) throws {
    let open = try Bool.fetchOne(
      db, sql: "SELECT EXISTS (SELECT 1 FROM delivery WHERE origin_run = ? AND state IN ('pending', 'running'))",
      arguments: [origin])
    guard open == false,
      let content = try String.fetchOne(db, sql: "SELECT content FROM delivery_runbook WHERE origin_run = ?", arguments: [origin]),
      var runbook = try? JSONDecoder().decode(DeliveryRunbook.self, from: Data(content.utf8))
    else { return }
    runbook.files = runbook.files.map { .init(name: $0.name, text: Secret.redactingHashes(in: $0.text)) }
    runbook.arguments = runbook.arguments.map(Secret.redactingHashes(in:))
    let redacted = try encode(runbook)
    guard redacted != content else { return }
    try db.execute(sql: "UPDATE delivery_runbook SET content = ? WHERE origin_run = ?", arguments: [redacted, origin])
  }

  // MARK: Rows

  private static let select = """
    SELECT d.id, d.host, d.origin_run, r.runbook, d.created, d.expires, d.state, d.attempts, d.last_attempt,
      d.last_status, d.last_reason, d.last_run, d.finished
    FROM delivery d JOIN delivery_runbook r ON r.origin_run = d.origin_run
    """

  private static func delivery(_ row: Row) -> Delivery? {
    guard let host = HostName(row["host"] as String), let state = DeliveryState(rawValue: row["state"]) else { return nil }
    return Delivery(
      id: row["id"], host: host, origin: row["origin_run"], runbook: row["runbook"], created: row["created"],
      expires: row["expires"], state: state, attempts: row["attempts"], lastAttempt: row["last_attempt"],
      lastStatus: row["last_status"], lastReason: row["last_reason"], lastRun: row["last_run"], finished: row["finished"])
  }

  private static func encode(_ runbook: DeliveryRunbook) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(runbook), as: UTF8.self)
  }
}
