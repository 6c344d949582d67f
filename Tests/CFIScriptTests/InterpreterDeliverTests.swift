// `set deliver`: the runbook asks that the hosts it finds unreachable get it later. The
// interpreter only says so in the run's end (`RunEnd.deliver`); what is recorded is FleetRun's.

import CFIScript
import CFISyntax
import Runtime
import Testing
import TestSupport

@Suite struct InterpreterDeliverTests {
  @Test func untilDoneAsksTheRunToDeliver() async throws {
    let outcome = try await run(
      """
      set deliver = until_done
      on group lab < run "x" >
      """)
    #expect(outcome.result.deliver)
    #expect(outcome.result.end.deliver)
  }

  @Test func offIsTheDefaultAndTheLastValueSetDecides() async throws {
    #expect(try await run("on group lab < run \"x\" >").result.end.deliver == false)
    let off = try await run(
      """
      set deliver = until_done
      on group lab < run "x" >
      set deliver = off
      """)
    #expect(off.result.end.deliver == false)
  }

  @Test func itIsARunSettingSoBlocksBeforeItCountToo() async throws {
    // The setting is about the run, not the blocks after it: set after the block, it still
    // asks for every host the run found unreachable (FleetRun reads it at the end).
    let outcome = try await run(
      """
      on group lab < run "x" >
      if len(args) == 0 < set deliver = until_done >
      """,
      responder: { _, host in
        host.name.rawValue == "pc02" ? StepResult(status: .unreachable, message: "no route") : StepResult(status: .ok)
      })
    #expect(outcome.result.end.deliver)
    #expect(outcome.statuses["pc02"] == .unreachable)
  }

  @Test func aRunStoppedByAnErrorStillSaysWhatWasSet() async throws {
    let outcome = try await run(
      """
      set deliver = until_done
      fail "stop here"
      """)
    #expect(outcome.result.error != nil)
    #expect(outcome.result.end.deliver)
  }

  @Test func theResolverTakesOnlyTheWords() {
    let accepted = "set deliver = until_done\nset deliver = off\nset deliver = false\n"
    #expect(Self.errors(accepted).isEmpty)
    #expect(Self.errors("set deliver = on") == ["'deliver' must be until_done or off, not on; did you mean 'until_done'?"])
    #expect(
      Self.errors("set deliver = until_don") == ["'deliver' must be until_done or off, not 'until_don'; did you mean 'until_done'?"])
    #expect(
      Self.errors("let m = 1\nset deliver = m") == ["'deliver' must be until_done or off, not the variable 'm': it takes only those words"])
    #expect(Self.errors("set deliver = \"until_done\"") == ["'deliver' must be until_done or off, not a string"])
  }

  @Test func theShellRefusesUntilDoneWithAClearMessage() async throws {
    let session = Session(executor: RecordingExecutor(), sink: EventLog(), options: RunOptions(inventory: testInventory(), environment: [:]))
    guard case .errors(let diagnostics) = await session.parse("set deliver = until_done") else {
      Issue.record("the shell must refuse 'set deliver = until_done'")
      return
    }
    #expect(diagnostics.first?.message.contains("the interactive shell records no deliveries") == true)
    #expect(diagnostics.first?.message.contains("cfi-sh deliver RUNBOOK") == true)
    guard case .entry = await session.parse("set deliver = off") else {
      Issue.record("'set deliver = off' asks nothing of the shell")
      return
    }
  }

  /// The resolver's error messages for a runbook.
  private static func errors(_ text: String) -> [String] {
    let runbook = Loader.load(text: Array(text.utf8), name: "t.cfi")
    return (runbook.diagnostics + Resolver.check(runbook, context: ResolverContext()))
      .filter { $0.severity == .error }.map(\.message)
  }
}
