// HostFoldingTests.swift — tests for HostFolding.swift: folding host names into patterns
// (padding, multi-field grids, ordering, verbatim names), natural order, folding 10,000
// names, and the round-trip property against HostPattern expansion.

import Runtime
import Testing

@Suite("HostFolding")
struct HostFoldingTests {
  /// `value` zero-padded to `width` digits.
  static func padded(_ value: Int, _ width: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
  }

  // MARK: Folding

  struct Fold: Sendable, CustomTestStringConvertible {
    var names: [String]
    var folded: [String]
    var testDescription: String { names.joined(separator: ",") }
  }

  static let foldExamples: [Fold] = [
    Fold(names: ["pc01", "pc02", "pc03", "pc05", "web1"], folded: ["pc[01-03,05]", "web1"]),
    Fold(names: ["pc9", "pc10"], folded: ["pc[9-10]"]),
    Fold(names: ["pc09", "pc10"], folded: ["pc[09-10]"]),
    Fold(names: ["pc08", "pc09", "pc10", "pc11"], folded: ["pc[08-11]"]),
    Fold(names: ["pc099", "pc100", "pc101"], folded: ["pc[099-101]"]),
    Fold(names: ["pc1", "pc01"], folded: ["pc1", "pc01"]),
    Fold(names: ["pc01", "pc2", "pc1", "pc02"], folded: ["pc[1-2]", "pc[01-02]"]),
    Fold(names: ["pc5", "pc05", "pc005"], folded: ["pc5", "pc05", "pc005"]),
    Fold(names: ["pc9", "pc10", "pc01"], folded: ["pc01", "pc[9-10]"]),
    Fold(names: ["pc10", "pc2", "pc1"], folded: ["pc[1-2,10]"]),
    Fold(names: ["pc3", "pc1", "pc3", "pc2", "pc1"], folded: ["pc[1-3]"]),
    Fold(names: ["b", "a", "a"], folded: ["a", "b"]),
    Fold(names: ["web", "db2", "db1"], folded: ["db[1-2]", "web"]),
    Fold(names: [], folded: []),
    Fold(names: [""], folded: []),
    Fold(names: ["pc7"], folded: ["pc7"]),
    Fold(names: ["1", "3", "2"], folded: ["[1-3]"]),
    Fold(
      names: ["node2.example.com", "node1.example.com", "node3.example.org"],
      folded: ["node[1-2].example.com", "node3.example.org"]),
    Fold(names: ["n1a", "n2a", "n1b"], folded: ["n[1-2]a", "n1b"]),
    Fold(names: ["x1y1", "x2y1", "x3y1"], folded: ["x[1-3]y1"]),
    Fold(names: ["a1b1", "a1b2", "a2b1"], folded: ["a1b[1-2]", "a2b1"]),
    Fold(
      names: ["rack1-n01", "rack1-n02", "rack2-n01"], folded: ["rack1-n[01-02]", "rack2-n01"]),
    Fold(
      names: ["rack1-n01", "rack1-n02", "rack1-n03", "rack1-n04",
              "rack2-n01", "rack2-n02", "rack2-n03", "rack2-n04"],
      folded: ["rack[1-2]-n[01-04]"]),
    Fold(
      names: ["r1-c1-n1", "r1-c1-n2", "r1-c2-n1", "r1-c2-n2",
              "r2-c1-n1", "r2-c1-n2", "r2-c2-n1", "r2-c2-n2"],
      folded: ["r[1-2]-c[1-2]-n[1-2]"]),
    Fold(names: ["n12345678901", "n12345678902"], folded: ["n12345678901", "n12345678902"]),
    Fold(names: ["bad name", "pc1", "-x1", "a,b"], folded: ["-x1", "a,b", "bad name", "pc1"]),
  ]

  @Test("folds names into patterns in natural order", arguments: foldExamples)
  func folds(_ example: Fold) throws {
    #expect(HostFolding.fold(example.names) == example.folded)
  }

  @Test("folded patterns expand back to exactly the input names", arguments: foldExamples)
  func foldsRoundTrip(_ example: Fold) throws {
    let plain = example.names.filter { name in
      !name.isEmpty && (try? HostPattern(parsing: name).expand()) == [name]
    }
    let expanded = try HostFolding.fold(plain).flatMap { try HostPattern(parsing: $0).expand() }
    #expect(expanded.count == Set(plain).count)
    #expect(Set(expanded) == Set(plain))
  }

  @Test("foldedString joins the folded patterns with commas")
  func foldedString() {
    let names = (1...9).map { "pc0\($0)" } + ["web1", "pc11"]
    #expect(HostFolding.foldedString(names) == "pc[01-09,11],web1")
    #expect(HostFolding.foldedString([String]()) == "")
  }

  @Test("fold accepts any sequence of strings")
  func foldsLazySequences() {
    let names = (1...4).lazy.map { "n\($0)" }
    #expect(HostFolding.fold(names) == ["n[1-4]"])
    #expect(HostFolding.fold(Set(["b1", "b2"])) == ["b[1-2]"])
  }

  @Test("folds 10,000 padded names into one pattern")
  func foldsTenThousandPaddedNames() throws {
    let names = (1...10_000).map { "n" + Self.padded($0, 5) }
    let folded = HostFolding.fold(names.reversed())
    #expect(folded == ["n[00001-10000]"])
    #expect(try HostPattern(parsing: folded[0]).expand() == names)
  }

  @Test("folds a 100 × 100 grid into one pattern")
  func foldsTenThousandGridNames() throws {
    var names: [String] = []
    for rack in 1...100 {
      for node in 1...100 { names.append("rack\(rack)-n" + Self.padded(node, 3)) }
    }
    let folded = HostFolding.fold(names)
    #expect(folded == ["rack[1-100]-n[001-100]"])
    #expect(try HostPattern(parsing: folded[0]).expand() == names)
  }

  // MARK: Round trip on random names

  /// A small deterministic generator (SplitMix64), so failures are reproducible.
  struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  static func randomNames(seed: UInt64, count: Int) -> [String] {
    var random = SplitMix64(state: seed)
    var names: [String] = []
    for _ in 0..<count {
      let number = Int.random(in: 0...130, using: &random)
      switch Int.random(in: 0..<7, using: &random) {
      case 0: names.append("pc" + padded(number, Int.random(in: 1...3, using: &random)))
      case 1:
        let rack = Int.random(in: 1...4, using: &random)
        names.append("rack\(rack)-n" + padded(number % 24, 2))
      case 2: names.append("web\(number).example.com")
      case 3: names.append(["db", "gateway", "mail.example.org"].randomElement(using: &random)!)
      case 4:
        let a = Int.random(in: 0...3, using: &random)
        let b = Int.random(in: 8...11, using: &random)
        names.append("x\(a)y" + padded(b, Int.random(in: 1...2, using: &random)) + "z\(number % 5)")
      case 5: names.append("\(number)")
      default: names.append("node\(number)_" + padded(number % 7, 2) + "-gpu")
      }
    }
    return names
  }

  @Test(
    "expanding the folded patterns gives back exactly the same set",
    arguments: [1, 2, 3, 42, 2024] as [UInt64])
  func randomRoundTrip(seed: UInt64) throws {
    let names = Self.randomNames(seed: seed, count: 300)
    let folded = HostFolding.fold(names)
    let patterns = try HostPattern.parseList(folded.joined(separator: ","))
    let expanded = try patterns.flatMap { try $0.expand() }
    #expect(expanded.count == Set(names).count, "no name is produced twice")
    #expect(Set(expanded) == Set(names))
    #expect(folded.count < Set(names).count)
    #expect(patterns.map(\.description) == folded, "folded text is canonical")
    var random = SplitMix64(state: seed &+ 1)
    #expect(HostFolding.fold(names.shuffled(using: &random)) == folded, "order does not matter")
    #expect(HostFolding.fold(expanded) == folded, "folding is stable")
  }

  // MARK: Natural order

  @Test(
    "natural order compares digit runs numerically",
    arguments: [
      ("pc2", "pc10", true),
      ("pc10", "pc2", false),
      ("rack2-n1", "rack10-n1", true),
      ("rack10-n1", "rack2-n1", false),
      ("rack2-n10", "rack2-n9", false),
      ("pc1", "pc1", false),
      ("pc1", "pc01", true),
      ("pc01", "pc1", false),
      ("pc01", "pc2", true),
      ("n9", "n00010", true),
      ("pc", "pc1", true),
      ("pc1", "pc", false),
      ("a-1", "a1", true),
      ("B", "a", true),
      ("a", "b", true),
      ("", "a", true),
      ("a", "", false),
      ("x99999999999999999999", "x100000000000000000000", true),
      ("x100000000000000000000", "x99999999999999999999", false),
    ])
  func naturalLess(_ a: String, _ b: String, _ expected: Bool) {
    #expect(HostFolding.naturalLess(a, b) == expected)
  }

  @Test("natural order sorts host names the way people count")
  func naturalSort() {
    let names = ["pc10", "web1", "pc2", "pc01", "pc1", "rack10-n1", "rack2-n1", "pc"]
    #expect(
      names.sorted(by: HostFolding.naturalLess)
        == ["pc", "pc1", "pc01", "pc2", "pc10", "rack2-n1", "rack10-n1", "web1"])
  }
}
