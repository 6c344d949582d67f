// Interpreter tests: failing and unreachable hosts, `try`, `fail`, `max_fail` and runtime errors.

import CFIScript
import CFISyntax
import Runtime
import Testing
import TestSupport

@Suite("Interpreter: failures")
struct InterpreterFailureTests {
  @Test func aFailingActionEndsThatHostsBlockOnly() async throws {
    let outcome = try await run(
      """
      on group lab <
        run "first"
        run "second"
        run "third"
      >
      """,
      responder: commandResponder { command, host in
        switch (command, host.name) {
        case ("first", "pc03"): StepResult(status: .changed)
        case ("second", "pc02"): StepResult(status: .failed, exitCode: 1, message: "disk full")
        case ("second", "pc05"): StepResult(status: .failed, exitCode: 2)
        case ("third", "pc01"): StepResult(status: .changed)
        default: nil
        }
      })
    #expect(outcome.commands(on: "pc02") == ["first", "second"])
    #expect(outcome.commands(on: "pc05") == ["first", "second"])
    for host in ["pc01", "pc03", "pc04", "pc06", "pc07", "pc08"] {
      #expect(outcome.commands(on: host) == ["first", "second", "third"])
    }
    #expect(
      outcome.statuses == [
        "pc01": .changed, "pc02": .failed, "pc03": .changed, "pc04": .ok,
        "pc05": .failed, "pc06": .ok, "pc07": .ok, "pc08": .ok,
      ])
    // The host's message says where and why: the executor's message, else the exit status.
    #expect(outcome.message(of: "pc02")?.hasSuffix("/main.cfi:3:3: run: disk full") == true)
    #expect(outcome.message(of: "pc05")?.hasSuffix("/main.cfi:3:3: run: exit status 2") == true)
    #expect(outcome.message(of: "pc01") == nil)
    #expect(outcome.result.error == nil)
    #expect(outcome.result.stoppedByMaxFail == false)
  }

  @Test func aHostThatFailedInOneBlockStillRunsTheNext() async throws {
    let outcome = try await run(
      """
      on host pc01, pc02 < run "a" >
      on host pc01, pc02 < run "b" >
      """,
      responder: commandResponder { command, host in
        command == "a" && host.name == "pc01" ? .failure("boom") : nil
      })
    #expect(outcome.commands(on: "pc01") == ["a", "b"])
    // The run's outcome for a host is its worst over all blocks.
    #expect(outcome.statuses == ["pc01": .failed, "pc02": .ok])
    #expect(outcome.message(of: "pc01")?.hasSuffix("/main.cfi:1:22: run: boom") == true)
  }

  @Test func anUnreachableHostEndsItsBlock() async throws {
    let outcome = try await run(
      """
      on group lab <
        run "a"
        run "b"
      >
      """,
      responder: { _, host in
        host.name == "pc04" ? StepResult(status: .unreachable, message: "no route to host") : StepResult(status: .ok)
      })
    #expect(outcome.commands(on: "pc04") == ["a"])
    #expect(outcome.commands(on: "pc05") == ["a", "b"])
    #expect(outcome.statuses["pc04"] == .unreachable)
    #expect(outcome.message(of: "pc04") == "no route to host")
    #expect(outcome.statuses.values.filter { $0 == .ok }.count == 7)
  }

  @Test func tryToleratesAFailureAndStopsItsBlock() async throws {
    let outcome = try await run(
      """
      on host pc01, pc02 <
        try <
          run "risky"
          run "after-risky"
        >
        run "after-try"
      >
      """,
      responder: commandResponder { command, host in
        command == "risky" && host.name == "pc01" ? .failure("nope") : nil
      })
    #expect(outcome.commands(on: "pc01") == ["risky", "after-try"])
    #expect(outcome.commands(on: "pc02") == ["risky", "after-risky", "after-try"])
    #expect(outcome.statuses == ["pc01": .ok, "pc02": .ok])
    let risky = outcome.log.events.compactMap { event -> (StepInfo, StepResult)? in
      if case .stepFinished(let step, let host, let result) = event, host.name == "pc01", step.label == #"run "risky""# {
        return (step, result)
      }
      return nil
    }
    #expect(risky.count == 1)
    #expect(risky.first?.0.tolerated == true)
    #expect(risky.first?.1.status == .failed)
    // Steps outside the try are not tolerated.
    let afterTry = outcome.log.events.compactMap { event -> StepInfo? in
      if case .stepStarted(let step, _) = event, step.label == #"run "after-try""# { return step }
      return nil
    }
    #expect(afterTry.count == 2)
    #expect(afterTry.allSatisfy { !$0.tolerated })
  }

  @Test func aFailureAfterTryStillFailsTheHost() async throws {
    let outcome = try await run(
      """
      on host pc01 <
        try < run "x" >
        run "y"
        run "z"
      >
      """,
      responder: commandResponder { command, _ in command == "y" ? .failure("y failed") : nil })
    #expect(outcome.commands(on: "pc01") == ["x", "y"])
    #expect(outcome.statuses == ["pc01": .failed])
  }

  @Test func failStatementFailsTheHostUnlessInsideTry() async throws {
    let outcome = try await run(
      """
      on host pc01, pc02 <
        try < fail "tolerated" >
        if host.name == "pc02" < fail "no good: ${host.name}" >
        run "end"
      >
      """)
    #expect(outcome.commands(on: "pc01") == ["end"])
    #expect(outcome.commands(on: "pc02") == [])
    #expect(outcome.statuses == ["pc01": .ok, "pc02": .failed])
    #expect(outcome.message(of: "pc02")?.hasSuffix("/main.cfi:3:28: no good: pc02") == true)
  }

  @Test func maxFailStopsStartingHostsAndTheRun() async throws {
    let outcome = try await run(
      """
      set parallel = 1
      set max_fail = 1
      on group lab < run "work" >
      print "after the block"
      on group office < run "never" >
      """,
      responder: commandResponder { command, host in
        command == "work" && ["pc01", "pc02", "pc03"].contains(host.name) ? .failure("broken") : nil
      })
    #expect(outcome.executor.calls.map(\.host) == ["pc01", "pc02"])
    var expected: [String: StepStatus] = ["pc01": .failed, "pc02": .failed]
    for host in labHosts.dropFirst(2) { expected[host] = .skipped }
    #expect(outcome.statuses == expected)
    #expect(outcome.hostNames == labHosts)
    #expect(outcome.message(of: "pc03") == "not started: more than max_fail hosts failed")
    #expect(outcome.result.stoppedByMaxFail)
    #expect(outcome.log.messages.isEmpty)
    let blocks = outcome.log.events.compactMap { event -> (Int, Bool)? in
      if case .blockFinished(let id, _, let stopped) = event { return (id, stopped) }
      return nil
    }
    #expect(blocks.count == 1)
    #expect(blocks.first?.0 == 1)
    #expect(blocks.first?.1 == true)
  }

  @Test func maxFailNotExceededLetsEveryHostRun() async throws {
    let outcome = try await run(
      """
      set parallel = 1
      set max_fail = 1
      on group lab < run "work" >
      on group office < run "next" >
      """,
      responder: commandResponder { command, host in
        command == "work" && host.name == "pc04" ? .failure("broken") : nil
      })
    #expect(outcome.executor.calls.count == 12)
    #expect(outcome.statuses["pc04"] == .failed)
    #expect(outcome.statuses.values.filter { $0 == .ok }.count == 11)
    #expect(!outcome.result.stoppedByMaxFail)
  }

  @Test func maxFailAsAPercentage() async throws {
    // 25% of the 8 lab hosts is 2: the third failure stops the block.
    let outcome = try await run(
      """
      set parallel = 1
      set max_fail = 25%
      on group lab < run "work" >
      on group office < run "never" >
      """,
      responder: commandResponder { command, host in
        command == "work" && ["pc01", "pc02", "pc03", "pc04"].contains(host.name) ? .failure("broken") : nil
      })
    #expect(outcome.executor.calls.map(\.host) == ["pc01", "pc02", "pc03"])
    #expect(outcome.statuses.filter { $0.value == .skipped }.keys.sorted() == ["pc04", "pc05", "pc06", "pc07", "pc08"])
    #expect(outcome.result.stoppedByMaxFail)
    #expect(!outcome.hostNames.contains("desk1"))
  }

  @Test func maxFailCountsUnreachableHosts() async throws {
    let outcome = try await run(
      """
      set parallel = 1
      set max_fail = 0
      on group lab < run "work" >
      """,
      responder: { _, host in
        host.name == "pc01" ? StepResult(status: .unreachable, message: "timed out") : StepResult(status: .ok)
      })
    #expect(outcome.executor.calls.map(\.host) == ["pc01"])
    #expect(outcome.statuses["pc01"] == .unreachable)
    #expect(outcome.statuses["pc02"] == .skipped)
    #expect(outcome.result.stoppedByMaxFail)
  }

  @Test func aTypeErrorInsideOnFailsThatHostWithItsLocation() async throws {
    let outcome = try await run(
      """
      let n = 3
      on host pc01, pc02 <
        run "before"
        if n < run "x" >
        run "after"
      >
      on host pc01 < run "next block" >
      """)
    #expect(outcome.commands(on: "pc01") == ["before", "next block"])
    #expect(outcome.commands(on: "pc02") == ["before"])
    #expect(outcome.statuses == ["pc01": .failed, "pc02": .failed])
    let message = try #require(outcome.message(of: "pc02"))
    #expect(message.hasSuffix("/main.cfi:4:6: 'if' needs true or false, not a number ('3')"))
    #expect(outcome.result.error == nil)
  }

  @Test func aTypeErrorOutsideOnStopsTheRun() async throws {
    let outcome = try await run(
      """
      on host pc01 < run "first" >
      let n = 3
      if n < print "no" >
      on host pc01 < run "second" >
      """)
    #expect(outcome.commands(on: "pc01") == ["first"])
    let error = try #require(outcome.result.error)
    #expect(error.message == "'if' needs true or false, not a number ('3')")
    #expect(!outcome.result.interrupted)
    let finished = outcome.log.events.compactMap { event -> String?? in
      if case .runFinished(_, _, let error, _, _) = event { return error }
      return nil
    }
    #expect(finished.count == 1)
    #expect(finished.first??.hasSuffix("/main.cfi:3:4: 'if' needs true or false, not a number ('3')") == true)
    // The hosts that ran before the error are still reported.
    #expect(outcome.statuses == ["pc01": .ok])
  }

  @Test func aMissingEnvironmentVariableOutsideOnStopsTheRun() async throws {
    let outcome = try await run(
      """
      let mode = env("CFI_MODE")
      on all < run "never" >
      """)
    #expect(outcome.executor.calls.isEmpty)
    #expect(
      outcome.result.error?.message
        == "environment variable 'CFI_MODE' is not set (give a default: env(\"CFI_MODE\", \"…\"))")
    #expect(outcome.result.outcomes.isEmpty)
  }
}
