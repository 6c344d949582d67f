// HostPatternTests.swift — tests for HostPattern.swift: parsing, expansion, counting,
// canonical text and equality of host patterns, pattern lists, and every parse error with
// its exact offset and length.

import Runtime
import Testing
import TestSupport

@Suite("HostPattern")
struct HostPatternTests {
  // MARK: Expansion

  struct Expansion: Sendable, CustomTestStringConvertible {
    var pattern: String
    var names: [String]
    var testDescription: String { pattern }
  }

  static let expansions: [Expansion] = [
    Expansion(pattern: "web1.example.com", names: ["web1.example.com"]),
    Expansion(pattern: "a_b-c.d", names: ["a_b-c.d"]),
    Expansion(pattern: "pc[01-03]", names: ["pc01", "pc02", "pc03"]),
    Expansion(pattern: "pc[1-3]", names: ["pc1", "pc2", "pc3"]),
    Expansion(pattern: "pc[8-10]", names: ["pc8", "pc9", "pc10"]),
    Expansion(pattern: "pc[08-10]", names: ["pc08", "pc09", "pc10"]),
    Expansion(pattern: "pc[001-003]", names: ["pc001", "pc002", "pc003"]),
    Expansion(pattern: "pc[1-003]", names: ["pc001", "pc002", "pc003"]),
    Expansion(pattern: "pc[0-2]", names: ["pc0", "pc1", "pc2"]),
    Expansion(pattern: "pc[00-02]", names: ["pc00", "pc01", "pc02"]),
    Expansion(pattern: "pc[98-101]", names: ["pc98", "pc99", "pc100", "pc101"]),
    Expansion(pattern: "pc[099-101]", names: ["pc099", "pc100", "pc101"]),
    Expansion(
      pattern: "pc[01-05,07,10-12]",
      names: ["pc01", "pc02", "pc03", "pc04", "pc05", "pc07", "pc10", "pc11", "pc12"]),
    Expansion(pattern: "pc[1-3,2-4]", names: ["pc1", "pc2", "pc3", "pc4"]),
    Expansion(pattern: "pc[5,1-2]", names: ["pc1", "pc2", "pc5"]),
    Expansion(pattern: "pc[3,3,3]", names: ["pc3"]),
    Expansion(pattern: "pc[1,01]", names: ["pc1", "pc01"]),
    Expansion(
      pattern: "pc[09-10,10-11]", names: ["pc09", "pc10", "pc11"]),
    Expansion(
      pattern: "rack[1-2]-n[01-02]",
      names: ["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]),
    Expansion(
      pattern: "r[1-2]c[1-2]n[7]",
      names: ["r1c1n7", "r1c2n7", "r2c1n7", "r2c2n7"]),
    Expansion(pattern: "[1-3]", names: ["1", "2", "3"]),
    Expansion(pattern: "[1-2].example.com", names: ["1.example.com", "2.example.com"]),
    Expansion(pattern: "pc1[0-2]", names: ["pc10", "pc11", "pc12"]),
    Expansion(pattern: "node[7]", names: ["node7"]),
    Expansion(pattern: "pc1234567890123", names: ["pc1234567890123"]),
  ]

  @Test("expands in cartesian order with ascending, deduplicated ranges", arguments: expansions)
  func expands(_ example: Expansion) throws {
    let pattern = try HostPattern(parsing: example.pattern)
    #expect(try pattern.expand() == example.names)
    #expect(pattern.count == example.names.count)
    #expect(pattern.groupReference == nil)
  }

  @Test("description parses back to an equal pattern with the same names", arguments: expansions)
  func descriptionRoundTrips(_ example: Expansion) throws {
    let pattern = try HostPattern(parsing: example.pattern)
    let reparsed = try HostPattern(parsing: pattern.description)
    #expect(reparsed == pattern)
    #expect(reparsed.description == pattern.description)
    #expect(try reparsed.expand() == example.names)
  }

  @Test("padding to width 2 reaches three-digit numbers unpadded")
  func paddingPastWidth() throws {
    let names = try HostPattern(parsing: "pc[01-100]").expand()
    #expect(names.count == 100)
    #expect(names.first == "pc01")
    #expect(names[8...10] == ["pc09", "pc10", "pc11"])
    #expect(names.last == "pc100")
    #expect(Set(names).count == 100)
  }

  // MARK: Canonical text and equality

  @Test(
    "description is the normalized text",
    arguments: [
      ("pc[3,1-2]", "pc[1-3]"),
      ("pc[1,2,3]", "pc[1-3]"),
      ("pc[1-3,2-4]", "pc[1-4]"),
      ("pc[7]", "pc7"),
      ("pc[01]", "pc01"),
      ("pc[01-100]", "pc[01-100]"),
      ("pc[01-09,10-100]", "pc[01-100]"),
      ("pc[01-10,10-12]", "pc[01-12]"),
      ("pc[5,01-02]", "pc[01-02,5]"),
      ("pc[1,01]", "pc[1,01]"),
      ("rack[1-2]-n[01-04]", "rack[1-2]-n[01-04]"),
      ("[1-2][3]", "[1-2]3"),
      ("web1.example.com", "web1.example.com"),
      ("@lab", "@lab"),
    ])
  func canonicalDescription(_ text: String, _ expected: String) throws {
    #expect(try HostPattern(parsing: text).description == expected)
  }

  @Test("different spellings of the same ranges are equal and hash alike")
  func equality() throws {
    let a = try HostPattern(parsing: "pc[1-3]")
    let b = try HostPattern(parsing: "pc[3,2,1]")
    #expect(a == b)
    #expect(Set([a, b]).count == 1)
    #expect(try HostPattern(parsing: "pc[7]") == HostPattern(parsing: "pc7"))
    #expect(try HostPattern(parsing: "pc[1-3]") != HostPattern(parsing: "pc[01-03]"))
    #expect(try HostPattern(parsing: "@lab") != HostPattern(parsing: "lab"))
  }

  // MARK: Counting and limits

  @Test("count multiplies brackets and saturates instead of overflowing")
  func counting() throws {
    #expect(try HostPattern(parsing: "rack[1-2]-n[01-04]").count == 8)
    #expect(try HostPattern(parsing: "pc[1-999999999]").count == 999_999_999)
    #expect(try HostPattern(parsing: "a[1-999999999]b[1-999999999]c[1-999999999]").count == Int.max)
    #expect(try HostPattern(parsing: "@lab").count == 0)
  }

  @Test("the default limit is 100,000 names")
  func defaultLimit() throws {
    #expect(HostPattern.expansionLimit == 100_000)
    #expect(try HostPattern(parsing: "n[1-100000]").expand().count == 100_000)
    let tooMany = try HostPattern(parsing: "n[1-100001]")
    let error = #expect(throws: HostPatternError.self) { try tooMany.expand() }
    #expect(
      error == HostPatternError(
        message: "pattern expands to 100001 hosts, more than the limit of 100000",
        offset: 0, length: 11))
  }

  @Test("an explicit limit applies to the cartesian product")
  func explicitLimit() throws {
    let pattern = try HostPattern(parsing: "r[1-2]n[1-3]")
    #expect(try pattern.expand(limit: 6).count == 6)
    let error = #expect(throws: HostPatternError.self) { try pattern.expand(limit: 5) }
    #expect(error?.message == "pattern expands to 6 hosts, more than the limit of 5")
  }

  // MARK: Group references

  @Test("a group reference names its group and cannot be expanded")
  func groupReference() throws {
    let pattern = try HostPattern(parsing: "@lab-2_b")
    #expect(pattern.groupReference == "lab-2_b")
    #expect(pattern.count == 0)
    #expect(pattern.description == "@lab-2_b")
    let error = #expect(throws: HostPatternError.self) { try pattern.expand() }
    #expect(
      error == HostPatternError(
        message: "cannot expand group reference '@lab-2_b'; resolve the group first",
        offset: 0, length: 8))
  }

  // MARK: Lists

  @Test("lists split at top-level commas and allow spaces around items")
  func parsesLists() throws {
    let patterns = try HostPattern.parseList(" pc[1,3-4] ,\tweb1, @lab ,rack[1-2]-n[01,03]")
    #expect(patterns.map(\.description) == ["pc[1,3-4]", "web1", "@lab", "rack[1-2]-n[01,03]"])
    #expect(patterns.map(\.groupReference) == [nil, nil, "lab", nil])
    #expect(try HostPattern.parseList("pc1") == [HostPattern(parsing: "pc1")])
  }

  struct Failure: Sendable, CustomTestStringConvertible {
    var text: String
    var message: String
    var offset: Int
    var length: Int
    var testDescription: String { "\"\(text)\"" }
  }

  static let listFailures: [Failure] = [
    Failure(text: "", message: "empty host list", offset: 0, length: 1),
    Failure(text: "   ", message: "empty host list", offset: 0, length: 3),
    Failure(text: "a,,b", message: "empty item in host list", offset: 2, length: 1),
    Failure(text: "a, ,b", message: "empty item in host list", offset: 2, length: 1),
    Failure(text: "a,b,", message: "empty item in host list", offset: 4, length: 1),
    Failure(text: ",a", message: "empty item in host list", offset: 0, length: 1),
    Failure(text: "pc1, pc[05-01]", message: "range is reversed: '05-01'", offset: 8, length: 5),
    Failure(text: "x,pc[1,2", message: "unterminated bracket: '[1,2'", offset: 4, length: 4),
    Failure(
      text: "web1, pc[1-2] x", message: "invalid character ' ' in host pattern", offset: 13,
      length: 1),
    Failure(text: "a, b]", message: "unmatched ']' in host pattern", offset: 4, length: 1),
    Failure(text: "a,-b", message: "host name cannot start with '-'", offset: 2, length: 1),
    Failure(text: "ok,@", message: "empty group name after '@'", offset: 3, length: 1),
    Failure(
      text: "é1,pc[1,,2]", message: "invalid character 'é' in host pattern", offset: 0,
      length: 2),
    Failure(text: "ok, pc[1,,2]", message: "empty item in range list before ','", offset: 9, length: 1),
  ]

  @Test("list errors carry offsets into the whole text", arguments: listFailures)
  func listErrors(_ failure: Failure) {
    let error = #expect(throws: HostPatternError.self) { try HostPattern.parseList(failure.text) }
    #expect(error?.message == failure.message)
    #expect(error?.offset == failure.offset)
    #expect(error?.length == failure.length)
  }

  // MARK: Errors

  static let failures: [Failure] = [
    Failure(text: "", message: "empty host pattern", offset: 0, length: 1),
    Failure(text: "pc 1", message: "invalid character ' ' in host pattern", offset: 2, length: 1),
    Failure(text: " pc1", message: "invalid character ' ' in host pattern", offset: 0, length: 1),
    Failure(text: "pc/1", message: "invalid character '/' in host pattern", offset: 2, length: 1),
    Failure(text: "pc$x", message: "invalid character '$' in host pattern", offset: 2, length: 1),
    Failure(text: "pc,1", message: "invalid character ',' in host pattern", offset: 2, length: 1),
    Failure(text: "pc@1", message: "invalid character '@' in host pattern", offset: 2, length: 1),
    Failure(text: "pc\t1", message: "invalid character '\\t' in host pattern", offset: 2, length: 1),
    Failure(text: "pcé1", message: "invalid character 'é' in host pattern", offset: 2, length: 2),
    Failure(text: "ab🙂", message: "invalid character '🙂' in host pattern", offset: 2, length: 4),
    Failure(text: "-pc", message: "host name cannot start with '-'", offset: 0, length: 1),
    Failure(text: ".pc", message: "host name cannot start with '.'", offset: 0, length: 1),
    Failure(text: "pc[01-", message: "unterminated bracket: '[01-'", offset: 2, length: 4),
    Failure(text: "pc[1,2", message: "unterminated bracket: '[1,2'", offset: 2, length: 4),
    Failure(text: "pc[", message: "unterminated bracket: '['", offset: 2, length: 1),
    Failure(text: "pc[1", message: "unterminated bracket: '[1'", offset: 2, length: 2),
    Failure(text: "pc[]", message: "empty bracket: '[]'", offset: 2, length: 2),
    Failure(text: "pc[1,,3]", message: "empty item in range list before ','", offset: 5, length: 1),
    Failure(text: "pc[,1]", message: "empty item in range list before ','", offset: 3, length: 1),
    Failure(text: "pc[1,]", message: "empty item in range list before ']'", offset: 5, length: 1),
    Failure(text: "pc[05-01]", message: "range is reversed: '05-01'", offset: 3, length: 5),
    Failure(text: "n[1,9-3]", message: "range is reversed: '9-3'", offset: 4, length: 3),
    Failure(text: "pc[a-b]", message: "invalid character 'a' in range", offset: 3, length: 1),
    Failure(text: "pc[1-b]", message: "invalid character 'b' in range", offset: 5, length: 1),
    Failure(text: "pc[1x]", message: "invalid character 'x' in range", offset: 4, length: 1),
    Failure(text: "pc[1 ]", message: "invalid character ' ' in range", offset: 4, length: 1),
    Failure(text: "pc[1[2]]", message: "nested '[' inside brackets", offset: 4, length: 1),
    Failure(text: "pc[[1]]", message: "nested '[' inside brackets", offset: 3, length: 1),
    Failure(text: "pc[1-[2]]", message: "nested '[' inside brackets", offset: 5, length: 1),
    Failure(text: "pc]", message: "unmatched ']' in host pattern", offset: 2, length: 1),
    Failure(text: "pc[1]]", message: "unmatched ']' in host pattern", offset: 5, length: 1),
    Failure(
      text: "pc[1234567890]", message: "number is too large (more than 9 digits): '1234567890'",
      offset: 3, length: 10),
    Failure(
      text: "pc[1-0001234567]", message: "number is too large (more than 9 digits): '0001234567'",
      offset: 5, length: 10),
    Failure(text: "pc[-3]", message: "expected a number, found '-'", offset: 3, length: 1),
    Failure(text: "pc[1-]", message: "expected a number, found ']'", offset: 5, length: 1),
    Failure(text: "pc[1-,2]", message: "expected a number, found ','", offset: 5, length: 1),
    Failure(text: "pc[1-2-3]", message: "expected ',' or ']', found '-'", offset: 6, length: 1),
    Failure(text: "pc[01-001]", message: "inconsistent zero padding: '01-001'", offset: 3, length: 6),
    Failure(text: "@", message: "empty group name after '@'", offset: 0, length: 1),
    Failure(
      text: "@lab[1-2]", message: "ranges are not allowed in a group reference: '[1-2]'",
      offset: 4, length: 5),
    Failure(text: "@la.b", message: "invalid character '.' in group name", offset: 3, length: 1),
    Failure(text: "@lab 1", message: "invalid character ' ' in group name", offset: 4, length: 1),
    // GroupName's rule: what `client enroll --group` refuses, a reference refuses too.
    Failure(text: "@-lab", message: "group name cannot start with '-'", offset: 1, length: 1),
    Failure(
      text: "@" + String(repeating: "g", count: 65), message: "group name is longer than 64 characters",
      offset: 1, length: 65),
  ]

  @Test("parse errors point at the offending part", arguments: failures)
  func parseErrors(_ failure: Failure) {
    let error = #expect(throws: HostPatternError.self) { try HostPattern(parsing: failure.text) }
    #expect(error?.message == failure.message)
    #expect(error?.offset == failure.offset)
    #expect(error?.length == failure.length)
    #expect(error?.description == failure.message)
  }

  @Test("error spans are UTF-8 byte ranges inside the text, or just past its end")
  func errorSpansAreInsideText() throws {
    for failure in Self.failures {
      let text = failure.text
      let error = #expect(throws: HostPatternError.self) { try HostPattern(parsing: text) }
      let span = try #require(error)
      let size = text.utf8.count
      #expect(span.length >= 1)
      #expect(span.offset + span.length <= size || (span.offset == size && span.length == 1))
    }
    #expect(HostPatternError(message: "x", offset: 3, length: 0).length == 1)
  }
}
