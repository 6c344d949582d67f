// StatementWalkTests.swift — the one walk over statements: its order, what counts as inside a
// statement (blocks, else blocks, includes, calls when asked), and the visitor's control.

import CFIScript
import CFISyntax
import Testing

@Suite("Statement walk")
struct StatementWalkTests {
  /// Parses `text`; `include "NAME"` loads `files[NAME]`.
  static func parse(_ text: String, files: [String: String] = [:]) throws -> Program {
    let runbook = try Loader.load(path: "main.cfi") { path in
      if path.hasSuffix("main.cfi") { return FileContents(bytes: Array(text.utf8)) }
      let name = String(path.split(separator: "/").last ?? "")
      guard let included = files[name] else { throw MissingFile.missing }
      return FileContents(bytes: Array(included.utf8))
    }
    #expect(runbook.diagnostics.filter { $0.severity == .error }.isEmpty, "\(runbook.diagnostics.map(\.message))")
    return runbook.program
  }

  enum MissingFile: Error { case missing }

  /// Records `>kind` on visit and `<kind` on leave (not for `print`, which has no children);
  /// skips or stops at statements named so.
  struct Recorder: StatementVisitor {
    var trace: [String] = []
    var skip: Set<String> = []
    var stopAt: String?
    mutating func visit(_ statement: Statement) -> WalkDecision {
      let name = StatementWalkTests.name(statement)
      trace.append(">" + name)
      if name == stopAt { return .stop }
      return skip.contains(name) ? .skipChildren : .enter
    }
    mutating func leave(_ statement: Statement) {
      let name = StatementWalkTests.name(statement)
      if !name.hasPrefix("print") { trace.append("<" + name) }
    }
  }

  /// A statement's kind, and for `print` its first argument's text.
  static func name(_ statement: Statement) -> String {
    switch statement.kind {
    case .print(let values): "print " + (values.first?.literalString ?? "?")
    case .on: "on"
    case .if: "if"
    case .for: "for"
    case .try: "try"
    case .def(let name, _, _): "def " + name.name
    case .call(let name, _): "call " + name.name
    case .include: "include"
    case .action: "action"
    default: "other"
    }
  }

  static func trace(_ program: Program, following: Bool = false, skip: Set<String> = [], stopAt: String? = nil)
    -> ([String], Bool)
  {
    var recorder = Recorder(skip: skip, stopAt: stopAt)
    let walk = StatementWalk(following: following ? StatementWalk.defs(in: program.statements).mapValues(\.body) : [:])
    let finished = walk.walk(program.statements, &recorder)
    return (recorder.trace, finished)
  }

  @Test func blocksInSourceOrderThenElse() throws {
    let program = try StatementWalkTests.parse(
      """
      print "a"
      if true < print "b" > else < for x in [1] < print "c" > >
      try < on all < print "d" > >
      """)
    #expect(
      StatementWalkTests.trace(program).0 == [
        ">print a", ">if", ">print b", ">for", ">print c", "<for", "<if", ">try", ">on", ">print d", "<on", "<try",
      ])
  }

  @Test func includesAreEntered() throws {
    let program = try StatementWalkTests.parse("include \"lib.cfi\"\nprint \"after\"\n", files: ["lib.cfi": "print \"in lib\"\n"])
    #expect(StatementWalkTests.trace(program).0 == [">include", ">print in lib", "<include", ">print after"])
  }

  @Test func callsAreFollowedOnlyWhenAskedAndOncePerWalk() throws {
    let program = try StatementWalkTests.parse(
      """
      def f() < print "in f"; f() >
      f()
      f()
      """)
    // Without defs to follow, a call has no children; a def's body is its child.
    #expect(
      StatementWalkTests.trace(program, skip: ["def f"]).0 == [">def f", ">call f", "<call f", ">call f", "<call f"])
    // Following: the first call enters f once (the recursive call and the second call do not).
    #expect(
      StatementWalkTests.trace(program, following: true, skip: ["def f"]).0 == [
        ">def f", ">call f", ">print in f", ">call f", "<call f", "<call f", ">call f", "<call f",
      ])
  }

  @Test func skipAndStop() throws {
    let program = try StatementWalkTests.parse("on all < print \"a\" >\nprint \"b\"\nprint \"c\"\n")
    #expect(StatementWalkTests.trace(program, skip: ["on"]).0 == [">on", ">print b", ">print c"])
    let (trace, finished) = StatementWalkTests.trace(program, stopAt: "print b")
    #expect(trace == [">on", ">print a", "<on", ">print b"])
    #expect(!finished)
  }

  @Test func queries() throws {
    let program = try StatementWalkTests.parse(
      """
      include "lib.cfi"
      def g() < on all < run "x" > >
      if true < set discovery = off >
      """, files: ["lib.cfi": "set discovery = off\ndef h(a) < print a >\n"])
    #expect(Set(StatementWalk.defs(in: program.statements).keys) == ["g", "h"])
    // Only the top level and includes count for discovery: the `if` may not run.
    #expect(program.turnsDiscoveryOff)
    let withoutInclude = try StatementWalkTests.parse("if true < set discovery = off >\n")
    #expect(!withoutInclude.turnsDiscoveryOff)
    let isOn: (Statement) -> Bool = { if case .on = $0.kind { true } else { false } }
    #expect(StatementWalk().contains(program.statements, where: isOn))
    #expect(!StatementWalk().contains(program.statements, entering: { if case .def = $0.kind { false } else { true } }, where: isOn))
  }
}
