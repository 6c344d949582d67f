// Interpreter tests: `let NAME = ACTION` binds the step's result; its fields, `try`, the
// handler pattern, and a result used as text.

import CFIScript
import CFISyntax
import Runtime
import Testing
import TestSupport

@Suite("Interpreter: results of actions")
struct InterpreterResultTests {
  /// What each host printed, by host name.
  private func printed(_ outcome: Outcome) -> [String: [String]] {
    var lines: [String: [String]] = [:]
    for case .message(let text, let host?) in outcome.log.events { lines[host.name.rawValue, default: []].append(text) }
    return lines
  }

  @Test func theFieldsFollowTheStepsStatus() async throws {
    let outcome = try await run(
      """
      on host pc[01-04] <
        let r = try run "probe"
        print r.ok r.changed r.failed r.skipped r.status r.exit_code "[${r.output}]" "[${r.stderr}]" "[${r.message}]"
      >
      """,
      responder: { _, host in
        switch host.name.rawValue {
        case "pc01": StepResult(status: .ok, exitCode: 0, output: "  up\n\n", errorOutput: "warning\n")
        case "pc02": StepResult(status: .changed, exitCode: 0, output: "a\nb\n", message: "2 files")
        case "pc03": StepResult(status: .skipped, message: "would run")
        default: StepResult(status: .failed, exitCode: 3, errorOutput: "no such unit\n")
        }
      })
    #expect(
      printed(outcome) == [
        "pc01": ["true false false false ok 0 [up] [warning] []"],
        "pc02": ["true true false false changed 0 [a\nb] [] [2 files]"],
        "pc03": ["true false false true skipped -1 [] [] [would run]"],
        "pc04": ["false false true false failed 3 [] [no such unit] []"],
      ])
    // The tolerated failure does not fail the host; the change counts as one.
    #expect(outcome.statuses == ["pc01": .ok, "pc02": .changed, "pc03": .ok, "pc04": .ok])
  }

  @Test func everyActionGivesAResult() async throws {
    let outcome = try await run(
      """
      on host pc01 <
        let c = copy "etc/app.conf"
        let s = sync
        let i = install "htop"
        let u = upgrade
        print c.status s.status i.status u.status i.output
      >
      """,
      files: ["store/lab/etc/app.conf": "x\n"],
      responder: { action, _ in
        switch action {
        case .copy: StepResult(status: .changed, exitCode: 0, output: ">f+++++++++ etc/app.conf\n", message: "1 file")
        case .install: StepResult(status: .changed, exitCode: 0, output: "Setting up htop\n")
        default: StepResult(status: .ok, exitCode: 0)
        }
      })
    #expect(printed(outcome) == ["pc01": ["changed ok changed ok Setting up htop"]])
  }

  @Test func theHandlerRunsOnlyWhereTheFileChanged() async throws {
    let outcome = try await run(
      """
      on group lab <
        let conf = copy "etc/app.conf"
        if conf.changed < run "systemctl restart app" >
        run "systemctl is-active app"
      >
      """,
      files: ["store/lab/etc/app.conf": "x\n"],
      responder: { action, host in
        if case .copy = action, ["pc02", "pc05"].contains(host.name.rawValue) {
          return StepResult(status: .changed, exitCode: 0, message: "1 file")
        }
        return StepResult(status: .ok, exitCode: 0)
      })
    for host in labHosts {
      let restarted = ["pc02", "pc05"].contains(host)
      #expect(
        outcome.commands(on: host) == (restarted ? ["systemctl restart app"] : []) + ["systemctl is-active app"],
        "\(host)")
    }
  }

  @Test func inCheckModeAHandlerSaysItWouldRun() async throws {
    let outcome = try await run(
      """
      on host pc01, pc02 <
        let conf = copy "etc/app.conf"
        if conf.changed < run "systemctl restart app" >
      >
      """,
      files: ["store/lab/etc/app.conf": "x\n"], check: true,
      responder: { action, host in
        switch action {
        case .copy: host.name == "pc01" ? StepResult(status: .changed, exitCode: 0, message: "would change 1 file") : StepResult(status: .ok, exitCode: 0)
        default: StepResult(status: .skipped, message: "would run")
        }
      })
    #expect(outcome.commands(on: "pc01") == ["systemctl restart app"])
    #expect(outcome.commands(on: "pc02") == [])
    #expect(outcome.executor.calls.allSatisfy { $0.options.check })
  }

  @Test func tryBindsAFailureAsAToleratedStepAndTheHostGoesOn() async throws {
    let outcome = try await run(
      """
      on host pc01, pc02 <
        let r = try run "systemctl restart app"
        if r.failed < run "journalctl -u app" >
        run "after"
      >
      """,
      responder: commandResponder { command, host in
        command.contains("restart") && host.name == "pc01" ? StepResult(status: .failed, exitCode: 1, message: "exit status 1") : nil
      })
    #expect(outcome.commands(on: "pc01") == ["systemctl restart app", "journalctl -u app", "after"])
    #expect(outcome.commands(on: "pc02") == ["systemctl restart app", "after"])
    #expect(outcome.statuses == ["pc01": .ok, "pc02": .ok])
    #expect(ExitStatus.of(outcome.result.end) == 0)
    let restart = outcome.log.events.compactMap { event -> (StepInfo, StepResult)? in
      if case .stepFinished(let step, let host, let result) = event, host.name == "pc01", step.label.contains("restart") {
        return (step, result)
      }
      return nil
    }
    #expect(restart.count == 1)
    #expect(restart.first?.0.tolerated == true)
    #expect(restart.first?.1.status == .failed)
  }

  @Test func withoutTryAFailureStillEndsTheHostsBlock() async throws {
    let outcome = try await run(
      """
      on host pc01, pc02 <
        let r = copy "etc/app.conf"
        run "after"
      >
      """,
      files: ["store/lab/etc/app.conf": "x\n"],
      responder: { action, host in
        if case .copy = action, host.name == "pc01" { return StepResult(status: .failed, exitCode: 23, message: "rsync failed") }
        return StepResult(status: .ok)
      })
    #expect(outcome.commands(on: "pc01") == [])
    #expect(outcome.commands(on: "pc02") == ["after"])
    #expect(outcome.statuses == ["pc01": .failed, "pc02": .ok])
    #expect(outcome.message(of: "pc01")?.hasSuffix("/main.cfi:2:11: copy: rsync failed") == true)
  }

  @Test func tryDoesNotGoOnAfterAnUnreachableHost() async throws {
    let outcome = try await run(
      """
      on host pc01 <
        let r = try run "a"
        run "b"
      >
      """,
      responder: { _, _ in StepResult(status: .unreachable, message: "no route to host") })
    #expect(outcome.commands(on: "pc01") == ["a"])
    #expect(outcome.statuses == ["pc01": .unreachable])
  }

  @Test func aResultUsedAsTextIsItsOutput() async throws {
    let outcome = try await run(
      """
      on host pc01 <
        let k = run "uname -r"
        print k "$k" (k == "6.1.0") (k != "6.1.0") ("6.1" in k) (k in ["6.1.0"]) len(k) ([k] == ["6.1.0"])
        install "linux-headers-$k" k
        run k
      >
      """,
      responder: commandResponder { command, _ in command == "uname -r" ? StepResult(status: .ok, exitCode: 0, output: " 6.1.0\n") : nil })
    #expect(printed(outcome) == ["pc01": ["6.1.0 6.1.0 true false true true 5 true"]])
    #expect(outcome.executor.calls(on: "pc01").contains(.install(packages: ["linux-headers-6.1.0", "6.1.0"])))
    #expect(outcome.commands(on: "pc01") == ["uname -r", "6.1.0"])
  }

  @Test func aDefReadsTheFieldsOfAResultItIsGiven() async throws {
    let outcome = try await run(
      """
      def restart_if_changed(result, unit) < if result.changed < run "systemctl restart $unit" > >
      on host pc01, pc02 <
        let conf = copy "etc/app.conf"
        restart_if_changed(conf, "app")
      >
      """,
      files: ["store/lab/etc/app.conf": "x\n"],
      responder: { action, host in
        if case .copy = action, host.name == "pc02" { return StepResult(status: .changed) }
        return StepResult(status: .ok)
      })
    #expect(outcome.commands(on: "pc01") == [])
    #expect(outcome.commands(on: "pc02") == ["systemctl restart app"])
  }

  @Test func anUnknownFieldFailsTheHostAndListsTheFields() async throws {
    let outcome = try await run(
      """
      def show(result) < print result.chnaged >
      on host pc01 <
        let r = run "x"
        show(r)
      >
      """)
    #expect(outcome.statuses == ["pc01": .failed])
    #expect(
      outcome.message(of: "pc01")?.hasSuffix(
        "the result of an action has no field 'chnaged'; its fields are ok, changed, failed, skipped, status, exit_code, output, stderr and message")
        == true)
  }

  @Test func aResultIsNoCondition() async throws {
    let outcome = try await run("on host pc01 < let r = run \"x\"; if r < run \"y\" > >")
    #expect(outcome.statuses == ["pc01": .failed])
    #expect(outcome.message(of: "pc01")?.hasSuffix("ask a field of it, such as .ok or .changed") == true)
  }
}
