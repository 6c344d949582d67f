// HostPattern.swift — owns the host-pattern algebra of the Runtime module (in the spirit of
// ClusterShell's NodeSet/RangeSet): parsing one host pattern (`pc[01-20]`,
// `rack[1-2]-n[01-04]`, `web1.example.com`, `@lab`) or a comma-separated list of them,
// expanding patterns into host names, and `HostPatternError`, which points at the offending
// bytes of the pattern text. It also owns `NumberSet`, the normalized content of one bracket,
// which HostFolding.swift reuses so that folded output is printed by the same code that
// parses it. Folding names back into patterns lives in HostFolding.swift.

// MARK: - Errors

/// An error in a host pattern, with the UTF-8 byte offset (and length) of the offending part
/// inside the pattern text, so a caller can point a caret at it.
public struct HostPatternError: Error, Hashable, Sendable, CustomStringConvertible {
  /// What is wrong: lowercase, no final period, quoting source text with '…',
  /// e.g. `range is reversed: '05-01'`.
  public var message: String
  /// UTF-8 byte offset of the offending part inside the pattern text (for
  /// `HostPattern.parseList(_:)`, inside the whole list text). It equals the text's length
  /// when the problem is that something is missing at the very end.
  public var offset: Int
  /// UTF-8 byte length of the offending part; always at least 1.
  public var length: Int

  /// Creates an error at `offset`; a `length` below 1 is raised to 1.
  public init(message: String, offset: Int, length: Int = 1) {
    self.message = message
    self.offset = offset
    self.length = max(1, length)
  }

  /// The message alone; callers that have the pattern text render the caret themselves.
  public var description: String { message }
}

// MARK: - Host patterns

/// One item of a host pattern: a host name with optional bracketed numeric ranges
/// (`pc[01-20]`, `pc[01-05,07,10-12]`, `rack[1-2]-n[01-04]`, `web1.example.com`), or a group
/// reference `@lab`.
///
/// Patterns are stored normalized: ranges inside a bracket are sorted and merged, and a
/// bracket holding a single number becomes plain text. Equality, hashing and `description`
/// all use that normalized form, so `pc[1,2,3]`, `pc[3,1-2]` and `pc[1-3]` are equal and all
/// print as `pc[1-3]`, and `pc[7]` equals `pc7`.
public struct HostPattern: Hashable, Sendable, CustomStringConvertible {
  /// One piece of a host-name pattern.
  enum Segment: Hashable, Sendable {
    /// Text copied verbatim into every name (never empty).
    case literal(String)
    /// A bracket with at least two numbers.
    case numbers(NumberSet)
  }

  enum Kind: Hashable, Sendable {
    case group(GroupName)
    case name([Segment])
  }

  let kind: Kind

  init(kind: Kind) {
    if case .name(let segments) = kind {
      self.kind = .name(Self.normalized(segments))
    } else {
      self.kind = kind
    }
  }

  /// Parses one pattern item. The whole text must be the item: no surrounding spaces and no
  /// top-level commas (use `parseList(_:)` for lists). Error offsets are UTF-8 offsets into
  /// `text`.
  public init(parsing text: String) throws(HostPatternError) {
    let parser = PatternParser(text)
    self = try parser.parseItem(0..<parser.bytes.count)
  }

  /// The group name of a group reference: `"lab"` for `@lab`, nil for a host-name pattern.
  public var groupReference: GroupName? {
    if case .group(let name) = kind { return name }
    return nil
  }

  /// Whether the pattern is one plain host name: no group reference, no range.
  public var isSingleName: Bool {
    guard case .name(let segments) = kind else { return false }
    return segments.allSatisfy { if case .literal = $0 { true } else { false } }
  }

  // Why 100,000: larger than any pool this tool drives, yet small enough that a typo such as
  // `pc[1-99999999]` (or a cartesian product of a few brackets) fails fast with a clear error
  // instead of allocating gigabytes of names. Callers that really mean more pass `limit:`.
  /// The default maximum number of names `expand(limit:)` produces: 100,000.
  public static let expansionLimit: Int = 100_000

  /// Expands the pattern into host names. With several brackets the result is their
  /// cartesian product, left field slowest (`rack[1-2]-n[1-2]` → rack1-n1, rack1-n2,
  /// rack2-n1, rack2-n2); inside a bracket numbers come in ascending order without
  /// duplicates. Throws for a group reference (the caller resolves groups) and when the
  /// pattern stands for more than `limit` names; those errors span the whole of
  /// `description` (offset 0), since the pattern no longer knows where its text came from.
  public func expand(limit: Int = HostPattern.expansionLimit) throws(HostPatternError) -> [String] {
    let whole = description.utf8.count
    switch kind {
    case .group(let name):
      throw HostPatternError(
        message: "cannot expand group reference '@\(name)'; resolve the group first",
        offset: 0, length: whole)
    case .name(let segments):
      let total = count
      if total > limit {
        let shown = total == Int.max ? "more than \(Int.max)" : String(total)
        throw HostPatternError(
          message: "pattern expands to \(shown) hosts, more than the limit of \(limit)",
          offset: 0, length: whole)
      }
      var names = [""]
      for segment in segments {
        switch segment {
        case .literal(let text):
          for index in names.indices { names[index] += text }
        case .numbers(let set):
          let parts = set.strings()
          var next: [String] = []
          next.reserveCapacity(names.count * parts.count)
          for prefix in names {
            for part in parts { next.append(prefix + part) }
          }
          names = next
        }
      }
      return names
    }
  }

  /// The number of names the pattern expands to: 0 for a group reference, and `Int.max`
  /// when the true count does not fit in an `Int`.
  public var count: Int {
    guard case .name(let segments) = kind else { return 0 }
    var total = 1
    for case .numbers(let set) in segments {
      let (product, overflow) = total.multipliedReportingOverflow(by: set.count)
      if overflow { return Int.max }
      total = product
    }
    return total
  }

  /// The canonical text of the pattern, which parses back to an equal pattern: `@lab`, or
  /// the name with each bracket's ranges sorted and merged (`pc[3,1-2]` → `pc[1-3]`).
  public var description: String {
    switch kind {
    case .group(let name):
      return "@" + name.rawValue
    case .name(let segments):
      var text = ""
      for segment in segments {
        switch segment {
        case .literal(let literal): text += literal
        case .numbers(let set): text += set.bracketText
        }
      }
      return text
    }
  }

  /// Turns single-number brackets into literals and joins adjacent literals.
  static func normalized(_ segments: [Segment]) -> [Segment] {
    var result: [Segment] = []
    for segment in segments {
      var piece = segment
      if case .numbers(let set) = segment, let single = set.singleString {
        piece = .literal(single)
      }
      if case .literal(let text) = piece {
        if text.isEmpty { continue }
        if case .literal(let previous)? = result.last {
          result[result.count - 1] = .literal(previous + text)
          continue
        }
      }
      result.append(piece)
    }
    return result
  }
}

extension HostPattern {
  /// Splits a comma-separated list at top-level commas (commas inside `[...]` belong to
  /// ranges) and parses each item; errors carry offsets into the WHOLE text. Surrounding
  /// spaces (and tabs) around items are allowed. An empty or blank text, and an empty item
  /// (`a,,b`, a trailing comma), are errors.
  public static func parseList(_ text: String) throws(HostPatternError) -> [HostPattern] {
    let parser = PatternParser(text)
    let bytes = parser.bytes
    var pieces: [Range<Int>] = []
    var start = 0
    var inBracket = false
    for (index, byte) in bytes.enumerated() {
      switch byte {
      case UInt8(ascii: "["): inBracket = true
      case UInt8(ascii: "]"): inBracket = false
      case UInt8(ascii: ",") where !inBracket:
        pieces.append(start..<index)
        start = index + 1
      default: break
      }
    }
    pieces.append(start..<bytes.count)

    var patterns: [HostPattern] = []
    patterns.reserveCapacity(pieces.count)
    for piece in pieces {
      var lower = piece.lowerBound
      var upper = piece.upperBound
      while lower < upper, isBlank(bytes[lower]) { lower += 1 }
      while upper > lower, isBlank(bytes[upper - 1]) { upper -= 1 }
      if lower == upper {
        if pieces.count == 1 {
          throw HostPatternError(message: "empty host list", offset: 0, length: bytes.count)
        }
        throw HostPatternError(
          message: "empty item in host list", offset: piece.lowerBound,
          length: piece.count)
      }
      patterns.append(try parser.parseItem(lower..<upper))
    }
    return patterns
  }

  private static func isBlank(_ byte: UInt8) -> Bool {
    byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
  }
}

// MARK: - Number sets

/// The numbers of one bracket (or of one folded field), normalized so that two sets holding
/// the same printed numbers are equal.
///
/// A number is printed either plainly (`7`, `10`) or zero-padded to a width (`07`, `007`).
/// Padding only matters for numbers with fewer digits than the width, so a padded number
/// that is already wide enough (`10` in `[01-10]`) is stored as a plain one; `padded` thus
/// only holds numbers below 10^(width-1).
struct NumberSet: Hashable, Sendable {
  /// One written item: `lower-upper`, printed zero-padded to `width` (1 means unpadded).
  struct Item: Hashable, Sendable {
    var lower: Int
    var upper: Int
    var width: Int
  }

  /// Numbers of one padding width.
  struct Padded: Hashable, Sendable {
    var width: Int
    var ranges: [ClosedRange<Int>]
  }

  /// Numbers printed without padding: sorted, disjoint, never adjacent.
  private(set) var plain: [ClosedRange<Int>] = []
  /// Numbers printed with padding, ascending by width (each ≥ 2); ranges sorted, disjoint,
  /// never adjacent, all below 10^(width-1).
  private(set) var padded: [Padded] = []

  /// Powers of ten up to 10^9 (numbers have at most 9 digits).
  static let powersOfTen: [Int] = (0...9).map { exponent in
    (0..<exponent).reduce(1) { value, _ in value * 10 }
  }

  /// The number of decimal digits of a non-negative number.
  static func digitCount(_ value: Int) -> Int {
    var digits = 1
    var rest = value / 10
    while rest > 0 {
      digits += 1
      rest /= 10
    }
    return digits
  }

  /// `value` zero-padded to `width` digits.
  static func format(_ value: Int, width: Int) -> String {
    let digits = String(value)
    let missing = width - digits.utf8.count
    return missing > 0 ? String(repeating: "0", count: missing) + digits : digits
  }

  init(items: [Item]) {
    var plainRanges: [ClosedRange<Int>] = []
    var paddedRanges: [Int: [ClosedRange<Int>]] = [:]
    for item in items where item.lower <= item.upper {
      if item.width <= 1 {
        plainRanges.append(item.lower...item.upper)
        continue
      }
      let boundary = Self.powersOfTen[min(item.width - 1, 9)]
      if item.lower < boundary {
        paddedRanges[item.width, default: []].append(item.lower...min(item.upper, boundary - 1))
      }
      if item.upper >= boundary {
        plainRanges.append(max(item.lower, boundary)...item.upper)
      }
    }
    plain = Self.merged(plainRanges)
    padded = paddedRanges.keys.sorted().map { width in
      Padded(width: width, ranges: Self.merged(paddedRanges[width]!))
    }
  }

  /// Sorts ranges and joins overlapping or adjacent ones.
  static func merged(_ ranges: [ClosedRange<Int>]) -> [ClosedRange<Int>] {
    var result: [ClosedRange<Int>] = []
    for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
      if let last = result.last, range.lowerBound <= last.upperBound + 1 {
        result[result.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
      } else {
        result.append(range)
      }
    }
    return result
  }

  /// How many distinct printed numbers the set holds.
  var count: Int {
    var total = plain.reduce(0) { $0 + $1.count }
    for group in padded { total += group.ranges.reduce(0) { $0 + $1.count } }
    return total
  }

  /// The printed number when the set holds exactly one.
  var singleString: String? {
    guard count == 1 else { return nil }
    if let range = plain.first { return String(range.lowerBound) }
    let group = padded[0]
    return Self.format(group.ranges[0].lowerBound, width: group.width)
  }

  /// Every printed number, ascending by value; equal values order plain before padded,
  /// narrower padding first (`1`, `01`, `001`).
  func strings() -> [String] {
    if padded.isEmpty {
      return plain.flatMap { range in range.map { String($0) } }
    }
    var entries: [(value: Int, width: Int)] = []
    entries.reserveCapacity(count)
    for range in plain {
      for value in range { entries.append((value, 1)) }
    }
    for group in padded {
      for range in group.ranges {
        for value in range { entries.append((value, group.width)) }
      }
    }
    entries.sort { $0.value != $1.value ? $0.value < $1.value : $0.width < $1.width }
    return entries.map { Self.format($0.value, width: $0.width) }
  }

  /// The bracket text, e.g. `[01-09,12,100-102]`. A padded range that ends just below its
  /// width's boundary and a plain range starting at the boundary print as one item
  /// (`[01-100]` rather than `[01-09,10-100]`).
  var bracketText: String {
    var printed: [(lower: Int, width: Int, text: String)] = []
    var absorbed = Set<Int>()  // lower bounds of plain ranges already printed
    for group in padded {
      let boundary = Self.powersOfTen[min(group.width - 1, 9)]
      for range in group.ranges {
        let first = Self.format(range.lowerBound, width: group.width)
        if range.upperBound == boundary - 1,
          let continuation = plain.first(where: { $0.lowerBound == boundary })
        {
          absorbed.insert(boundary)
          printed.append((range.lowerBound, group.width, "\(first)-\(continuation.upperBound)"))
        } else if range.count == 1 {
          printed.append((range.lowerBound, group.width, first))
        } else {
          let last = Self.format(range.upperBound, width: group.width)
          printed.append((range.lowerBound, group.width, "\(first)-\(last)"))
        }
      }
    }
    for range in plain where !absorbed.contains(range.lowerBound) {
      let text =
        range.count == 1 ? String(range.lowerBound) : "\(range.lowerBound)-\(range.upperBound)"
      printed.append((range.lowerBound, 1, text))
    }
    printed.sort { $0.lower != $1.lower ? $0.lower < $1.lower : $0.width < $1.width }
    return "[" + printed.map(\.text).joined(separator: ",") + "]"
  }
}

// MARK: - Parser

/// Parses pattern items out of a text's UTF-8 bytes; all offsets are byte offsets into the
/// whole text, so list items report positions in the list.
struct PatternParser {
  let bytes: [UInt8]

  /// Numbers inside brackets may have at most this many digits, so values and products of a
  /// couple of brackets stay far from `Int` overflow.
  static let maximumDigits = 9

  init(_ text: String) {
    bytes = Array(text.utf8)
  }

  private static let open = UInt8(ascii: "[")
  private static let close = UInt8(ascii: "]")
  private static let comma = UInt8(ascii: ",")
  private static let dash = UInt8(ascii: "-")
  private static let dot = UInt8(ascii: ".")
  private static let at = UInt8(ascii: "@")

  static func isDigit(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
  }



  /// The source text between two offsets.
  func text(_ range: Range<Int>) -> String {
    String(decoding: bytes[range], as: UTF8.self)
  }

  /// The character starting at `offset`, escaped for a message, and its length in bytes.
  func character(at offset: Int) -> (shown: String, length: Int) {
    let lead = bytes[offset]
    let length: Int
    switch lead {
    case ..<0x80: length = 1
    case 0xF0...: length = 4
    case 0xE0...: length = 3
    default: length = 2
    }
    let end = min(offset + length, bytes.count)
    let scalars = String(decoding: bytes[offset..<end], as: UTF8.self).unicodeScalars
    return (scalars.map { $0.escaped(asASCII: false) }.joined(), end - offset)
  }

  func invalidCharacter(at offset: Int, in context: String) -> HostPatternError {
    let (shown, length) = character(at: offset)
    return HostPatternError(
      message: "invalid character '\(shown)' in \(context)", offset: offset, length: length)
  }

  /// Parses `bytes[range]` as one pattern item.
  func parseItem(_ range: Range<Int>) throws(HostPatternError) -> HostPattern {
    guard !range.isEmpty else {
      throw HostPatternError(message: "empty host pattern", offset: range.lowerBound)
    }
    let first = bytes[range.lowerBound]
    if first == Self.at {
      return try parseGroup(range)
    }
    if first == Self.dash || first == Self.dot {
      throw HostPatternError(
        message: "host name cannot start with '\(Character(UnicodeScalar(first)))'",
        offset: range.lowerBound)
    }
    var segments: [HostPattern.Segment] = []
    var literalStart = range.lowerBound
    var index = range.lowerBound
    while index < range.upperBound {
      let byte = bytes[index]
      if HostName.isNameByte(byte) {
        index += 1
      } else if byte == Self.open {
        if literalStart < index { segments.append(.literal(text(literalStart..<index))) }
        let (set, end) = try parseBracket(at: index, end: range.upperBound)
        segments.append(.numbers(set))
        index = end
        literalStart = end
      } else if byte == Self.close {
        throw HostPatternError(message: "unmatched ']' in host pattern", offset: index)
      } else {
        throw invalidCharacter(at: index, in: "host pattern")
      }
    }
    if literalStart < index { segments.append(.literal(text(literalStart..<index))) }
    return HostPattern(kind: .name(segments))
  }

  private func parseGroup(_ range: Range<Int>) throws(HostPatternError) -> HostPattern {
    let nameStart = range.lowerBound + 1
    var index = nameStart
    while index < range.upperBound {
      let byte = bytes[index]
      if byte == Self.open {
        throw HostPatternError(
          message: "ranges are not allowed in a group reference: '\(text(index..<range.upperBound))'",
          offset: index, length: range.upperBound - index)
      }
      if !GroupName.isNameByte(byte) {
        throw invalidCharacter(at: index, in: "group name")
      }
      index += 1
    }
    if nameStart == range.upperBound {
      throw HostPatternError(message: "empty group name after '@'", offset: range.lowerBound)
    }
    // The bytes are right; what is left of GroupName's rule is where it starts and how long it is.
    guard let name = GroupName(text(nameStart..<range.upperBound)) else {
      if bytes[nameStart] == Self.dash {
        throw HostPatternError(message: "group name cannot start with '-'", offset: nameStart)
      }
      throw HostPatternError(
        message: "group name is longer than \(GroupName.maximumLength) characters",
        offset: nameStart, length: range.upperBound - nameStart)
    }
    return HostPattern(kind: .group(name))
  }

  /// Parses the bracket whose '[' is at `start`; returns its numbers and the offset just
  /// past its ']'.
  private func parseBracket(at start: Int, end: Int) throws(HostPatternError) -> (NumberSet, Int) {
    let unterminated = HostPatternError(
      message: "unterminated bracket: '\(text(start..<end))'", offset: start,
      length: end - start)
    var index = start + 1
    if index < end, bytes[index] == Self.close {
      throw HostPatternError(message: "empty bracket: '[]'", offset: start, length: 2)
    }
    var items: [NumberSet.Item] = []
    while true {
      guard index < end else { throw unterminated }
      let itemStart = index
      if bytes[index] == Self.comma || bytes[index] == Self.close {
        throw HostPatternError(
          message: "empty item in range list before '\(Character(UnicodeScalar(bytes[index])))'",
          offset: index)
      }
      let lower = try parseNumber(at: index, end: end, unterminated: unterminated)
      index = lower.end
      var upper = lower
      if index < end, bytes[index] == Self.dash {
        upper = try parseNumber(at: index + 1, end: end, unterminated: unterminated)
        index = upper.end
        if lower.value > upper.value {
          throw HostPatternError(
            message: "range is reversed: '\(text(itemStart..<index))'", offset: itemStart,
            length: index - itemStart)
        }
      }
      let width = lower.paddedWidth ?? upper.paddedWidth ?? 1
      if let lowerWidth = lower.paddedWidth, let upperWidth = upper.paddedWidth,
        lowerWidth != upperWidth
      {
        throw HostPatternError(
          message: "inconsistent zero padding: '\(text(itemStart..<index))'", offset: itemStart,
          length: index - itemStart)
      }
      items.append(NumberSet.Item(lower: lower.value, upper: upper.value, width: width))

      guard index < end else { throw unterminated }
      switch bytes[index] {
      case Self.comma:
        index += 1
      case Self.close:
        return (NumberSet(items: items), index + 1)
      default:
        throw unexpected(at: index, expected: "',' or ']'")
      }
    }
  }

  private struct Number {
    var value: Int
    /// The width set by a leading zero (`007` → 3), nil when unpadded.
    var paddedWidth: Int?
    var end: Int
  }

  private func parseNumber(
    at start: Int, end: Int, unterminated: HostPatternError
  ) throws(HostPatternError) -> Number {
    guard start < end else { throw unterminated }
    var index = start
    while index < end, Self.isDigit(bytes[index]) { index += 1 }
    if index == start {
      throw unexpected(at: start, expected: "a number")
    }
    let digits = index - start
    if digits > Self.maximumDigits {
      throw HostPatternError(
        message: "number is too large (more than \(Self.maximumDigits) digits): '\(text(start..<index))'",
        offset: start, length: digits)
    }
    var value = 0
    for byte in bytes[start..<index] { value = value * 10 + Int(byte - UInt8(ascii: "0")) }
    let padded = digits > 1 && bytes[start] == UInt8(ascii: "0")
    return Number(value: value, paddedWidth: padded ? digits : nil, end: index)
  }

  /// The error for an out-of-place character inside a bracket.
  private func unexpected(at offset: Int, expected: String) -> HostPatternError {
    let byte = bytes[offset]
    if byte == Self.open {
      return HostPatternError(message: "nested '[' inside brackets", offset: offset)
    }
    if byte == Self.dash || byte == Self.comma || byte == Self.close {
      return HostPatternError(
        message: "expected \(expected), found '\(Character(UnicodeScalar(byte)))'",
        offset: offset)
    }
    return invalidCharacter(at: offset, in: "range")
  }
}
