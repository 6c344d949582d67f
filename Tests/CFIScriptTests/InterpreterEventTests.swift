// Interpreter tests: the events a run emits, `print`, and secrets kept out of them.

import CFIScript
import CFISyntax
import Runtime
import Testing
import TestSupport

@Suite("Interpreter: events")
struct InterpreterEventTests {
  @Test func eventsOfASmallRunComeInOrder() async throws {
    let outcome = try await run(
      """
      on host pc01, pc02 <
        run "a"
        print "hello from ${host.name}"
        run "b"
      >
      print "done"
      """,
      responder: commandResponder { command, host in
        command == "a" && host.name == "pc02" ? .failure("a failed") : nil
      })
    // Per host, the sequence is fixed; the two hosts interleave freely.
    func trace(of host: String) -> [String] {
      outcome.log.events.compactMap { event in
        switch event {
        case .stepStarted(let step, let h) where h.name.rawValue == host: "start \(step.label)"
        case .stepFinished(let step, let h, let result) where h.name.rawValue == host: "finish \(step.label) \(result.status)"
        case .message(let text, let h?) where h.name.rawValue == host: "print \(text)"
        case .hostFinished(_, let o) where o.host.name.rawValue == host: "host \(o.status)"
        default: nil
        }
      }
    }
    #expect(
      trace(of: "pc01") == [
        #"start run "a""#, #"finish run "a" ok"#, "print hello from pc01", #"start run "b""#, #"finish run "b" ok"#,
        "host ok",
      ])
    #expect(trace(of: "pc02") == [#"start run "a""#, #"finish run "a" failed"#, "host failed"])
    let outline = outcome.log.events.compactMap { event -> String? in
      switch event {
      case .runStarted(let runbook, let check, _, _): "runStarted \(runbook) \(check)"
      case .blockStarted(let info): "blockStarted \(info.id) \(info.label) \(info.hosts.map(\.name.rawValue))"
      case .blockFinished(let id, let outcomes, let stopped): "blockFinished \(id) \(outcomes.map(\.status.rawValue)) \(stopped)"
      case .message(let text, nil): "print \(text)"
      case .runFinished(let outcomes, let interrupted, let error, _, _):
        "runFinished \(outcomes.map(\.status.rawValue)) \(interrupted) \(error ?? "-")"
      default: nil
      }
    }
    #expect(
      outline == [
        "runStarted main.cfi false",
        #"blockStarted 1 on host pc01, pc02 ["pc01", "pc02"]"#,
        #"blockFinished 1 ["ok", "failed"] false"#,
        "print done",
        #"runFinished ["ok", "failed"] false -"#,
      ])
    #expect(outcome.log.messages == ["hello from pc01", "done"])
    let stepLocations = outcome.log.events.compactMap { event -> String? in
      if case .stepStarted(let step, let host) = event, host.name == "pc01" { return step.location }
      return nil
    }
    #expect(stepLocations.count == 2)
    #expect(stepLocations.first?.hasSuffix("/main.cfi:2:3") == true)
    #expect(stepLocations.last?.hasSuffix("/main.cfi:4:3") == true)
  }

  @Test func eventsStayCoherentAcrossBlocksFailuresAndSkips() async throws {
    let outcome = try await run(
      """
      set parallel = 3
      on group office < run "a"; try < run "b" >; run "c" >
      set max_fail = 1
      set parallel = 1
      on group lab < run "d"; run "e" >
      on all < run "never" >
      """,
      responder: commandResponder { command, host in
        switch (command, host.name) {
        case ("b", "desk2"), ("c", "desk3"), ("d", "pc02"), ("e", "pc03"): .failure("no")
        case ("a", "desk10"): StepResult(status: .unreachable)
        default: nil
        }
      })
    let events = outcome.log.events
    expectCoherent(events)
    let blockIDs = events.compactMap { event -> Int? in
      if case .blockStarted(let info) = event { return info.id }
      return nil
    }
    #expect(blockIDs == [1, 2])
    #expect(
      outcome.statuses == [
        "desk1": .ok, "desk2": .ok, "desk3": .failed, "desk10": .unreachable,
        "pc01": .ok, "pc02": .failed, "pc03": .failed, "pc04": .skipped, "pc05": .skipped,
        "pc06": .skipped, "pc07": .skipped, "pc08": .skipped,
      ])
    #expect(outcome.result.stoppedByMaxFail)
  }

  /// A block whose target matched no host says so (naming the target) and the run counts it:
  /// a run that did nothing must not look like a success.
  @Test func aBlockThatMatchesNoHostIsReportedAndCounted() async throws {
    let outcome = try await run(
      """
      on host pc01 except pc01 < run "never" >
      on host pc01 < run "a" >
      for g in [] < print g >
      on all except @lab, @office < run "never" >
      """)
    let events = outcome.log.events
    expectCoherent(events)
    let noHosts = events.compactMap { event -> String? in
      if case .noHosts(let block, let target, let location) = event {
        return "\(block) \(target) \(location.split(separator: "/").last ?? "")"
      }
      return nil
    }
    #expect(noHosts == ["1 on host pc01 except pc01 main.cfi:1:1", "3 on all except @lab, @office main.cfi:4:1"])
    // Right after its block started.
    let order = events.compactMap { event -> String? in
      switch event {
      case .blockStarted(let info): "started \(info.id)"
      case .noHosts(let block, _, _): "no hosts \(block)"
      case .blockFinished(let id, _, _): "finished \(id)"
      default: nil
      }
    }
    #expect(order == ["started 1", "no hosts 1", "finished 1", "started 2", "finished 2", "started 3", "no hosts 3", "finished 3"])
    #expect(outcome.result.unmatchedTargets == 2)
    #expect(outcome.result.end.unmatchedTargets == 2)
    #expect(ExitStatus.of(outcome.result.end) == ExitStatus.noHosts)
    #expect(outcome.statuses == ["pc01": .ok])
  }

  @Test func aRunWhoseBlocksAllMatchedHostsCountsNone() async throws {
    let outcome = try await run(#"on host pc01 < run "a" >"#)
    #expect(outcome.result.unmatchedTargets == 0)
    #expect(ExitStatus.of(outcome.result.end) == ExitStatus.success)
  }

  @Test func passwordHashesNeverAppearInEvents() async throws {
    let hash = "$6$saltsalt$" + String(repeating: "s", count: 86)
    let outcome = try await run(
      """
      let hash = '\(hash)'
      on host pc01, pc02 <
        password "root" hash
        try < password 'admin' '$5$other$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' >
      >
      """,
      responder: { _, host in
        host.name == "pc02" ? .failure("chpasswd: bad hash") : StepResult(status: .changed)
      })
    #expect(
      outcome.executor.calls(on: "pc01") == [
        .password(user: "root", hash: Secret(hash)), .password(user: "admin", hash: Secret("$5$other$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
      ])
    let labels = outcome.log.events.compactMap { event -> String? in
      switch event {
      case .stepStarted(let step, _), .stepFinished(let step, _, _): step.label
      default: nil
      }
    }
    #expect(Set(labels) == [#"password "root" <redacted>"#, #"password 'admin' <redacted>"#])
    for event in outcome.log.events {
      let text = String(describing: event) + String(reflecting: event)
      #expect(!text.contains(hash) && !text.contains("$5$other"), "leaked in \(text)")
    }
  }

  /// Checks the shape of a run's events: one runStarted first and one runFinished last; blocks
  /// do not overlap; inside a block, every event belongs to it, every started step finishes
  /// (on the same host, before that host finishes), every host of the block finishes exactly
  /// once, and the block's outcomes are the hosts' ones, in order.
  private func expectCoherent(_ events: [Event], sourceLocation: SourceLocation = #_sourceLocation) {
    guard case .runStarted = events.first, case .runFinished = events.last else {
      Issue.record("a run must start with runStarted and end with runFinished", sourceLocation: sourceLocation)
      return
    }
    var block: BlockInfo?
    var open: [HostName: StepInfo] = [:]
    var finished: [HostName: HostOutcome] = [:]
    for event in events.dropFirst().dropLast() {
      switch event {
      case .runStarted, .runFinished:
        Issue.record("a second run event: \(event)", sourceLocation: sourceLocation)
      case .deliveriesRecorded:
        Issue.record("the interpreter records no delivery (its FleetRun does)", sourceLocation: sourceLocation)
      case .blockStarted(let info):
        #expect(block == nil, "block \(info.id) started inside another", sourceLocation: sourceLocation)
        block = info
        open = [:]
        finished = [:]
      case .hostsJoined(let id, let hosts):
        #expect(id == block?.id, sourceLocation: sourceLocation)
        #expect(Set(hosts).isDisjoint(with: block?.hosts ?? []), "hosts joined twice", sourceLocation: sourceLocation)
        block?.hosts += hosts
      case .stepStarted(let step, let host):
        #expect(step.block == block?.id, sourceLocation: sourceLocation)
        #expect(block?.hosts.contains(host) == true, sourceLocation: sourceLocation)
        #expect(open[host.name] == nil, "\(host) started a step with one open", sourceLocation: sourceLocation)
        #expect(finished[host.name] == nil, sourceLocation: sourceLocation)
        open[host.name] = step
      case .stepFinished(let step, let host, _):
        #expect(open.removeValue(forKey: host.name) == step, "\(host) finished a step it did not start", sourceLocation: sourceLocation)
      case .hostFinished(let id, let outcome):
        #expect(id == block?.id, sourceLocation: sourceLocation)
        #expect(open[outcome.host.name] == nil, "\(outcome.host) finished with a step open", sourceLocation: sourceLocation)
        #expect(finished.updateValue(outcome, forKey: outcome.host.name) == nil, "\(outcome.host) finished twice", sourceLocation: sourceLocation)
      case .blockFinished(let id, let outcomes, _):
        #expect(id == block?.id, sourceLocation: sourceLocation)
        // In natural order (hosts that joined, too).
        #expect(outcomes.map(\.host) == block?.hosts.sorted { HostFolding.naturalLess($0.name, $1.name) }, sourceLocation: sourceLocation)
        #expect(outcomes == outcomes.compactMap { finished[$0.host.name] }, sourceLocation: sourceLocation)
        #expect(finished.count == block?.hosts.count, sourceLocation: sourceLocation)
        block = nil
      case .noHosts(let id, let target, let location):
        #expect(id == block?.id && target == block?.label && location == block?.location, sourceLocation: sourceLocation)
        #expect(block?.hosts.isEmpty == true, "no hosts for a block with hosts", sourceLocation: sourceLocation)
      case .message:
        break
      }
    }
    #expect(block == nil, "a block never finished", sourceLocation: sourceLocation)
  }
}
