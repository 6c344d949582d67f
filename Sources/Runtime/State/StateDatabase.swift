// The state database: what cfi-sh must be able to query about a store (its run history, the
// hosts it knows and the announcements waiting for the admin, the deliveries still owed to
// hosts that were off) in one SQLite file, `STORE/.cfi/state.sqlite`, through GRDB.
//
// It is never in a run's way. Opening it may fail (a corrupted file, a disk full, a file
// another process holds locked): the caller is told why and goes on without it, with the
// JSONL audit log as the record. WAL mode, so that a reader (`cfi-sh log` during a run) never
// waits for a writer and two runs' writes queue for a few milliseconds each. The file and its
// WAL are owner-only (0600): history holds commands' output.

import Foundation
import GRDB
import Synchronization

/// Why the state database cannot be used.
public struct StateDatabaseError: Error, Sendable, CustomStringConvertible {
  public var path: String
  public var reason: String

  public init(path: String, reason: String) {
    self.path = path
    self.reason = reason
  }

  public init(path: String, _ error: any Error) {
    self.init(path: path, reason: StateDatabaseError.reason(of: error))
  }

  public var description: String { "the state database '\(path)': \(reason)" }

  /// SQLite's message without GRDB's decoration (the statement, the arguments).
  static func reason(of error: any Error) -> String {
    // One thrown from inside a transaction (a refusal of the queue's) is already ours.
    if let error = error as? StateDatabaseError { return error.reason }
    if let error = error as? DatabaseError {
      return error.message ?? "\(error.resultCode)"
    }
    return (error as? any LocalizedError)?.errorDescription ?? "\(error)"
  }
}

/// One store's state database: open it once per process, share it (it is thread-safe).
public final class StateDatabase: Sendable {
  /// The file.
  public let path: String
  /// The connections: one writer, readers beside it (WAL).
  let pool: DatabasePool
  /// What opening it did that the admin must hear, once: the hosts it imported from the JSON
  /// files an older cfi-sh kept beside it (`known-clients.json`, `pending-hosts.json`), renamed
  /// since. An opener that says them itself takes them here; those it does not take are told
  /// to `notify` when the database is first used, so that whatever command opens a store's
  /// database first (a run, `hosts`, `log`, `deliveries`, `watch`), the admin hears of it.
  public var notes: [String] { untold.withLock { notes in defer { notes = [] }; return notes } }
  private let untold: Mutex<[String]>
  private let notify: @Sendable (String) -> Void

  /// How long a write waits for another process's write before it fails (and the caller goes
  /// on without the database), by default: long enough for two runs ending together, short
  /// enough that a database held locked by hand costs a run seconds, not minutes.
  public static let busyTimeout: TimeInterval = 3

  /// How many busy timeouts an open waits for another process bringing the schema up to date.
  static let migrationWaits: Double = 3

  /// Says a note on stderr, as cfi-sh says its warnings.
  public static let standardError: @Sendable (String) -> Void = { note in
    FileHandle.standardError.write(Data("cfi-sh: \(note)\n".utf8))
  }

  /// Where a store keeps its state database.
  public static func path(store: Store) -> String { store.root + "/.cfi/state.sqlite" }

  /// Opens (creating it, owner-only, and bringing its schema up to date) the database of `store`.
  public convenience init(
    store: Store, busyTimeout: TimeInterval = StateDatabase.busyTimeout,
    notify: @escaping @Sendable (String) -> Void = StateDatabase.standardError
  ) throws(StateDatabaseError) {
    try self.init(path: Self.path(store: store), busyTimeout: busyTimeout, notify: notify)
  }

  /// Opens the database at `path`, creating it and its directory (0700) when missing;
  /// `upTo`: apply the migrations only as far as that one (for tests of later migrations);
  /// `busyTimeout`: how long a write waits for another process's; `notify`: who hears the
  /// `notes` the opener does not take. The JSON files of hosts beside it are imported by the
  /// migration that made their tables.
  public init(
    path: String, upTo lastMigration: String? = nil, busyTimeout: TimeInterval = StateDatabase.busyTimeout,
    notify: @escaping @Sendable (String) -> Void = StateDatabase.standardError
  ) throws(StateDatabaseError) {
    self.path = path
    self.notify = notify
    let legacy = LegacyHostFiles(directory: (path as NSString).deletingLastPathComponent)
    do {
      try Self.createOwnerOnly(path)
      var configuration = Configuration()
      configuration.busyMode = .timeout(busyTimeout)
      configuration.label = "cfi-state"
      configuration.prepareDatabase { db in
        // A crash loses at most the last transactions, never the file (WAL + NORMAL).
        try db.execute(sql: "PRAGMA synchronous = NORMAL")
      }
      pool = try DatabasePool(path: path, configuration: configuration)
      let migrator = StateSchema.migrator(importing: legacy)
      if try lastMigration != nil || !pool.read(migrator.hasCompletedMigrations) {
        // Two processes opening a new (or older) database at once would both see a migration
        // missing and both apply it: the second fails ("table run already exists"). The one
        // that waits for the lock finds the migrations applied. A process stuck holding it
        // (a migration never ends) costs the others a few busy timeouts, then their history.
        let lock = try Self.lock(path + ".migrating", within: busyTimeout * Self.migrationWaits)
        if let lastMigration {
          try migrator.migrate(pool, upTo: lastMigration)
        } else {
          try migrator.migrate(pool)
        }
        lock.unlock()
      }
    } catch {
      // A migration that committed before a later one failed has imported (and renamed) its
      // files all the same.
      legacy.notes.forEach(notify)
      throw error as? StateDatabaseError ?? StateDatabaseError(path: path, error)
    }
    untold = Mutex(legacy.notes)
  }

  /// Takes the lock at `path`, trying again until `limit` seconds passed.
  private static func lock(_ path: String, within limit: TimeInterval) throws(StateDatabaseError) -> LockFile {
    let deadline = Date(timeIntervalSinceNow: limit)
    while true {
      do { return try LockFile(path: path, wait: false) } catch .busy where Date() < deadline {
        usleep(10_000)
      } catch .busy {
        throw StateDatabaseError(
          path: (path as NSString).deletingPathExtension,
          reason: "another process has been bringing its schema up to date for more than \(String(format: "%g", limit)) s "
            + "(it holds \(path)); it is left alone")
      } catch {
        throw StateDatabaseError(path: (path as NSString).deletingPathExtension, reason: error.description)
      }
    }
  }

  /// Creates the file (and its directory) owner-only, so that SQLite, which gives its WAL
  /// and shared-memory files the database's mode, never makes them readable by others.
  /// An existing file is left unopened: closing a descriptor of it would drop every POSIX
  /// lock this process holds on it, those of its other connections too (a second database
  /// of the same store in one process, as `cfi-sh watch` and its runs have), and another
  /// process could then take itself for the last one and checkpoint the WAL away under them.
  private static func createOwnerOnly(_ path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    if !FileManager.default.fileExists(atPath: directory) {
      try FileManager.default.createDirectory(
        atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    if FileManager.default.fileExists(atPath: path) { return }
    // O_EXCL: a file made meanwhile by another connection is not opened here either.
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else {
      if errno == EEXIST { return }
      throw StateDatabaseError(path: path, reason: String(cString: strerror(errno)))
    }
    close(descriptor)
  }

  /// Runs `work` in a write transaction.
  public func write<T>(_ work: (Database) throws -> T) throws(StateDatabaseError) -> T {
    tellNotes()
    do { return try pool.write(work) } catch { throw StateDatabaseError(path: path, error) }
  }

  /// Runs `work` on a read-only snapshot.
  public func read<T>(_ work: (Database) throws -> T) throws(StateDatabaseError) -> T {
    tellNotes()
    do { return try pool.read(work) } catch { throw StateDatabaseError(path: path, error) }
  }

  /// Tells `notify` the notes no opener took.
  private func tellNotes() { notes.forEach(notify) }

  /// The migrations applied, oldest first (for tests and `cfi-sh log --json`'s consumers).
  public func appliedMigrations() throws(StateDatabaseError) -> [String] {
    try read { db in try StateSchema.migrator.appliedIdentifiers(db).sorted() }
  }
}
