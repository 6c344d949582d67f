// HostFolding.swift — owns the inverse of host-pattern expansion: folding a set of host
// names into the shortest readable list of patterns (`pc01,pc02,pc03` → `pc[01-03]`,
// `rack1-n01…rack2-n04` → `rack[1-2]-n[01-04]`), and the natural ("human") name order used
// to sort the result. Patterns are printed through `HostPattern`, so every folded pattern
// parses back and expands to exactly the names it came from.

/// Folding of host names into host patterns, and natural ordering of host names.
public enum HostFolding {
  /// Folds host names into the shortest readable list of patterns:
  /// `["pc01","pc02","pc03","pc05","web1"]` → `["pc[01-03,05]", "web1"]`; result sorted in
  /// natural order (pc2 < pc10); duplicates removed.
  ///
  /// Names that differ in one numeric field fold into a bracket on that field; padding is
  /// honoured (`pc1` and `pc01` never share a bracket, `pc09,pc10` → `pc[09-10]`,
  /// `pc9,pc10` → `pc[9-10]`). The last numeric field is folded first, then the others, so a
  /// grid such as `rack1-n01…rack2-n04` becomes `rack[1-2]-n[01-04]`. Names without digits,
  /// and strings that are not plain host names (empty ones are dropped; ones with characters
  /// outside letters, digits, '-', '.', '_' or starting with '-' or '.') are kept verbatim.
  /// Digit runs longer than 9 digits are treated as text. Expanding the result with
  /// `HostPattern` gives back exactly the set of input names.
  public static func fold(_ names: some Sequence<String>) -> [String] {
    var seen = Set<String>()
    var verbatim: [String] = []
    var shapes: [[String]: [[FoldField]]] = [:]
    for name in names where !name.isEmpty && seen.insert(name).inserted {
      guard HostName.isValid(name), let parts = split(name) else {
        verbatim.append(name)
        continue
      }
      shapes[parts.texts, default: []].append(parts.fields)
    }

    var results: [(key: String, text: String)] = verbatim.map { ($0, $0) }
    for (texts, items) in shapes {
      for item in foldShape(items) {
        var segments: [HostPattern.Segment] = []
        var firstName = ""
        for (index, field) in item.enumerated() {
          segments.append(.literal(texts[index]))
          segments.append(.numbers(field.numberSet))
          firstName += texts[index] + NumberSet.format(field.values[0], width: field.width)
        }
        segments.append(.literal(texts[item.count]))
        firstName += texts[item.count]
        let text = HostPattern(kind: .name(segments)).description
        results.append((firstName, text))
      }
    }
    results.sort { left, right in
      if naturalLess(left.key, right.key) { return true }
      if naturalLess(right.key, left.key) { return false }
      return left.text.utf8.lexicographicallyPrecedes(right.text.utf8)
    }
    return results.map(\.text)
  }

  /// fold(...) joined with "," — e.g. "pc[01-09,11],web1".
  public static func foldedString(_ names: some Sequence<String>) -> String {
    fold(names).joined(separator: ",")
  }

  /// Host names folded, as `foldedString` does for their text.
  public static func foldedString(_ names: some Sequence<HostName>) -> String {
    foldedString(names.lazy.map(\.rawValue))
  }

  /// Host names in natural order, as `naturalLess` orders their text.
  public static func naturalLess(_ a: HostName, _ b: HostName) -> Bool { naturalLess(a.rawValue, b.rawValue) }

  /// Natural ("human") order: compares digit runs numerically, e.g. pc2 < pc10,
  /// rack2-n1 < rack10-n1.
  ///
  /// Other characters compare by their UTF-8 bytes (so uppercase sorts before lowercase).
  /// Digit runs of equal value but different zero padding order the shorter run first
  /// (`pc1` < `pc01` < `pc2`), which keeps this a strict total order: two strings are
  /// unordered only when they are equal.
  public static func naturalLess(_ a: String, _ b: String) -> Bool {
    var a = a
    var b = b
    return a.withUTF8 { left in
      b.withUTF8 { right in naturalCompare(left, right) < 0 }
    }
  }

  // MARK: Natural order

  private static func isDigit(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
  }

  /// Three-way natural comparison of two UTF-8 buffers.
  private static func naturalCompare(
    _ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>
  ) -> Int {
    var i = 0
    var j = 0
    var paddingTiebreak = 0
    while i < left.count && j < right.count {
      let x = left[i]
      let y = right[j]
      guard isDigit(x) && isDigit(y) else {
        if x != y { return x < y ? -1 : 1 }
        i += 1
        j += 1
        continue
      }
      // Two digit runs: compare their values without converting (runs may be long).
      let leftStart = i
      let rightStart = j
      while i < left.count && isDigit(left[i]) { i += 1 }
      while j < right.count && isDigit(right[j]) { j += 1 }
      var leftSignificant = leftStart
      while leftSignificant < i - 1 && left[leftSignificant] == UInt8(ascii: "0") {
        leftSignificant += 1
      }
      var rightSignificant = rightStart
      while rightSignificant < j - 1 && right[rightSignificant] == UInt8(ascii: "0") {
        rightSignificant += 1
      }
      let leftDigits = i - leftSignificant
      let rightDigits = j - rightSignificant
      if leftDigits != rightDigits { return leftDigits < rightDigits ? -1 : 1 }
      for offset in 0..<leftDigits {
        let p = left[leftSignificant + offset]
        let q = right[rightSignificant + offset]
        if p != q { return p < q ? -1 : 1 }
      }
      if paddingTiebreak == 0 && i - leftStart != j - rightStart {
        paddingTiebreak = i - leftStart < j - rightStart ? -1 : 1
      }
    }
    if i < left.count { return 1 }
    if j < right.count { return -1 }
    return paddingTiebreak
  }

  // MARK: Folding

  /// Splits a host name into its texts and numeric fields: `rack1-n01` → (["rack", "-n", ""],
  /// [1, 01]). Returns nil when the name has no numeric field. Digit runs longer than the
  /// parser's bracket limit stay part of the text.
  private static func split(_ name: String) -> (texts: [String], fields: [FoldField])? {
    var texts: [String] = []
    var fields: [FoldField] = []
    var current: [UInt8] = []
    let bytes = Array(name.utf8)
    var index = 0
    while index < bytes.count {
      guard isDigit(bytes[index]) else {
        current.append(bytes[index])
        index += 1
        continue
      }
      let start = index
      while index < bytes.count && isDigit(bytes[index]) { index += 1 }
      let run = bytes[start..<index]
      if run.count > PatternParser.maximumDigits {
        current.append(contentsOf: run)
        continue
      }
      texts.append(String(decoding: current, as: UTF8.self))
      current.removeAll(keepingCapacity: true)
      var value = 0
      for byte in run { value = value * 10 + Int(byte - UInt8(ascii: "0")) }
      let padded = run.count > 1 && run.first == UInt8(ascii: "0")
      fields.append(FoldField(values: [value], width: padded ? run.count : 1))
    }
    guard !fields.isEmpty else { return nil }
    texts.append(String(decoding: current, as: UTF8.self))
    return (texts, fields)
  }

  /// Folds the names of one shape (same texts, same number of fields). Each item is one
  /// field set per numeric field; items always stand for disjoint sets of names.
  private static func foldShape(_ names: [[FoldField]]) -> [[FoldField]] {
    guard let fieldCount = names.first?.count else { return [] }
    var items = names
    // One round settles a single field; with several, folding an earlier field can line
    // items up for a later one, so repeat while rounds still merge something (a few rounds
    // at most, keeping the work linear in the number of names).
    let rounds = fieldCount == 1 ? 1 : fieldCount + 1
    for _ in 0..<rounds {
      let before = items.count
      for field in stride(from: fieldCount - 1, through: 0, by: -1) where items.count > 1 {
        items = foldPass(items, on: field)
      }
      if items.count <= 1 || items.count == before { break }
    }
    return items
  }

  /// Merges the items that agree on every field but `field`.
  private static func foldPass(_ items: [[FoldField]], on field: Int) -> [[FoldField]] {
    var groups: [[FoldField]: [Int]] = [:]
    var order: [[FoldField]] = []
    for (index, item) in items.enumerated() {
      var key = item
      key.remove(at: field)
      if groups[key] == nil { order.append(key) }
      groups[key, default: []].append(index)
    }
    if order.count == items.count { return items }
    var result: [[FoldField]] = []
    result.reserveCapacity(order.count)
    for key in order {
      let members = groups[key]!
      if members.count == 1 {
        result.append(items[members[0]])
        continue
      }
      for merged in mergeFields(members.map { items[$0][field] }) {
        var item = key
        item.insert(merged, at: field)
        result.append(item)
      }
    }
    return result
  }

  /// Unions field sets of one field into as few sets as padding allows. Padded sets join
  /// the sets of their width. An unpadded set may join the unpadded group or any padded
  /// width no wider than its smallest number (`10` prints the same padded to 2). It goes
  /// where it continues a run (`9` then `10` → `[9-10]`, `09` then `10` → `[09-10]`), else
  /// to the widest such padded group (`01-09` and `11` → `[01-09,11]`), else to the unpadded
  /// group.
  private static func mergeFields(_ units: [FoldField]) -> [FoldField] {
    var padded: [Int: Set<Int>] = [:]
    var unpadded = Set<Int>()
    var flexible: [FoldField] = []
    for unit in units {
      if unit.width > 1 {
        padded[unit.width, default: []].formUnion(unit.values)
      } else {
        flexible.append(unit)
      }
    }
    let widths = padded.keys.sorted(by: >)
    flexible.sort { $0.values[0] < $1.values[0] }
    for unit in flexible {
      let smallest = unit.values[0]
      let largest = unit.values[unit.values.count - 1]
      if unpadded.contains(smallest - 1) {
        unpadded.formUnion(unit.values)
        continue
      }
      let maximumWidth = NumberSet.digitCount(smallest)
      let compatible = widths.filter { $0 <= maximumWidth }
      let adjacent = compatible.first { width in
        padded[width]!.contains(smallest - 1) || padded[width]!.contains(largest + 1)
      }
      if let width = adjacent ?? compatible.first {
        padded[width]!.formUnion(unit.values)
      } else {
        unpadded.formUnion(unit.values)
      }
    }
    var result: [FoldField] = []
    if !unpadded.isEmpty { result.append(FoldField(values: unpadded.sorted(), width: 1)) }
    for width in widths.reversed() {
      result.append(FoldField(values: padded[width]!.sorted(), width: width))
    }
    return result
  }
}

/// The numbers of one numeric field of a folded item, all printed with one padding width.
struct FoldField: Hashable, Sendable {
  /// Sorted, distinct values.
  let values: [Int]
  /// The padding width; 1 when no value needs padding, so equal printouts compare equal.
  let width: Int

  init(values: [Int], width: Int) {
    self.values = values
    let boundary = NumberSet.powersOfTen[min(max(width - 1, 0), 9)]
    self.width = values.first.map { $0 < boundary } == true ? width : 1
  }

  /// The field as a bracket's number set.
  var numberSet: NumberSet {
    var items: [NumberSet.Item] = []
    var index = 0
    while index < values.count {
      var end = index
      while end + 1 < values.count && values[end + 1] == values[end] + 1 { end += 1 }
      items.append(NumberSet.Item(lower: values[index], upper: values[end], width: width))
      index = end + 1
    }
    return NumberSet(items: items)
  }
}
