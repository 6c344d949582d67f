// The runs that tried a delivery, read back from the run history: the queue keeps only the
// count and the last attempt; the history has each run. A delivery's run is a run of its
// runbook (under the name it was recorded with, and for a runbook without a file, with the
// same text) that reached its host; so is a later run of the same runbook by hand, which
// tried the host just the same and is listed too.

import Foundation
import GRDB

/// One run that reached (or tried to reach) a delivery's host.
public struct DeliveryRun: Hashable, Sendable {
  public var run: String
  public var started: Date
  /// The host's outcome in that run (`unreachable`, `failed`, `ok`, …).
  public var status: String
  /// Why it was unreachable (`no_route`, …), or the failure's message.
  public var reason: String?

  public init(run: String, started: Date, status: String, reason: String? = nil) {
    self.run = run
    self.started = started
    self.status = status
    self.reason = reason
  }
}

extension Deliveries {
  /// The real (not `--check`) runs of `delivery`'s runbook, after the one that recorded it,
  /// with the host's outcome in each, oldest first.
  public func runs(of delivery: Delivery) throws(StateDatabaseError) -> [DeliveryRun] {
    // `<command line>` names every -c runbook: its text (the run's record holds it redacted,
    // cut at 64 KiB) tells them apart: the same text, or a text cut there that begins it. A
    // runbook file is its path (the record keeps its text too, as it was then; a delivery of
    // an edited file is still a run of that runbook).
    let runbook = try runbook(of: delivery)
    let text = runbook.name.hasPrefix("<") ? runbook.files.first.map { Secret.redactingHashes(in: $0.text) } : nil
    return try database.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT r.id, r.started, o.status, coalesce(o.reason, o.message) AS why
          FROM run r JOIN host_outcome o ON o.run_id = r.id
          WHERE r.runbook = ? AND o.host = ? AND r.started >= ? AND r.id != ? AND NOT r.check_mode
            AND (? IS NULL OR r.source = ? OR (length(r.source) >= 65536 AND instr(?, r.source) = 1))
          ORDER BY r.started, r.id
          """, arguments: [delivery.runbook, delivery.host.rawValue, delivery.created, delivery.origin, text, text, text]
      ).map { row in DeliveryRun(run: row["id"], started: row["started"], status: row["status"], reason: row["why"]) }
    }
  }
}
