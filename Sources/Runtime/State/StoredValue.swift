// Values read back from the state database are input: a row may have been edited with sqlite3
// or written by another version. A host's name, group and address are parsed again as they
// enter, as from any file, and a row that holds no valid one is skipped with the reason.

import GRDB

/// Why a stored row was skipped: its column and what is wrong with it.
struct StoredValueError: Error, CustomStringConvertible {
  var description: String
}

enum StoredValue {
  /// The column's value as text, for messages about the row.
  static func text(_ row: Row, _ column: String) -> String {
    let value: DatabaseValue = row[column] ?? .null
    return String.fromDatabaseValue(value) ?? value.description
  }

  /// The column's value as `Value` (an optional for a column that may be NULL).
  static func column<Value: DatabaseValueConvertible>(_ row: Row, _ column: String) throws(StoredValueError) -> Value {
    do { return try row.decode(forColumn: column) } catch {
      throw StoredValueError(description: "'\(column)': \(StateDatabaseError.reason(of: error))")
    }
  }

  /// The column's text parsed by `parse`; `what` names a valid value, for the message.
  static func parse<Value>(_ row: Row, _ column: String, _ parse: (String) -> Value?, _ what: String)
    throws(StoredValueError) -> Value
  {
    guard let text: String = try Self.column(row, column) else { throw StoredValueError(description: "'\(column)': empty") }
    guard let value = parse(text) else { throw StoredValueError(description: "'\(column)': not \(what): \(text)") }
    return value
  }

  /// As `parse`, nil for a NULL column.
  static func parseIfPresent<Value>(_ row: Row, _ column: String, _ parse: (String) -> Value?, _ what: String)
    throws(StoredValueError) -> Value?
  {
    (row[column] as DatabaseValue?)?.isNull != false ? nil : try Self.parse(row, column, parse, what)
  }
}
