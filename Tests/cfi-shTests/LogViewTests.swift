// `cfi-sh log`'s views on runs written by the history writer: the renderer scenarios recorded
// into a state database, read back and rendered, compared with files in `LogGolden/`
// (recorded with `CFI_RECORD=1 swift test --filter LogView`, then read). A run shown from its
// history reads as it did live.

import Foundation
import Runtime
import TestSupport
import Testing

@testable import cfi_sh

/// A store with a state database, removed afterwards.
final class HistoryStore {
  let store: Store
  let database: StateDatabase

  init() throws {
    var template = Array((NSTemporaryDirectory() + "cfi-log-XXXXXX").utf8CString)
    let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    store = Store(root: path)
    database = try StateDatabase(store: store)
  }

  deinit { try? FileManager.default.removeItem(atPath: store.root) }

  var query: HistoryQuery { HistoryQuery(database: database, store: "/var/lib/cfi") }

  /// Writes `events` as a FleetRun would (its run id `id`), each step and the run ending
  /// `took` seconds after the start, so that what is shown does not depend on the clock.
  func record(_ events: [Event], id: String = EventScript.run, arguments: [String] = [], took: TimeInterval = 4.2) {
    let started = events.compactMap { if case .runStarted(_, _, let date, _) = $0 { date } else { nil } }.first ?? EventScript.date
    let history = RunHistory(
      database: database, store: store, runID: id, arguments: arguments, source: nil,
      warning: { Issue.record("\($0)") }, now: { started.addingTimeInterval(took) })
    var exitStatus: Int32 = 0
    var interrupted = false
    for event in events {
      history.emit(event)
      if case .runFinished(_, let stopped, _, let status?, _) = event { (exitStatus, interrupted) = (status, stopped) }
    }
    history.finish(exitStatus: exitStatus, signal: interrupted ? .interrupt : nil)
  }
}

@Suite("LogView")
struct LogViewTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("LogGolden").path

  static func view(json: Bool) -> LogView {
    LogView(json: json, style: Style(enabled: false), timeZone: TimeZone(identifier: "UTC")!)
  }

  private func check(_ text: String, _ name: String) {
    let problem = GoldenFile.check(
      text, path: Self.directory + "/" + name, rerecord: "CFI_RECORD=1 swift test --filter LogView")
    if let problem { Issue.record(Comment(rawValue: problem)) }
  }

  /// `cfi-sh log RUN` of each scenario, as text and as JSON.
  @Test(arguments: RendererGoldenTests.scenarios)
  func oneRun(_ scenario: RendererScenario) throws {
    let history = try HistoryStore()
    history.record(scenario.events, arguments: ["--x", "a b"])
    let detail = try history.query.run("last")
    check(Self.view(json: false).render(detail), "\(scenario.name).txt")
    check(Self.view(json: true).render(detail), "\(scenario.name).jsonl")
  }

  /// What the history keeps of a run (all but `print`, `--diff`, and when a host found by
  /// discovery joined a block: a block's row lists every host it ran on) is shown as it was live.
  @Test(arguments: RendererGoldenTests.scenarios.filter { scenario in
    !scenario.events.contains { event in
      switch event {
      case .message, .hostsJoined: true
      case .stepFinished(_, _, let result): result.diff != nil
      default: false
      }
    }
  })
  func aRunFromItsHistoryReadsAsItDidLive(_ scenario: RendererScenario) throws {
    let history = try HistoryStore()
    history.record(scenario.events)
    let shown = Self.view(json: false).render(try history.query.run(EventScript.run))
    let live = RendererGoldenTests.render(RendererCase(scenario: scenario, rendering: .normal))
    #expect(shown.hasSuffix("\n\n" + live), "\(shown)")
  }

  /// Three runs in one store: the list, and one host's history.
  @Test func theListAndAHostsHistory() throws {
    let history = try HistoryStore()
    let scenarios = Dictionary(uniqueKeysWithValues: RendererGoldenTests.scenarios.map { ($0.name, $0.events) })
    // Ids sharing their first eight characters get longer short ids.
    history.record(scenarios["folding"]!, id: "5f0c1a2b-0000-4000-8000-000000000001")
    history.record(scenarios["folding"]!, id: "5f0c1a2b-1111-4000-8000-000000000002", took: 61)
    history.record(scenarios["check-mode"]!, id: "9d3e4f50-0000-4000-8000-000000000003")
    let runs = try history.query.recentRuns(count: 20)
    #expect(runs.map(\.shortID) == ["9d3e4f50", "5f0c1a2b-1", "5f0c1a2b-0"])
    check(Self.view(json: false).render(runs), "runs.txt")
    check(Self.view(json: true).render(runs), "runs.jsonl")
    let pc12 = HostName(stringLiteral: "pc12")
    let host = try history.query.host(pc12, runs: 20)
    #expect(host.count == 2)
    check(Self.view(json: false).render(host, of: pc12), "host.txt")
    check(Self.view(json: true).render(host, of: pc12), "host.jsonl")
  }

  @Test func recordingIsOff() {
    #expect(!GoldenFile.recording, "CFI_RECORD=1: expectations were rewritten; review them and run again without it")
  }
}
