// Source text and positions. Offsets are stored; line and column are derived for display.

/// Identifies a source file within one load (a runbook and its includes).
public struct FileID: Hashable, Sendable, Comparable {
  public let rawValue: Int
  public init(_ rawValue: Int) { self.rawValue = rawValue }
  public static func < (lhs: FileID, rhs: FileID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A half-open byte range `start..<end` in one file.
public struct SourceRange: Hashable, Sendable, Comparable {
  public var file: FileID
  public var start: Int
  public var end: Int

  public init(file: FileID, start: Int, end: Int) {
    self.file = file
    self.start = start
    self.end = max(start, end)
  }

  /// The smallest range covering both (which must be in the same file).
  public func union(_ other: SourceRange) -> SourceRange {
    SourceRange(file: file, start: min(start, other.start), end: max(end, other.end))
  }

  public static func < (lhs: SourceRange, rhs: SourceRange) -> Bool {
    (lhs.file, lhs.start, lhs.end) < (rhs.file, rhs.start, rhs.end)
  }
}

/// A 1-based line and column (the column counts UTF-8 bytes, as swiftc and clang do).
public struct LineColumn: Hashable, Sendable, CustomStringConvertible {
  public var line: Int
  public var column: Int
  public var description: String { "\(line):\(column)" }
}

/// One source text: a file, `-c` text, stdin, or a line typed at the REPL.
public struct SourceFile: Sendable {
  /// The file's identity within its load.
  public let id: FileID
  /// The name shown in diagnostics (a path, `<command line>`, `<stdin>`).
  public let path: String
  /// The raw bytes; they need not be valid UTF-8 (the lexer reports what isn't).
  public let bytes: [UInt8]
  /// The offset of the first byte of each line.
  public let lineStarts: [Int]

  /// Wraps `bytes` read from `path`.
  public init(id: FileID, path: String, bytes: [UInt8]) {
    self.id = id
    self.path = path
    self.bytes = bytes
    var starts = [0]
    for (offset, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
      starts.append(offset + 1)
    }
    lineStarts = starts
  }

  /// Wraps a string.
  public init(id: FileID, path: String, text: String) {
    self.init(id: id, path: path, bytes: Array(text.utf8))
  }

  /// The line and column of a byte offset.
  public func lineColumn(of offset: Int) -> LineColumn {
    let clamped = min(max(offset, 0), bytes.count)
    var low = 0
    var high = lineStarts.count - 1
    while low < high {
      let middle = (low + high + 1) / 2
      if lineStarts[middle] <= clamped { low = middle } else { high = middle - 1 }
    }
    return LineColumn(line: low + 1, column: clamped - lineStarts[low] + 1)
  }

  /// The bytes of a 1-based line, without its newline.
  public func lineBytes(_ line: Int) -> ArraySlice<UInt8> {
    guard line >= 1, line <= lineStarts.count else { return [] }
    let start = lineStarts[line - 1]
    var end = line < lineStarts.count ? lineStarts[line] - 1 : bytes.count
    if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
    return bytes[start..<max(start, end)]
  }

  /// The text of a range (invalid UTF-8 shows as U+FFFD).
  public func text(_ range: SourceRange) -> String {
    let start = min(range.start, bytes.count)
    let end = min(range.end, bytes.count)
    return String(decoding: bytes[start..<end], as: UTF8.self)
  }

  /// The directory part of `path`, for resolving `include`s; `.` when there is none.
  public var directory: String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }
}
