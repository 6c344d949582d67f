// A JSON list of records kept under the store's `.cfi/` (known clients, pending hosts): read
// by every run, rewritten by runs and by `cfi-sh hosts`, and editable by hand. So: an entry
// that does not decode is skipped when reading and kept as it was when writing; a file that
// is not a list at all is never overwritten; every rewrite is atomic and done under a short
// lock of its own, so two writers (a cron run ending while the admin accepts a host) never
// lose each other's change.

import Foundation

/// The file of one kind of record.
struct RecordFile<Record: Codable>: Sendable {
  let path: String
  /// What the records are, for messages: `known clients`.
  let what: String

  /// Why the file is not rewritten.
  struct NotAList: LocalizedError {
    var path: String
    var what: String
    var errorDescription: String? { "\(path) is not a list of \(what); fix or remove it" }
  }

  /// The records (none if the file does not exist or cannot be read); `skipped` hears why an
  /// entry, or the whole file, was left out.
  func load(skipped: (String) -> Void = { _ in }) -> [Record] {
    guard let data = FileManager.default.contents(atPath: path) else { return [] }
    let entries: [Entry]
    do { entries = try Self.decoder.decode([Entry].self, from: data) } catch {
      skipped("\(path): ignored, not a list of \(what): \(Self.reason(error))")
      return []
    }
    return entries.enumerated().compactMap { position, entry in
      switch entry.record {
      case .success(let record): return record
      case .failure(let error):
        skipped("\(path): entry \(position + 1) ignored: \(Self.reason(error))")
        return nil
      }
    }
  }

  /// Reads the records, lets `change` edit them, and writes them back in `order` when
  /// `change` returns true; entries this version cannot read stay as they were, after them.
  @discardableResult
  func update<Result>(
    order: (Record, Record) -> Bool, _ change: (inout [Record]) throws -> (changed: Bool, result: Result)
  ) throws -> Result {
    try FileManager.default.createDirectory(
      atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let lock = try LockFile(path: path + ".lock")
    defer { lock.unlock() }
    var (records, unreadable) = try readForUpdate()
    let (changed, result) = try change(&records)
    if changed { try save(records.sorted(by: order), keeping: unreadable) }
    return result
  }

  private struct Entry: Decodable {
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

  /// The file's records, and the entries that do not decode (as JSON values, to write back).
  private func readForUpdate() throws -> ([Record], [Any]) {
    guard let data = FileManager.default.contents(atPath: path) else { return ([], []) }
    guard let list = try? JSONSerialization.jsonObject(with: data) as? [Any] else { throw NotAList(path: path, what: what) }
    var records: [Record] = []
    var unreadable: [Any] = []
    for entry in list {
      if let bytes = try? JSONSerialization.data(withJSONObject: entry, options: [.fragmentsAllowed]),
        let record = try? Self.decoder.decode(Record.self, from: bytes)
      {
        records.append(record)
      } else {
        unreadable.append(entry)
      }
    }
    return (records, unreadable)
  }

  private func save(_ records: [Record], keeping unreadable: [Any]) throws {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    let encoded = try encoder.encode(records)
    let entries = (try JSONSerialization.jsonObject(with: encoded) as? [Any] ?? []) + unreadable
    let data = try JSONSerialization.data(withJSONObject: entries, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    try data.write(to: URL(fileURLWithPath: path), options: .atomic)
  }
}
