// Which hosts a runbook releases before its end (`StepExecutor.release`): those of its last
// block, each once done with it, when nothing that can reach a host follows; never a
// session's entry, which the next entry may follow on the same connections.

import CFIScript
import Runtime
import Testing
import TestSupport

@Suite("Interpreter: hosts released once the run is done with them", .timeLimit(.minutes(1)))
struct InterpreterReleaseTests {
  /// The released hosts, each with the calls made on it by then, by host.
  func releases(_ outcome: Outcome) -> [String: Int] {
    Dictionary(outcome.executor.releases.map { ($0.host, $0.afterCalls) }, uniquingKeysWith: { _, _ in -1 })
  }

  @Test func theLastBlocksHostsAreReleasedAfterTheirLastStep() async throws {
    let outcome = try await run(
      """
      on all < run "first" >
      on host pc01, pc02 < run "a"; run "b" >
      let n = 2
      print "done"
      """)
    // Released once each, after both steps of the last block (and the first block's one);
    // the hosts of the first block alone keep their connections to the end.
    #expect(releases(outcome) == ["pc01": 3, "pc02": 3])
    #expect(outcome.executor.shutdownCount == 1)
  }

  @Test func aFailedOrUnreachableHostIsReleasedToo() async throws {
    let outcome = try await run(
      #"on host pc01, pc02, pc03 < run "x"; run "y" >"#,
      responder: { _, host in
        switch host.name.rawValue {
        case "pc01": StepResult(status: .failed, exitCode: 1)
        case "pc02": StepResult(status: .unreachable, message: "no route")
        default: StepResult(status: .ok)
        }
      })
    #expect(releases(outcome) == ["pc01": 1, "pc02": 1, "pc03": 2])
  }

  @Test func nothingIsReleasedWhenWhatFollowsMayReachAHost() async throws {
    for runbook in [
      "on all < run \"x\" >\nset persist = 5m",
      "on all < run \"x\" >\ngroup g = pc01",
      "for i in [1, 2] < on all < run \"x\" > >",
      "if true < on all < run \"x\" > >",
      "def f() < on all < run \"x\" > >\nf()",
    ] {
      let outcome = try await run(runbook)
      #expect(outcome.executor.releases.isEmpty, "\(runbook)")
    }
  }

  @Test func aSessionsEntriesReleaseNothing() async throws {
    let executor = RecordingExecutor()
    let session = Session(executor: executor, sink: EventLog(), options: RunOptions(inventory: testInventory(), environment: [:]))
    for text in [#"on all < run "x" >"#, #"on host pc01 < run "y" >"#] {
      guard case .entry(let entry) = await session.parse(text, target: nil, retarget: false) else {
        Issue.record("'\(text)' did not parse to an entry")
        return
      }
      _ = await session.run(entry.program, check: false)
    }
    #expect(executor.calls.count == 13)
    #expect(executor.releases.isEmpty)
  }
}
