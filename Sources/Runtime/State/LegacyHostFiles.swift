// The JSON files a store kept its hosts in before the state database: `STORE/.cfi/known-clients.json`
// and `STORE/.cfi/pending-hosts.json`. The "2-hosts" migration, which runs once per database,
// takes their records and, once its transaction committed, renames them `*.json.imported`
// (kept for the admin, never read again): a migration that did not commit leaves them in
// place for the next open. They were input (editable by hand): an entry that does not decode
// is skipped, with its reason, and the others are taken.

import Foundation
import GRDB
import Synchronization

/// The legacy files beside one database, and what importing them did.
final class LegacyHostFiles: Sendable {
  let directory: String
  private let said = Mutex<[String]>([])

  static let knownClients = "known-clients.json"
  static let pendingHosts = "pending-hosts.json"

  init(directory: String) { self.directory = directory }

  /// What the import did, for the admin: said once, since it happens once.
  var notes: [String] { said.withLock { $0 } }

  /// What importing one file did: a note, or the file to rename once the import committed.
  private enum Step: Sendable {
    case note(String)
    case imported(path: String, count: Int, what: String)
  }

  /// Takes the records of the files there are into the new tables, in the migration's
  /// transaction; renames the files, and keeps what the import did to say, only once that
  /// transaction committed.
  func importRecords(into db: Database) throws {
    var steps: [Step] = []
    try importFile(Self.knownClients, what: "known clients", as: KnownClient.self, steps: &steps) { client in
      try client.upsert(db, also: "user = excluded.user, last_seen = excluded.last_seen")
    }
    try importFile(Self.pendingHosts, what: "pending hosts", as: PendingHost.self, steps: &steps) { entry in
      try db.execute(
        sql: """
          INSERT OR IGNORE INTO pending_host (name, host_group, address, port, first_seen, last_seen, rejected)
          VALUES (?, ?, ?, ?, ?, ?, ?)
          """,
        arguments: [
          entry.name.rawValue, entry.group.rawValue, entry.address.rawValue, entry.claim.port, entry.firstSeen,
          entry.lastSeen, entry.rejected,
        ])
    }
    guard !steps.isEmpty else { return }
    db.afterNextTransaction { [steps] _ in
      let notes = steps.map(Self.done)
      self.said.withLock { $0 += notes }
    }
  }

  /// Renames an imported file (its rows committed), and says so.
  private static func done(_ step: Step) -> String {
    switch step {
    case .note(let note): return note
    case .imported(let path, let count, let what):
      let kept = path + ".imported"
      guard rename(path, kept) == 0 else {
        return "imported \(count) \(what) from \(path) into the state database, but cannot rename the file "
          + "(\(String(cString: strerror(errno)))): remove it, it is not read any more"
      }
      return "imported \(count) \(what) from \(path) into the state database; the file is kept as \(kept)"
    }
  }

  private func importFile<Record: Decodable>(
    _ name: String, what: String, as type: Record.Type, steps: inout [Step], insert: (Record) throws -> Void
  ) throws {
    let path = directory + "/" + name
    guard FileManager.default.fileExists(atPath: path) else { return }
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
      steps.append(.note("\(path): not imported into the state database, cannot read it: \(error.localizedDescription)"))
      return
    }
    var imported = 0
    do {
      for (position, entry) in try Self.decoder.decode([Entry<Record>].self, from: data).enumerated() {
        switch entry.record {
        case .success(let record):
          try insert(record)
          imported += 1
        case .failure(let error): steps.append(.note("\(path): entry \(position + 1) ignored: \(Self.reason(error))"))
        }
      }
    } catch let error as DecodingError {
      steps.append(.note("\(path): ignored, not a list of \(what): \(Self.reason(error))"))
    }
    steps.append(.imported(path: path, count: imported, what: what))
  }

  /// One entry of the list, decoded or not.
  private struct Entry<Record: Decodable>: Decodable {
    let record: Result<Record, any Error>
    init(from decoder: any Decoder) throws { record = Result { try Record(from: decoder) } }
  }

  private static var decoder: JSONDecoder {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return decoder
  }

  /// What is wrong with the file or an entry, without the decoder's coding-path noise.
  private static func reason(_ error: any Error) -> String {
    switch error as? DecodingError {
    case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
      let field = context.codingPath.last.map { "'\($0.stringValue)': " } ?? ""
      return field + context.debugDescription
    case .keyNotFound(let key, _): return "no '\(key.stringValue)'"
    default: return "\(error)"
    }
  }
}
