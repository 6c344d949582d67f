// The state database's schema, as migrations from the first version on: a migration, once
// released, never changes; a new need is a new migration appended here. Each database knows
// which it has applied (GRDB's `grdb_migrations` table), so a store written by an older
// cfi-sh is brought up to date the first time a newer one opens it.
//
// Times are UTC (GRDB stores a Date as `YYYY-MM-DD HH:MM:SS.SSS`, which sorts as text).
// Host and group names are stored as text, already validated (`HostName`, `GroupName`).

import GRDB

enum StateSchema {
  static var migrator: DatabaseMigrator { migrator(importing: nil) }

  /// The migrations; `legacy`: the JSON files the "2-hosts" migration takes its first rows from.
  static func migrator(importing legacy: LegacyHostFiles?) -> DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("1-history", migrate: history)
    migrator.registerMigration("2-hosts") { db in
      try hosts(db)
      try legacy?.importRecords(into: db)
    }
    migrator.registerMigration("3-deliveries", migrate: deliveries)
    migrator.registerMigration("4-log", migrate: blocks)
    migrator.registerMigration("5-claims", migrate: claims)
    return migrator
  }

  /// Runs, and the results of their steps on each host.
  private static func history(_ db: Database) throws {
    // One row per run, written when it starts (a run killed outright stays without `finished`).
    try db.create(table: "run") { t in
      t.primaryKey("id", .text)
      /// The runbook's path, or `<command line>`, `<stdin>`.
      t.column("runbook", .text).notNull()
      /// The runbook's text as it ran (its main file; hashes redacted, at most 64 KiB).
      t.column("source", .text)
      /// The runbook's arguments, a JSON list (hashes redacted).
      t.column("arguments", .text).notNull().defaults(to: "[]")
      t.column("store", .text).notNull()
      t.column("user", .text).notNull()
      t.column("sudo_user", .text)
      t.column("check_mode", .boolean).notNull().defaults(to: false)
      t.column("started", .datetime).notNull()
      t.column("finished", .datetime)
      t.column("exit_status", .integer)
      /// What stopped the run from outside (`SIGTERM`, …).
      t.column("signal", .text)
      /// The error that stopped the run on the server.
      t.column("error", .text)
    }
    try db.create(index: "run_by_start", on: "run", columns: ["started"])
    try db.create(index: "run_by_runbook", on: "run", columns: ["runbook", "started"])

    // One row per host per step, in the order the results came.
    try db.create(table: "step_result") { t in
      t.column("run_id", .text).notNull().references("run", onDelete: .cascade)
      t.column("sequence", .integer).notNull()
      t.column("block", .integer).notNull()
      t.column("location", .text).notNull()
      t.column("label", .text).notNull()
      t.column("host", .text).notNull()
      t.column("host_group", .text).notNull()
      t.column("status", .text).notNull()
      /// Nil when no command ran to its end.
      t.column("exit_code", .integer)
      /// Why the host was not reached (`refused`, `connect_timeout`, …).
      t.column("reason", .text)
      t.column("message", .text)
      t.column("duration", .double).notNull()
      /// What the command printed, capped (`RunHistory.outputCap`), hashes redacted.
      t.column("output", .text).notNull().defaults(to: "")
      t.column("stderr", .text).notNull().defaults(to: "")
      t.column("finished", .datetime).notNull()
      t.primaryKey(["run_id", "sequence"])
    }
    try db.create(index: "step_result_by_host", on: "step_result", columns: ["host", "run_id"])

    // One row per host per run: its worst status over the run's blocks (the recap's line).
    try db.create(table: "host_outcome") { t in
      t.column("run_id", .text).notNull().references("run", onDelete: .cascade)
      t.column("host", .text).notNull()
      t.column("host_group", .text).notNull()
      t.column("status", .text).notNull()
      t.column("reason", .text)
      t.column("message", .text)
      t.primaryKey(["run_id", "host"])
    }
    try db.create(index: "host_outcome_by_host", on: "host_outcome", columns: ["host"])
  }

  /// The hosts the store knows (accepted, or reached) and the announced claims waiting for the
  /// admin; until this migration, `STORE/.cfi/known-clients.json` and `pending-hosts.json`.
  private static func hosts(_ db: Database) throws {
    try db.create(table: "known_client") { t in
      t.primaryKey("name", .text)
      t.column("host_group", .text).notNull()
      t.column("address", .text)
      t.column("port", .integer)
      t.column("user", .text)
      /// When a run last reached it; nil: accepted, never reached yet.
      t.column("last_seen", .datetime)
      /// When `cfi-sh hosts accept` bound it; nil: known from a run (a file named it).
      t.column("accepted", .datetime)
      /// The line(s) pinning its ssh host key in the store's known_hosts, as they were when a
      /// run reached it or it was accepted.
      t.column("host_key", .text)
    }

    // One row per claim (name, group, address, port) an announcement made.
    try db.create(table: "pending_host") { t in
      t.autoIncrementedPrimaryKey("id")
      t.column("name", .text).notNull()
      t.column("host_group", .text).notNull()
      t.column("address", .text).notNull()
      /// Nil: the announcement named none (ssh's default).
      t.column("port", .integer)
      t.column("first_seen", .datetime).notNull()
      t.column("last_seen", .datetime).notNull()
      /// `cfi-sh hosts reject` said no: never admitted nor listed as pending.
      t.column("rejected", .boolean).notNull().defaults(to: false)
    }
    try db.execute(
      sql: "CREATE UNIQUE INDEX pending_host_claim ON pending_host (name, host_group, address, ifnull(port, -1))")
  }

  /// What runs owe to hosts that were off (`Deliveries`).
  private static func deliveries(_ db: Database) throws {
    // The runbook as the recording run ran it, once per run (its hosts share it).
    try db.create(table: "delivery_runbook") { t in
      t.primaryKey("origin_run", .text)
      t.column("runbook", .text).notNull()
      /// `DeliveryRunbook` as JSON: files, arguments, options (not redacted while a delivery
      /// of it is open: it must run; redacted once none is).
      t.column("content", .text).notNull()
    }
    try db.create(table: "delivery") { t in
      t.autoIncrementedPrimaryKey("id")
      t.column("origin_run", .text).notNull().references("delivery_runbook", onDelete: .cascade)
      t.column("host", .text).notNull()
      t.column("created", .datetime).notNull()
      t.column("expires", .datetime)
      t.column("state", .text).notNull()
      t.column("attempts", .integer).notNull().defaults(to: 0)
      t.column("last_attempt", .datetime)
      t.column("last_status", .text)
      t.column("last_reason", .text)
      t.column("last_run", .text)
      t.column("finished", .datetime)
      /// The process running it (state `running`).
      t.column("claimed_by", .integer)
      t.column("claimed_at", .datetime)
    }
    try db.create(index: "delivery_by_host", on: "delivery", columns: ["host", "state"])
    try db.create(index: "delivery_by_state", on: "delivery", columns: ["state", "id"])
  }

  /// What `cfi-sh log RUN` needs to show a run as its end-of-run output did: each `on` block's
  /// target and hosts, how it ended per host, and whether a step's failure was tolerated.
  private static func blocks(_ db: Database) throws {
    // One row per `on` block, written when the block ends.
    try db.create(table: "block") { t in
      t.column("run_id", .text).notNull().references("run", onDelete: .cascade)
      t.column("block", .integer).notNull()
      /// The target as printed, e.g. `on group lab except pc03`.
      t.column("target", .text).notNull()
      t.column("location", .text).notNull()
      /// The hosts the block ran on, a JSON list of names, in order.
      t.column("hosts", .text).notNull().defaults(to: "[]")
      /// Each host's end in the block, a JSON list of {host, group, status, reason, message}.
      t.column("outcomes", .text).notNull().defaults(to: "[]")
      /// `max_fail` stopped the block.
      t.column("stopped", .boolean).notNull().defaults(to: false)
      t.primaryKey(["run_id", "block"])
    }
    try db.alter(table: "step_result") { t in
      /// The step is inside `try`: its failure did not end the host's block.
      t.add(column: "tolerated", .boolean).notNull().defaults(to: false)
    }
  }

  /// A claim names its process's boot as well as its pid: a pid is reused, after a reboot
  /// even by the next watcher (`DeliveryClaimer`).
  private static func claims(_ db: Database) throws {
    try db.alter(table: "delivery") { t in
      /// The boot id of the process running it (state `running`); nil in a claim made before.
      t.add(column: "claimed_boot", .text)
    }
  }
}
