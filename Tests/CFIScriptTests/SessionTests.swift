// The REPL's session on a RecordingExecutor: state that lives from entry to entry, entries
// that continue on the next line, the default target, and secrets kept out of saved text.

import CFIScript
import CFISyntax
import Foundation
import Runtime
import Testing
import TestSupport

@Suite struct SessionTests {
  let executor = RecordingExecutor()
  let log = EventLog()

  func session() -> Session {
    Session(executor: executor, sink: log, options: RunOptions(inventory: testInventory(), environment: [:]))
  }

  /// Parses and runs an entry that must be complete and free of errors.
  @discardableResult
  func enter(
    _ text: String, in session: Session, target: Session.DefaultTarget? = nil, retarget: Bool = false
  ) async throws -> (RunResult, Session.Entry) {
    guard case .entry(let entry) = await session.parse(text, target: target, retarget: retarget) else {
      Issue.record("'\(text)' did not parse to an entry")
      throw CancellationError()
    }
    return (await session.run(entry.program, check: false), entry)
  }

  func commands(_ host: String) -> [String] {
    executor.calls(on: host).compactMap { if case .run(let command) = $0 { command } else { nil } }
  }

  @Test func variablesDefsGroupsAndSettingsLiveOnAcrossEntries() async throws {
    let session = session()
    try await enter("let greeting = \"hi\"", in: session)
    try await enter("def hello(name) < run \"echo $greeting $name\" >", in: session)
    try await enter("group pair = pc01, desk2", in: session)
    try await enter("set parallel = 3", in: session)
    let (result, _) = try await enter("on group pair < hello(\"there\") >", in: session)
    #expect(result.outcomes.map(\.host.name) == ["desk2", "pc01"])
    #expect(commands("desk2") == ["echo hi there"])
    #expect(await session.settings.parallel == 3)
    #expect(await session.variables["greeting"] == .string("hi"))
  }

  /// An entry whose block matched no host warns as a runbook does (same event), each time.
  @Test func anEntryWhoseBlockMatchesNoHostSaysSo() async throws {
    let session = session()
    let (result, _) = try await enter("on host pc01 except pc01 < run \"x\" >", in: session)
    #expect(result.unmatchedTargets == 1)
    let (again, _) = try await enter("on host pc01 < run \"x\" >", in: session)
    #expect(again.unmatchedTargets == 0, "counted per entry")
    let targets = log.events.compactMap { if case .noHosts(_, let target, _) = $0 { target } else { nil } }
    #expect(targets == ["on host pc01 except pc01"])
  }

  @Test func anOpenBlockIsIncompleteAndOtherErrorsAreNot() async throws {
    let session = session()
    guard case .incomplete = await session.parse("on group lab <\n") else {
      Issue.record("an open block should continue")
      return
    }
    guard case .incomplete = await session.parse("on group lab <\n  run \"true\"\n") else {
      Issue.record("an open block with a statement should continue")
      return
    }
    guard case .entry = await session.parse("on group lab <\n  run \"true\"\n>\n") else {
      Issue.record("a closed block should be an entry")
      return
    }
    guard case .errors(let diagnostics) = await session.parse("on group lab < frobnicate >\n") else {
      Issue.record("an unknown word should be an error")
      return
    }
    #expect(diagnostics.contains { $0.message.contains("frobnicate") })
    // A syntax error does not end the session: the next entry runs.
    try await enter("on host pc02 < run \"true\" >", in: session)
    #expect(commands("pc02") == ["true"])
  }

  @Test func anUnknownVariableIsAnErrorUntilBound() async throws {
    let session = session()
    guard case .errors = await session.parse("print later") else {
      Issue.record("an unknown variable should be an error")
      return
    }
    try await enter("let later = 1", in: session)
    guard case .entry = await session.parse("print later") else {
      Issue.record("a variable bound by an earlier entry should be known")
      return
    }
  }

  @Test func bareActionsRunOnTheDefaultTarget() async throws {
    let session = session()
    let (target, errors) = await session.parseTarget("host @office except desk10")
    #expect(errors.isEmpty)
    let (result, entry) = try await enter("let x = 2\nrun \"echo $x\"\nprint x", in: session, target: target)
    #expect(result.outcomes.map(\.host.name) == ["desk1", "desk2", "desk3"])
    #expect(commands("desk1") == ["echo 2"])
    #expect(entry.runbookText == "let x = 2\non host @office except desk10 < run \"echo $x\" >\nprint x")
    // Without a target, a bare action is the usual error.
    guard case .errors(let diagnostics) = await session.parse("run \"true\"") else {
      Issue.record("a bare action without a target should be an error")
      return
    }
    #expect(diagnostics.first?.message.contains("inside an 'on' block") == true)
  }

  @Test func aBadTargetIsReported() async throws {
    let (target, errors) = await session().parseTarget("host pc[05-01]")
    #expect(target == nil)
    #expect(errors.first?.message.contains("reversed") == true)
  }

  @Test func retargetingMovesAnEntrysOwnBlocks() async throws {
    let session = session()
    let (target, _) = await session.parseTarget("host pc07")
    let (result, entry) = try await enter("on group lab < run \"true\" >", in: session, target: target, retarget: true)
    #expect(result.outcomes.map(\.host.name) == ["pc07"])
    #expect(entry.runbookText == "on host pc07 < run \"true\" >")
  }

  @Test func nestedBlocksAreRetargetedAndHiddenOnesRefused() async throws {
    let session = session()
    try await enter("def elsewhere() < on group office < run \"true\" > >", in: session)
    let (target, _) = await session.parseTarget("host pc07")
    let text = "if true <\n  for x in [1] < on group lab < run \"echo $x\" > > # loop\n>"
    let (result, entry) = try await enter(text, in: session, target: target, retarget: true)
    #expect(result.outcomes.map(\.host.name) == ["pc07"])
    #expect(entry.runbookText == "if true <\n  for x in [1] < on host pc07 < run \"echo $x\" > > # loop\n>")
    guard case .errors(let diagnostics) = await session.parse("elsewhere()", target: target, retarget: true) else {
      Issue.record("a def that chooses its own hosts cannot be retargeted")
      return
    }
    #expect(diagnostics.first?.message.contains("'elsewhere' chooses its own hosts") == true)
  }

  @Test func aDefAndItsCallInOneEntryRunOnTheTarget() async throws {
    let session = session()
    let (target, _) = await session.parseTarget("host desk3")
    let (result, _) = try await enter("def up() < run \"uptime\" >\nup()", in: session, target: target)
    #expect(result.outcomes.map(\.host.name) == ["desk3"])
    #expect(commands("desk3") == ["uptime"])
  }

  /// The shell's session takes what the browse of its start finds (`RunOptions.discovery`)
  /// until its inventory is replaced (`:discover`, or the shell taking the finished browse):
  /// then the browse changes it no more.
  @Test func anInventoryReplacedIsNotTakenBackByTheStartsBrowse() async throws {
    func snapshot(_ names: [String]) -> InventorySnapshot {
      InventorySnapshot(inventory: Inventory(hosts: names.map { Runtime.Host(name: HostName($0)!, group: "lab") }), entries: [])
    }
    let live = LiveInventory(initial: snapshot(["pc01"]), settled: ["pc01"])
    let session = Session(
      executor: executor, sink: log, options: RunOptions(inventory: live.view.inventory, environment: [:], discovery: live))
    live.update { view in
      view.snapshot = snapshot(["pc01", "pc02"])
      view.settled.insert("pc02")
      view.stage = .cacheRead
    }
    let (first, _) = try await enter(#"on all < run "a" >"#, in: session)
    #expect(first.outcomes.map(\.host.name) == ["pc01", "pc02"])

    await session.replaceInventory(snapshot(["pc01", "pc03"]).inventory)
    live.update { view in
      view.snapshot = snapshot(["pc01", "pc02", "pc04"])
      view.stage = .complete
    }
    let (second, _) = try await enter(#"on all < run "b" >"#, in: session)
    #expect(second.outcomes.map(\.host.name) == ["pc01", "pc03"])
  }

  @Test func aTrailingBackslashContinuesButABrokenIncludeDoesNot() async throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    try directory.write("broken.cfi", "on group lab <\n")
    let session = session()
    guard case .incomplete = await session.parse("print \"a\" \\\n") else {
      Issue.record("a line ending in a backslash should continue")
      return
    }
    guard case .entry = await session.parse("print \"a\" # not a continuation \\\n") else {
      Issue.record("a backslash in a comment should not continue the line")
      return
    }
    guard case .errors = await session.parse("include \"\(directory.path)/broken.cfi\"\n") else {
      Issue.record("an included file that ends inside a block is an error, not more input")
      return
    }
  }

  @Test func secretsBecomeVariablesAndAreRedacted() {
    let hash = "$6$saltsalt$" + String(repeating: "a", count: 86)
    let escaped = hash.replacingOccurrences(of: "$", with: "\\$")
    let text = """
      let h = '\(hash)'
      let e = "\(escaped)"
      on all < password root h > # was \(hash)
      run 'echo "root:\(hash)" | chpasswd -e'
      run "echo $y$b"
      """
    let (saved, variables) = SecretText.hashesAsVariables(text)
    #expect(variables == ["hash_1"])
    #expect(
      saved == """
        let h = hash_1
        let e = hash_1
        on all < password root h > # was <redacted>
        run "echo \\"root:${hash_1}\\" | chpasswd -e"
        run "echo $y$b"
        """)
    #expect(SecretText.redactingHashes("password root '\(hash)'") == "password root '<redacted>'")
    #expect(SecretText.redactingHashes("let e = \"\(escaped)\"") == "let e = \"<redacted>\"")
    #expect(SecretText.redactingHashes("let x = \"$hash\"") == "let x = \"$hash\"")
    // A name the text already uses is not taken.
    #expect(SecretText.hashesAsVariables("let hash_1 = 1\nlet h = '\(hash)'").variables == ["hash_2"])
  }

  /// A hash that `password` refuses (a typo, a legacy method) is a secret all the same.
  @Test(arguments: [
    "$1$saltsalt$abcdefghijklmnopqrstuv", "$6$saltsalt$" + String(repeating: "a", count: 85),
    "$y$j9T$typo$too-short-but-still-a-hash",
  ])
  func hashesThatPasswordWouldRefuseAreRedactedToo(_ hash: String) {
    #expect(SecretText.redactingHashes("password root '\(hash)'") == "password root '<redacted>'")
  }
}
