// The last run of a runbook: what `--limit @failed` (and `@unreachable`, `@changed`) reads.
// The store's run history has it (`HistoryQuery.lastRealRun`); the audit log is read only
// for a store whose history has no run of the runbook (runs from before it had one).

import Foundation

/// The host results of one recorded run.
public struct LastRun: Sendable {
  /// Per host, its worst status (`ok`, `changed`, `failed`, `unreachable`, …).
  public var statuses: [HostName: String]
  public var finished: String

  /// The hosts with `status`.
  public func hosts(_ status: String) -> [HostName] {
    statuses.filter { $0.value == status }.map(\.key).sorted(by: HostFolding.naturalLess)
  }

  /// The last real run of `runbook` (its path, or `<command line>` with its text `source`) on
  /// `store`: from the store's run history, else from the audit log at `auditLog` (nil: none);
  /// `warning` hears why the history could not be read.
  public static func find(
    store: Store, auditLog: String?, runbook: String, source: String? = nil, warning: (String) -> Void
  ) -> LastRun? {
    do {
      if let last = try HistoryQuery.open(store: store).lastRealRun(runbook: runbook, source: source) { return last }
    } catch {
      if case .noHistory = error {} else { warning("\(error); --limit reads the audit log") }
    }
    return auditLog.flatMap { find(inAuditLog: $0, runbook: runbook, source: source, store: store.root) }
  }

  /// The last run of `runbook` (its path, or `<command line>` with its text `source`) on
  /// `store` in the audit log at `path` that changed things (dry runs are skipped); nil when
  /// there is none. Records of
  /// other stores are skipped; records written before runs named their store count for any.
  /// Only the log's last 64 MiB are read.
  public static func find(inAuditLog path: String, runbook: String, source: String? = nil, store: String) -> LastRun? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    let size = (try? handle.seekToEnd()) ?? 0
    let window: UInt64 = 64 << 20
    try? handle.seek(toOffset: size > window ? size - window : 0)
    guard let data = try? handle.readToEnd() else { return nil }
    for line in data.split(separator: UInt8(ascii: "\n")).reversed() {
      guard let record = try? JSONDecoder().decode(Record.self, from: line), record.record == "run",
        record.runbook == runbook, source == nil || record.source == source, !record.check,
        record.store == nil || record.store == store
      else { continue }
      var statuses: [HostName: String] = [:]
      for (name, status) in record.hosts ?? [:] { if let host = HostName(name) { statuses[host] = status } }
      return LastRun(statuses: statuses, finished: record.finished ?? "?")
    }
    return nil
  }

  private struct Record: Decodable {
    var record: String
    var runbook: String?
    var store: String?
    var source: String?
    var check: Bool
    var finished: String?
    var hosts: [String: String]?
  }
}
