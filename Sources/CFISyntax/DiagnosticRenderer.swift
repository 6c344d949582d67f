// Rendering diagnostics as text, the way swiftc and clang do:
//   runbook.cfi:3:9: error: message
//       3 | on grup lab < run "x" >
//         |    ^~~~

/// Renders diagnostics with a source excerpt and a caret under the offending text.
public struct DiagnosticRenderer {
  /// Longest stretch of a source line shown around the caret; why: a 1 MB line must not be
  /// printed whole, and a terminal shows ~100 columns anyway.
  public static let excerptWidth = 100

  private let files: [SourceFile]
  private let colors: Bool

  /// A renderer for diagnostics about `files`; `colors` adds ANSI colours (for terminals).
  public init(files: [SourceFile], colors: Bool = false) {
    self.files = files
    self.colors = colors
  }

  /// How many diagnostics `render` shows; why: the first ones are the ones to fix (later
  /// ones often follow from them), and 200,000 of them took seconds and hundreds of MB to
  /// print for nobody to read.
  public static let maxShown = 100

  /// Renders the first `limit` diagnostics, each followed by its notes, then how many more
  /// there are (of each severity), so that a count printed after it still adds up.
  public func render(_ diagnostics: [Diagnostic], limit: Int = DiagnosticRenderer.maxShown) -> String {
    var out = diagnostics.prefix(limit).map(render).joined()
    let hidden = diagnostics.dropFirst(limit)
    guard !hidden.isEmpty else { return out }
    let counts = Diagnostic.Severity.allCases.compactMap { severity -> String? in
      let count = hidden.count(where: { $0.severity == severity })
      return count == 0 ? nil : "\(count) more \(severity.rawValue)\(count == 1 ? "" : "s")"
    }
    out += paint("and \(counts.joined(separator: ", ")) not shown", "1") + "\n"
    return out
  }

  /// Renders one diagnostic and its notes.
  public func render(_ diagnostic: Diagnostic) -> String {
    var out = entry(diagnostic.severity.rawValue, diagnostic.message, diagnostic.range)
    for note in diagnostic.notes { out += entry("note", note.message, note.range) }
    return out
  }

  private func paint(_ text: String, _ code: String) -> String {
    colors ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
  }

  private func entry(_ severity: String, _ message: String, _ range: SourceRange) -> String {
    guard range.file.rawValue < files.count else { return "\(severity): \(message)\n" }
    let file = files[range.file.rawValue]
    let location = file.lineColumn(of: range.start)
    let color = severity == "error" ? "1;31" : severity == "warning" ? "1;35" : "1;36"
    var out = paint("\(file.path):\(location.line):\(location.column): ", "1")
    out += paint("\(severity):", color) + " " + paint(message, "1") + "\n"
    out += excerpt(file, range, line: location.line, column: location.column)
    return out
  }

  /// The source line and the caret line, clipped around the caret.
  private func excerpt(_ file: SourceFile, _ range: SourceRange, line: Int, column: Int) -> String {
    let bytes = file.lineBytes(line)
    let lineStart = bytes.startIndex
    let caretOffset = min(column - 1, bytes.count)
    // Clip to a window around the caret.
    var windowStart = 0
    if caretOffset > DiagnosticRenderer.excerptWidth - 20 {
      windowStart = caretOffset - 40
    }
    var windowEnd = min(bytes.count, windowStart + DiagnosticRenderer.excerptWidth)
    // Keep UTF-8 sequences whole at the edges.
    while windowStart > 0, windowStart < bytes.count, bytes[lineStart + windowStart] & 0xC0 == 0x80 { windowStart -= 1 }
    while windowEnd < bytes.count, bytes[lineStart + windowEnd] & 0xC0 == 0x80 { windowEnd += 1 }
    let prefix = windowStart > 0 ? "..." : ""
    let suffix = windowEnd < bytes.count ? "..." : ""
    let shown = display(bytes[(lineStart + windowStart)..<(lineStart + windowEnd)])
    let beforeCaret = display(bytes[(lineStart + windowStart)..<(lineStart + max(windowStart, caretOffset))])
    // The underline spans the range on this line, at least one column.
    let rangeEndOnLine = min(range.end - file.lineStarts[line - 1], windowEnd)
    let underlined = display(bytes[(lineStart + min(caretOffset, windowEnd))..<(lineStart + max(caretOffset, min(rangeEndOnLine, windowEnd)))])
    let gutter = String(line)
    let pad = String(repeating: " ", count: gutter.count)
    let indent = prefix.map { _ in " " }.joined() + beforeCaret.map { $0 == "\t" ? "\t" : " " }.joined()
    let marks = "^" + String(repeating: "~", count: max(0, underlined.count - 1))
    return " \(gutter) | \(prefix)\(shown)\(suffix)\n \(pad) | \(indent)\(paint(marks, "1;32"))\n"
  }

  /// Bytes as printable text: invalid UTF-8 as U+FFFD, control characters (not tab) as '?'.
  private func display(_ bytes: ArraySlice<UInt8>) -> String {
    String(String(decoding: bytes, as: UTF8.self).map { character in
      character.isASCII && (character.asciiValue! < 0x20 && character != "\t" || character.asciiValue! == 0x7F)
        ? "?" : character
    })
  }
}
