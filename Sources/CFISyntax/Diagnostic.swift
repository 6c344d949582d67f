// Diagnostics as values. Nothing in Syntax prints; the command renders them.

/// A stable identifier for a kind of diagnostic, so callers can react to one kind
/// (the REPL continues input on `.unexpectedEndOfInput`) without matching message text.
public struct DiagnosticID: Hashable, Sendable, CustomStringConvertible {
  public let rawValue: String
  public init(_ rawValue: String) { self.rawValue = rawValue }
  public var description: String { rawValue }

  // Please keep these alphabetical.
  public static let actionOutsideOn = DiagnosticID("action-outside-on")
  public static let badArgumentCount = DiagnosticID("bad-argument-count")
  public static let badEscape = DiagnosticID("bad-escape")
  public static let badHostPattern = DiagnosticID("bad-host-pattern")
  public static let badInterpolation = DiagnosticID("bad-interpolation")
  public static let badNumber = DiagnosticID("bad-number")
  public static let badSetting = DiagnosticID("bad-setting")
  public static let badValue = DiagnosticID("bad-value")
  public static let expected = DiagnosticID("expected")
  public static let include = DiagnosticID("include")
  public static let invalidCharacter = DiagnosticID("invalid-character")
  public static let invalidUTF8 = DiagnosticID("invalid-utf8")
  public static let misplaced = DiagnosticID("misplaced")
  public static let nestingTooDeep = DiagnosticID("nesting-too-deep")
  public static let runtime = DiagnosticID("runtime")
  public static let store = DiagnosticID("store")
  public static let unexpectedEndOfInput = DiagnosticID("unexpected-end-of-input")
  public static let unexpectedToken = DiagnosticID("unexpected-token")
  public static let unknownFunction = DiagnosticID("unknown-function")
  public static let unknownGroup = DiagnosticID("unknown-group")
  public static let unknownHost = DiagnosticID("unknown-host")
  public static let unknownStatement = DiagnosticID("unknown-statement")
  public static let unknownVariable = DiagnosticID("unknown-variable")
  public static let unterminatedString = DiagnosticID("unterminated-string")
}

/// A message about a place in the source.
public struct Diagnostic: Error, Hashable, Sendable {
  public enum Severity: String, Hashable, Sendable, CaseIterable { case error, warning, note }

  /// A secondary message at another place, e.g. where an unclosed block was opened.
  public struct Note: Hashable, Sendable {
    public var message: String
    public var range: SourceRange
    public init(_ message: String, at range: SourceRange) {
      self.message = message
      self.range = range
    }
  }

  public var id: DiagnosticID
  public var severity: Severity
  /// Lowercase, no final period, source text quoted with '…'.
  public var message: String
  public var range: SourceRange
  public var notes: [Note]

  public init(
    _ id: DiagnosticID, _ message: String, at range: SourceRange, severity: Severity = .error,
    notes: [Note] = []
  ) {
    self.id = id
    self.severity = severity
    self.message = message
    self.range = range
    self.notes = notes
  }
}

/// Returns the candidate closest to `word` by edit distance, if it is close enough to be a
/// plausible typo (at most a third of the word's length, and at most 2 edits). Ties go to the
/// candidate first in alphabetical order, so the answer does not depend on the order of
/// `candidates` (which is random for a `Set`).
public func closestMatch(to word: String, in candidates: some Sequence<String>) -> String? {
  let limit = min(2, max(1, word.count / 3))
  var best: (String, Int)?
  for candidate in candidates where candidate != word {
    let distance = editDistance(word, candidate)
    if distance <= limit, best.map({ distance < $0.1 || (distance == $0.1 && candidate < $0.0) }) ?? true {
      best = (candidate, distance)
    }
  }
  return best?.0
}

/// Levenshtein distance between two strings (by Unicode scalar), with transpositions counted as one edit.
func editDistance(_ a: String, _ b: String) -> Int {
  let a = Array(a.unicodeScalars)
  let b = Array(b.unicodeScalars)
  if a.isEmpty { return b.count }
  if b.isEmpty { return a.count }
  if abs(a.count - b.count) > 3 { return abs(a.count - b.count) }
  var previousPrevious = [Int](repeating: 0, count: b.count + 1)
  var previous = Array(0...b.count)
  var current = [Int](repeating: 0, count: b.count + 1)
  for i in 1...a.count {
    current[0] = i
    for j in 1...b.count {
      let cost = a[i - 1] == b[j - 1] ? 0 : 1
      current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
        current[j] = min(current[j], previousPrevious[j - 2] + 1)
      }
    }
    (previousPrevious, previous, current) = (previous, current, previousPrevious)
  }
  return previous[b.count]
}
