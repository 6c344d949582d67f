// Diagnostics as JSON Lines (`--json`, also with `-n`): one `diagnostic` object per
// diagnostic, then `diagnostics_end` with the counts, on standard output like the run's
// events, so a tool reads one stream. The shape is documented in docs/json-events.md.

import CFISyntax
import Foundation
import Runtime

enum DiagnosticJSON {
  struct Place: Encodable {
    var file: String
    var line: Int
    var column: Int
  }

  struct Note: Encodable {
    var file: String
    var line: Int
    var column: Int
    var message: String
  }

  struct Record: Encodable {
    var event = "diagnostic"
    var id: String
    var severity: String
    var message: String
    var file: String
    var line: Int
    var column: Int
    var endLine: Int
    var endColumn: Int
    var notes: [Note]?

    enum CodingKeys: String, CodingKey {
      case event, id, severity, message, file, line, column, endLine = "end_line", endColumn = "end_column", notes
    }
  }

  struct End: Encodable {
    var event = "diagnostics_end"
    var errors: Int
    var warnings: Int
    var notShown: Int

    enum CodingKeys: String, CodingKey {
      case event, errors, warnings, notShown = "not_shown"
    }
  }

  /// The lines for `diagnostics`: the first `limit` (as the text renderer shows), then the
  /// counts of all of them.
  static func render(_ diagnostics: [Diagnostic], files: [SourceFile], limit: Int = DiagnosticRenderer.maxShown) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    func place(_ offset: Int, _ range: SourceRange) -> Place {
      guard range.file.rawValue < files.count else { return Place(file: "?", line: 0, column: 0) }
      let file = files[range.file.rawValue]
      let location = file.lineColumn(of: offset)
      return Place(file: file.path, line: location.line, column: location.column)
    }
    // A message may quote source text; a crypt hash in it is redacted, as everywhere in output.
    func text(_ message: String) -> String { Secret.redactingHashes(in: message) }
    func line(_ record: some Encodable) -> String {
      (try? encoder.encode(record)).map { String(decoding: $0, as: UTF8.self) + "\n" } ?? ""
    }
    var out = ""
    for diagnostic in diagnostics.prefix(limit) {
      let start = place(diagnostic.range.start, diagnostic.range)
      let end = place(diagnostic.range.end, diagnostic.range)
      let notes = diagnostic.notes.map {
        let at = place($0.range.start, $0.range)
        return Note(file: at.file, line: at.line, column: at.column, message: text($0.message))
      }
      out += line(
        Record(
          id: diagnostic.id.rawValue, severity: diagnostic.severity.rawValue, message: text(diagnostic.message),
          file: start.file, line: start.line, column: start.column, endLine: end.line, endColumn: end.column,
          notes: notes.isEmpty ? nil : notes))
    }
    out += line(
      End(
        errors: diagnostics.count { $0.severity == .error }, warnings: diagnostics.count { $0.severity == .warning },
        notShown: max(0, diagnostics.count - limit)))
    return out
  }
}
