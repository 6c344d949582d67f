// Interpreter tests: targets, `parallel`, `serial`, settings passed to the executor, and
// cancellation.

import CFIScript
import CFISyntax
import Runtime
import Synchronization
import Testing
import TestSupport

@Suite("Interpreter: targets and fan-out", .timeLimit(.minutes(1)))
struct InterpreterFanOutTests {
  // MARK: - Targets

  @Test func onAllRunsEveryHostInNaturalOrder() async throws {
    let outcome = try await run(
      """
      set parallel = 1
      on all < run "x" >
      """)
    #expect(outcome.executor.calls.map(\.host) == allHostsInOrder)
    #expect(outcome.hostNames == allHostsInOrder)
    let blockHosts = outcome.log.events.compactMap { event -> [String]? in
      if case .blockStarted(let info) = event { return info.hosts.map(\.name.rawValue) }
      return nil
    }
    #expect(blockHosts == [allHostsInOrder])
  }

  @Test(arguments: [
    ("on group office", ["desk1", "desk2", "desk3", "desk10"]),
    ("on group lab, office except pc[02-07], desk10", ["desk1", "desk2", "desk3", "pc01", "pc08"]),
    ("on host pc[01-03,05], desk[1-2]", ["desk1", "desk2", "pc01", "pc02", "pc03", "pc05"]),
    ("on host @office except desk10", ["desk1", "desk2", "desk3"]),
    ("on host pc0[7-8], @office, pc07", ["desk1", "desk2", "desk3", "desk10", "pc07", "pc08"]),
    ("on all except @lab, desk[1-3]", ["desk10"]),
    ("on host rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
  ])
  func targetsSelectHosts(target: String, hosts: [String]) async throws {
    let outcome = try await run("\(target) < run \"x\" >")
    #expect(outcome.hostNames == hosts)
    #expect(outcome.touchedHosts == hosts.sorted())
  }

  @Test func emptyTargetRunsNothing() async throws {
    let outcome = try await run(
      """
      on host pc01 except pc01 < run "x" >
      print "went on"
      """)
    #expect(outcome.executor.calls.isEmpty)
    #expect(outcome.result.outcomes.isEmpty)
    #expect(outcome.log.messages == ["went on"])
    let blockEvents = outcome.log.events.compactMap { event -> String? in
      switch event {
      case .blockStarted(let info): "started \(info.hosts.count)"
      case .blockFinished(_, let outcomes, let stopped): "finished \(outcomes.count) \(stopped)"
      case .hostFinished: "host"
      default: nil
      }
    }
    #expect(blockEvents == ["started 0", "finished 0 false"])
  }

  @Test func groupStatementsAddHostsInAndOutOfTheInventory() async throws {
    let outcome = try await run(
      """
      group extra = pc01, new[1-2]
      group lab = labnew1
      on group extra < run "extra ${host.group}" >
      on group lab except pc[01-08] < install lines("packages.list") >
      on all except pc[01-08], desk[1-10] < run "all ${host.group}" >
      on host @extra except pc01 < run "again" >
      """)
    #expect(outcome.commands(on: "pc01") == ["extra lab"])
    #expect(outcome.commands(on: "new1") == ["extra unknown", "all unknown", "again"])
    #expect(outcome.commands(on: "new2") == ["extra unknown", "all unknown", "again"])
    // A host a group statement adds to a store group gets that group's store.
    #expect(outcome.executor.calls(on: "labnew1") == [.install(packages: ["emacs", "vim", "gcc"]), .run(command: "all lab")])
    #expect(outcome.hostNames == ["new1", "new2", "pc01", "labnew1"])
  }

  @Test func aHostAddedByGroupKeepsItsGroupHoweverItIsTargeted() async throws {
    let outcome = try await run(
      """
      group extra = labnew1, other1
      group lab = labnew1
      on host labnew1, other1 < run "host ${host.group}" >
      on group lab except pc[01-08] < run "group ${host.group}" >
      on group extra < run "extra ${host.group}" >
      on all except pc[01-08], desk[1-10] < run "all ${host.group}" >
      """)
    #expect(outcome.commands(on: "labnew1") == ["host lab", "group lab", "extra lab", "all lab"])
    #expect(outcome.commands(on: "other1") == ["host unknown", "extra unknown", "all unknown"])
  }

  // MARK: - --limit

  @Test func aLimitNarrowsEveryBlockAndAnEmptiedBlockMatchedNoHost() async throws {
    let limit = RunLimit(included: ["pc01", "pc02", "desk1"], excluded: ["pc02"], text: "pc[01-02],desk1,!pc02")
    let outcome = try await run(
      """
      on group lab < run "x" >
      on host pc03 < run "y" >
      on all < run "z" >
      """, limit: limit)
    #expect(outcome.executor.calls.map(\.host).sorted() == ["desk1", "pc01", "pc01"])
    let noHosts = outcome.log.events.compactMap { event -> String? in
      if case .noHosts(_, let target, _) = event { return target }
      return nil
    }
    #expect(noHosts == ["on host pc03 with --limit pc[01-02],desk1,!pc02"])
    #expect(outcome.result.end.unmatchedTargets == 1)
  }

  // MARK: - parallel and serial

  @Test func parallelBoundsConcurrency() async throws {
    let timeline = Timeline()
    let outcome = try await run(
      """
      set parallel = 3
      on all < run "x" >
      """, responder: timeline.gatedResponder(width: 3, total: 12))
    #expect(outcome.executor.peakConcurrency == 3)
    #expect(outcome.executor.calls.count == 12)
  }

  @Test func withoutLimitsAllHostsRunAtOnce() async throws {
    let timeline = Timeline()
    let outcome = try await run("on all < run \"x\" >", responder: timeline.gatedResponder(width: 12, total: 12))
    #expect(outcome.executor.peakConcurrency == 12)
  }

  @Test func serialRunsHostsInBatches() async throws {
    let timeline = Timeline()
    let outcome = try await run(
      """
      set serial = 2
      on group lab < run "x" >
      """, responder: timeline.gatedResponder(width: 2, total: 8))
    #expect(outcome.executor.peakConcurrency == 2)
    expectBatches(of: labHosts, size: 2, in: timeline)
  }

  @Test func serialAsAPercentage() async throws {
    // 25% of 12 hosts: batches of 3, in natural order.
    let timeline = Timeline()
    let outcome = try await run(
      """
      set serial = 25%
      on all < run "x" >
      """, responder: timeline.gatedResponder(width: 3, total: 12))
    #expect(outcome.executor.peakConcurrency == 3)
    expectBatches(of: allHostsInOrder, size: 3, in: timeline)
  }

  @Test func serialWithinParallel() async throws {
    let timeline = Timeline()
    let outcome = try await run(
      """
      set serial = 4
      set parallel = 2
      on group lab < run "x" >
      """, responder: timeline.gatedResponder(width: 2, total: 8))
    #expect(outcome.executor.peakConcurrency == 2)
    expectBatches(of: labHosts, size: 4, in: timeline)
  }

  /// Every host of a batch ends before any host of the next batch starts.
  private func expectBatches(
    of hosts: [String], size: Int, in timeline: Timeline, sourceLocation: SourceLocation = #_sourceLocation
  ) {
    let marks = timeline.all
    #expect(marks.count == hosts.count * 2, sourceLocation: sourceLocation)
    let batches = stride(from: 0, to: hosts.count, by: size).map { Array(hosts[$0..<min(hosts.count, $0 + size)]) }
    for (batch, next) in zip(batches, batches.dropFirst()) {
      let lastEnd = batch.compactMap { marks.firstIndex(of: .end($0)) }.max() ?? -1
      let firstStart = next.compactMap { marks.firstIndex(of: .start($0)) }.min() ?? -1
      #expect(lastEnd < firstStart, "batch \(next) started before \(batch) ended", sourceLocation: sourceLocation)
    }
  }

  // MARK: - Settings and check mode

  @Test func defaultStepOptions() async throws {
    let outcome = try await run("on host pc01 < run \"x\" >")
    #expect(outcome.executor.calls.map(\.options) == [StepOptions(check: false, timeout: .seconds(3600), connectTimeout: .seconds(10))])
  }

  /// `none` is a word of `set`: it turns a limit off, and a variable of that name does not
  /// stand for it.
  @Test func noneTurnsTheStepTimeoutOff() async throws {
    let outcome = try await run(
      """
      let none = 5m
      set timeout = none
      set serial = none
      set max_fail = none
      on host pc01 < run "x" >
      """)
    #expect(outcome.executor.calls.map(\.options) == [StepOptions(check: false, timeout: nil, connectTimeout: .seconds(10))])
  }

  @Test func checkModeAndTimeoutsReachTheExecutor() async throws {
    let outcome = try await run(
      """
      set timeout = 30s
      set connect_timeout = 5s
      on host pc01 < run "x" >
      set timeout = 2m
      on host pc01 < install "htop" >
      """, check: true)
    #expect(
      outcome.executor.calls.map(\.options) == [
        StepOptions(check: true, timeout: .seconds(30), connectTimeout: .seconds(5)),
        StepOptions(check: true, timeout: .seconds(120), connectTimeout: .seconds(5)),
      ])
    let started = outcome.log.events.compactMap { event -> Bool? in
      if case .runStarted(_, let check, _, _) = event { return check }
      return nil
    }
    #expect(started == [true])
  }

  @Test func commandLineSettingsWinOverTheRunbook() async throws {
    var settings = RunSettings()
    settings.timeout = .seconds(7)
    settings.parallel = 2
    let timeline = Timeline()
    let outcome = try await run(
      """
      set timeout = 30s
      set parallel = 6
      set connect_timeout = 3s
      on group lab < run "x" >
      """, settings: settings, lockedSettings: ["timeout", "parallel"], responder: timeline.gatedResponder(width: 2, total: 8))
    #expect(outcome.executor.peakConcurrency == 2)
    #expect(Set(outcome.executor.calls.map(\.options)) == [StepOptions(timeout: .seconds(7), connectTimeout: .seconds(3))])
  }

  /// `set persist` tells the executor how long its connections stay open after the run,
  /// from where it stands on; the command line's `--persist` (a locked setting) wins.
  @Test func persistReachesTheExecutorUnlessTheCommandLineSetIt() async throws {
    let runbook = """
      on host pc01 < run "x" >
      set persist = 10m
      on host pc01 < run "y" >
      set persist = 0
      """
    var site = RunSettings()
    site.persist = .seconds(60)
    let free = try await run(runbook, settings: site)
    #expect(free.executor.keptWindows == [.seconds(60), .seconds(600), .zero])
    var given = RunSettings()
    given.persist = .seconds(30)
    let locked = try await run(runbook, settings: given, lockedSettings: ["persist"])
    #expect(locked.executor.keptWindows == [.seconds(30), .seconds(30), .seconds(30)])
    #expect(RunSettings().persist == .seconds(300))
  }

  @Test func persistIsCheckedBeforeTheRun() {
    func errors(_ text: String) -> [String] {
      let runbook = Loader.load(text: Array(text.utf8), name: "t.cfi")
      return (runbook.diagnostics + Resolver.check(runbook, context: ResolverContext())).filter { $0.severity == .error }.map(\.message)
    }
    #expect(errors("set persist = 5m\nset persist = 0\nset persist = 0s\n") == [])
    #expect(errors("set persist = 500ms\n") == ["'persist' must be 0 or at least 1s (ssh counts whole seconds)"])
    #expect(errors("set persist = \"5m\"\n") == ["'persist' must be a duration such as 5m, or 0, not a string"])
    #expect(errors("set persist = none\n") == ["'persist' must be a duration such as 5m, or 0, not none"])
  }

  @Test func runbookSettingsApplyWhenNotLocked() async throws {
    var settings = RunSettings()
    settings.parallel = 2
    let timeline = Timeline()
    let outcome = try await run(
      """
      set parallel = 6
      on group lab < run "x" >
      """, settings: settings, responder: timeline.gatedResponder(width: 6, total: 8))
    #expect(outcome.executor.peakConcurrency == 6)
  }

  @Test func aBadSettingValueStopsTheRun() async throws {
    let outcome = try await run(
      """
      let p = 0
      set parallel = p
      on all < run "never" >
      """)
    #expect(outcome.executor.calls.isEmpty)
    #expect(outcome.result.error?.message == "'parallel' must be at least 1")
  }

  // MARK: - Cancellation

  @Test func cancellingTheRunEndsItPromptly() async throws {
    let timeline = Timeline()
    let responder = timeline.responderUntilCancelled()
    let task = Task {
      try await run(
        """
        set parallel = 2
        on group lab < run "slow"; run "never" >
        on group office < run "never" >
        """, responder: responder)
    }
    let clock = ContinuousClock()
    // The deadline only keeps a broken run from hanging the suite; a loaded machine may be slow.
    let deadline = clock.now + .seconds(300)
    while timeline.all.count < 2 && clock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    #expect(timeline.all == [.start("pc01"), .start("pc02")] || timeline.all == [.start("pc02"), .start("pc01")])
    task.cancel()
    let outcome = try await task.value
    #expect(outcome.result.interrupted)
    #expect(outcome.executor.calls.map(\.host).sorted() == ["pc01", "pc02"])
    #expect(outcome.hostNames == labHosts)
    #expect(Set(outcome.statuses.values) == [.interrupted])
    #expect(outcome.message(of: "pc03") == "interrupted before it started")
    #expect(outcome.executor.shutdownCount == 1)
    let finished = outcome.log.events.compactMap { event -> Bool? in
      if case .runFinished(_, let interrupted, _, _, _) = event { return interrupted }
      return nil
    }
    #expect(finished == [true])
  }
}
