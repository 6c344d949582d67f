// RendererGoldenTests.swift — golden-file tests of the two renderers (TextRenderer,
// JSONRenderer) on scripted runs.
//
// Each scenario below is a fixed sequence of events, built as a run emits them (hosts
// interleaved). It is rendered four ways, and each rendering is compared with its file in
// `Golden/` (next to this file):
// - `NAME.quiet.txt`, `NAME.normal.txt`, `NAME.verbose.txt`: the text renderer at that
//   verbosity, no colours, no progress line;
// - `NAME.jsonl`: the JSON Lines renderer, its `run_finished` time fixed.
// Durations and dates in the events are fixed, so the files are the same on every machine.
//
// `Golden/` is read in the source tree (via `#filePath`), so that recording writes where git
// sees it and edits need no rebuild.
//
// Recording: `CFI_RECORD=1 swift test --filter RendererGolden` rewrites the files. Every
// rendering whose file was written then fails with "recorded …", and `recordingIsOff` fails,
// so a recording run is never mistaken for a pass.

import Foundation
import Runtime
import Synchronization
import TestSupport
import Testing

@testable import cfi_sh

/// Builds a run's events. Every event, step and result of these tests is made here, so a
/// change in their shape is a change in this one place. It also keeps what a run derives
/// (a block's outcomes, the run's worst status per host) consistent with what came before.
struct EventScript {
  static let date = Date(timeIntervalSince1970: 1_795_770_000)  // 2026-11-27T09:00:00Z
  static let runbook = "site.cfi"
  /// The run's id, as its FleetRun gives it.
  static let run = "0b6d2c1e-5a7f-4c3e-9d21-7e4f5a6b8c90"

  private(set) var events: [Event] = []
  private var blockOutcomes: [Int: [HostOutcome]] = [:]
  private var runOutcomes: [String: HostOutcome] = [:]
  private var hostOrder: [String] = []

  static func host(_ name: String) -> Runtime.Host {
    Runtime.Host(name: HostName(name)!, group: name.hasPrefix("desk") ? .init("office")! : .init("lab")!)
  }

  /// A step's result; `ms` is its duration.
  static func result(
    _ status: StepStatus, exit: Int32? = nil, out: String = "", err: String = "", message: String? = nil,
    reason: UnreachableReason? = nil, diff: String? = nil, ms: Int64 = 40
  ) -> StepResult {
    StepResult(
      status: status, exitCode: exit, output: out, errorOutput: err, message: message, reason: reason, diff: diff,
      duration: .milliseconds(ms))
  }

  mutating func start(check: Bool = false) {
    events.append(.runStarted(runbook: EventScript.runbook, check: check, date: EventScript.date, run: EventScript.run))
  }

  /// A block starts; one with no hosts says so next, as the interpreter does.
  mutating func block(_ id: Int, _ label: String, line: Int, _ hosts: [String]) {
    let location = "\(EventScript.runbook):\(line):1"
    events.append(.blockStarted(BlockInfo(id: id, label: label, location: location, hosts: hosts.map(EventScript.host))))
    if hosts.isEmpty { events.append(.noHosts(block: id, target: label, location: location)) }
  }

  /// Hosts the browse found join a running block.
  mutating func join(_ id: Int, _ hosts: [String]) {
    events.append(.hostsJoined(block: id, hosts: hosts.map(EventScript.host)))
  }

  /// One host's step, started and finished.
  mutating func step(
    _ block: Int, _ label: String, line: Int, tolerated: Bool = false, on host: String, _ result: StepResult
  ) {
    let info = StepInfo(block: block, location: "\(EventScript.runbook):\(line):3", label: label, tolerated: tolerated)
    events.append(.stepStarted(info, host: EventScript.host(host)))
    events.append(.stepFinished(info, host: EventScript.host(host), result: result))
  }

  mutating func hostDone(
    _ block: Int, _ host: String, _ status: StepStatus, _ message: String? = nil, reason: UnreachableReason? = nil
  ) {
    let outcome = HostOutcome(host: EventScript.host(host), status: status, message: message, reason: reason)
    events.append(.hostFinished(block: block, outcome))
    blockOutcomes[block, default: []].append(outcome)
    if let known = runOutcomes[host] {
      if status > known.status { runOutcomes[host] = outcome }
    } else {
      runOutcomes[host] = outcome
      hostOrder.append(host)
    }
  }

  /// The block's end; its outcomes are the hosts' in the block's host order.
  mutating func blockDone(_ id: Int, stopped: Bool = false) {
    let ordered = (blockOutcomes[id] ?? []).sorted { HostFolding.naturalLess($0.host.name, $1.host.name) }
    events.append(.blockFinished(id: id, outcomes: ordered, stopped: stopped))
  }

  mutating func print(_ text: String, on host: String? = nil) {
    events.append(.message(text, host: host.map(EventScript.host)))
  }

  /// The run's end, with the exit status its FleetRun derives.
  mutating func finish(interrupted: Bool = false, error: String? = nil) {
    let outcomes = hostOrder.compactMap { runOutcomes[$0] }
    let unmatched = events.filter { if case .noHosts = $0 { true } else { false } }.count
    let status = ExitStatus.of(
      RunEnd(outcomes: outcomes, runtimeError: error != nil, interrupted: interrupted, unmatchedTargets: unmatched))
    events.append(
      .runFinished(outcomes: outcomes, interrupted: interrupted, error: error, exitStatus: status, run: EventScript.run))
  }
}

/// What a renderer wrote, in order.
final class OutputBuffer: Sendable {
  private let data = Mutex(Data())
  func append(_ bytes: Data) { data.withLock { $0.append(bytes) } }
  var text: String { String(decoding: data.withLock { $0 }, as: UTF8.self) }
}

/// One scripted run.
struct RendererScenario: Sendable, CustomTestStringConvertible {
  var name: String
  var events: [Event]
  var testDescription: String { name }

  init(_ name: String, _ build: (inout EventScript) -> Void) {
    var script = EventScript()
    build(&script)
    self.name = name
    events = script.events
  }
}

/// One way of rendering: a text verbosity, or JSON.
enum Rendering: String, Sendable, CaseIterable {
  case quiet, normal, verbose, json

  var fileExtension: String { self == .json ? "jsonl" : "\(rawValue).txt" }
}

struct RendererCase: Sendable, CustomTestStringConvertible {
  var scenario: RendererScenario
  var rendering: Rendering
  var fileName: String { "\(scenario.name).\(rendering.fileExtension)" }
  var testDescription: String { fileName }
}

@Suite("RendererGolden")
struct RendererGoldenTests {
  static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Golden").path

  static let scenarios: [RendererScenario] = [
    // Hosts unreachable each for its own reason, while two are fine: before the step (the
    // connect's reasons) and during it (connection lost, with what the command wrote).
    RendererScenario("deadhosts") { run in
      let dead: [String: (UnreachableReason, String, String)] = [
        "pc03": (.refused, "connection refused (no sshd listening)", "ssh: connect to host 10.0.0.4 port 22: Connection refused\n"),
        "pc04": (.noRoute, "no route to host", "ssh: connect to host 10.0.0.5 port 22: No route to host\n"),
        "pc05": (.connectTimeout, "connect timeout after 3s", "ssh: connect to host 10.0.0.6 port 22: Connection timed out\n"),
        "pc06": (
          .handshakeTimeout, "handshake timeout: connected, but no SSH banner within 3s", "Connection timed out during banner exchange\n"
        ),
      ]
      let hosts = (1...7).map { String(format: "pc%02d", $0) }
      let step = #"run "sleep 30; echo done""#
      run.start()
      run.block(1, "on group lab", line: 1, hosts)
      for host in hosts {
        if let (reason, message, stderr) = dead[host] {
          run.step(1, step, line: 2, on: host, EventScript.result(.unreachable, err: stderr, message: message, reason: reason, ms: 3_000))
          run.hostDone(1, host, .unreachable, message, reason: reason)
        } else if host == "pc07" {
          let message = "connection lost during the command (it may have run)"
          run.step(
            1, step, line: 2, on: host,
            EventScript.result(.unreachable, out: "started\n", message: message, reason: .connectionLost, ms: 24_000))
          run.hostDone(1, host, .unreachable, message, reason: .connectionLost)
        } else {
          run.step(1, step, line: 2, on: host, EventScript.result(.ok, exit: 0, out: "started\ndone\n", ms: 30_000))
          run.hostDone(1, host, .ok)
        }
      }
      run.blockDone(1)
      run.finish()
    },
    // Twelve lab hosts: identical results fold into host sets, whatever order they arrive in;
    // one host unreachable, one failing, some changed.
    RendererScenario("folding") { run in
      let hosts = (1...12).map { String(format: "pc%02d", $0) }
      run.start()
      run.block(1, "on group lab", line: 1, hosts)
      for (index, host) in hosts.reversed().enumerated() {
        if host == "pc12" {
          run.step(
            1, #"run "uname -r""#, line: 2, on: host,
            EventScript.result(
              .unreachable, err: "ssh: connect to host pc12 port 22: Connection refused\n",
              message: "connection refused (no sshd listening)", reason: .refused, ms: 3))
          run.hostDone(1, host, .unreachable, "connection refused (no sshd listening)", reason: .refused)
          continue
        }
        let kernel = host == "pc10" ? "6.1.0-27-amd64" : "6.1.0-28-amd64"
        run.step(1, #"run "uname -r""#, line: 2, on: host, EventScript.result(.ok, exit: 0, out: kernel + "\n", ms: 41 + Int64(index)))
        let installed = ["pc01", "pc02", "pc03", "pc04", "pc05", "pc07"].contains(host)
        run.step(
          1, #"install "htop", "vim""#, line: 3, on: host,
          installed
            ? EventScript.result(.changed, exit: 0, message: "+htop +vim", ms: 2_500) : EventScript.result(.ok, exit: 0, ms: 900))
        if host == "pc03" {
          run.step(
            1, #"run "test -f /etc/cfi/ready""#, line: 4, on: host,
            EventScript.result(.failed, exit: 1, err: "test: missing\nsecond line of stderr\n", ms: 12))
          run.hostDone(1, host, .failed, "site.cfi:4:3: run: exit status 1")
          continue
        }
        run.step(1, #"run "test -f /etc/cfi/ready""#, line: 4, on: host, EventScript.result(.ok, exit: 0, ms: 10))
        run.hostDone(1, host, installed ? .changed : .ok)
      }
      run.blockDone(1)
      run.finish()
    },
    // Check mode, two blocks, `print` inside and outside a block.
    RendererScenario("check-mode") { run in
      run.start(check: true)
      run.print("checking the office")
      run.block(1, "on group office", line: 2, ["desk1", "desk2", "desk10"])
      for host in ["desk1", "desk10", "desk2"] {
        run.step(
          1, #"copy "etc/motd""#, line: 3, on: host,
          host == "desk2" ? EventScript.result(.ok, exit: 0, ms: 75) : EventScript.result(.changed, exit: 0, message: "would change 1 file", ms: 80))
        run.step(1, #"run "apt-get clean""#, line: 4, on: host, EventScript.result(.skipped, message: "would run", ms: 0))
        run.print("checked", on: host)
        run.hostDone(1, host, host == "desk2" ? .ok : .changed)
      }
      run.blockDone(1)
      run.block(2, "on host desk1", line: 6, ["desk1"])
      run.step(2, "password \"root\", \"<redacted>\"", line: 7, on: "desk1", EventScript.result(.changed, exit: 0, message: "would change the password of root", ms: 1_234))
      run.hostDone(2, "desk1", .changed)
      run.blockDone(2)
      run.finish()
    },
    // --check --diff: the same change on three hosts, from two different old versions (two
    // groups, each diff printed once); a package list from → to; a host with nothing to do.
    RendererScenario("diff") { run in
      let fromA = "--- /etc/cfi-test.conf\n+++ /var/lib/cfi/lab/etc/cfi-test.conf\n@@ -1,2 +1,2 @@\n greeting = hello\n-version = A\n+version = C\n"
      let fromB = "/etc/cfi-test.conf: mode changed 0600 → 0644\n--- /etc/cfi-test.conf\n+++ /var/lib/cfi/lab/etc/cfi-test.conf\n@@ -1,3 +1,2 @@\n-greeting = bonjour\n+greeting = hello\n-version = B\n-extra = 1\n+version = C\n"
      let hosts = ["pc1", "pc2", "pc3", "pc4"]
      run.start(check: true)
      run.block(1, "on group lab", line: 1, hosts)
      for host in hosts {
        let diff: String? = host == "pc4" ? nil : host == "pc3" ? fromB : fromA
        run.step(
          1, #"copy "etc/cfi-test.conf""#, line: 2, on: host,
          diff == nil
            ? EventScript.result(.ok, exit: 0)
            : EventScript.result(.changed, exit: 0, out: ">f.st...... cfi-test.conf", message: "would change 1 file", diff: diff))
        run.step(
          1, #"install "cfi-test-a" "cfi-test-b""#, line: 3, on: host,
          EventScript.result(
            .changed, exit: 0, message: "would change: +cfi-test-a +cfi-test-b",
            diff: "cfi-test-a 1.0 → 1.1\ncfi-test-b (new) 2.0\n"))
        run.hostDone(1, host, .changed)
      }
      run.blockDone(1)
      run.finish()
    },
    // A step run twice per host (a loop: one location, two occurrences), a failure a `try`
    // tolerates, output longer than the normal mode shows.
    RendererScenario("loop-try-long-output") { run in
      let hosts = ["pc1", "pc2", "pc3"]
      let listing = (1...45).map { "ii  package\($0)  1.0  amd64" }.joined(separator: "\n") + "\n"
      run.start()
      run.block(1, "on host pc[1-3]", line: 1, hosts)
      for host in hosts {
        for round in ["first", "second"] {
          run.step(1, #"run "echo ${x}""#, line: 3, on: host, EventScript.result(.ok, exit: 0, out: round + "\n", ms: 5))
        }
        run.step(
          1, #"run "false""#, line: 5, tolerated: true, on: host,
          EventScript.result(.failed, exit: 1, ms: host == "pc2" ? 1_000 : 999))
        run.step(1, #"run "dpkg -l""#, line: 6, on: host, EventScript.result(.ok, exit: 0, out: listing, ms: 61_500))
        run.hostDone(1, host, .ok)
      }
      run.blockDone(1)
      run.finish()
    },
    // max_fail: two failures stop the block; the hosts never started are skipped.
    RendererScenario("max-fail") { run in
      let hosts = (1...6).map { "pc\($0)" }
      run.start()
      run.block(1, "on group lab", line: 2, hosts)
      for host in ["pc1", "pc2"] {
        run.step(1, #"run "systemctl restart nginx""#, line: 3, on: host, EventScript.result(.failed, exit: 5, err: "Job failed.\n", ms: 300))
        run.hostDone(1, host, .failed, "site.cfi:3:3: run: exit status 5")
      }
      for host in hosts.dropFirst(2) {
        run.hostDone(1, host, .skipped, "not started: more than max_fail hosts failed")
      }
      run.blockDone(1, stopped: true)
      run.finish()
    },
    // Ctrl-C during a step: what ran is interrupted, the host not started too.
    RendererScenario("interrupted") { run in
      run.start()
      run.block(1, "on all", line: 1, ["desk1", "pc1", "pc2"])
      run.step(1, #"run "sleep 30""#, line: 1, on: "pc1", EventScript.result(.interrupted, ms: 1_500))
      run.hostDone(1, "pc1", .interrupted)
      run.step(1, #"run "sleep 30""#, line: 1, on: "desk1", EventScript.result(.interrupted, message: "interrupted while connecting", ms: 1_499))
      run.hostDone(1, "desk1", .interrupted)
      run.hostDone(1, "pc2", .interrupted, "interrupted before it started")
      run.blockDone(1)
      run.finish(interrupted: true)
    },
    // The run started while avahi was browsed: pc3, found by the browse, joins the block.
    RendererScenario("discovery-joins") { run in
      run.start()
      run.block(1, "on group lab", line: 1, ["pc1", "pc2"])
      run.join(1, ["pc3"])
      for host in ["pc1", "pc2", "pc3"] {
        run.step(1, #"run "true""#, line: 1, on: host, EventScript.result(.ok, exit: 0, ms: 200))
        run.hostDone(1, host, .ok)
      }
      run.blockDone(1)
      run.finish()
    },
    // A block with no hosts, then a runtime error on the server side.
    RendererScenario("no-hosts-and-error") { run in
      run.start()
      run.block(1, "on host pc01 except pc01", line: 1, [])
      run.blockDone(1)
      run.print("went on")
      run.finish(error: "site.cfi:3:7: 'x' is not defined")
    },
  ]

  static func cases() -> [RendererCase] {
    scenarios.flatMap { scenario in Rendering.allCases.map { RendererCase(scenario: scenario, rendering: $0) } }
  }

  /// The scenario's events through the renderer, as text.
  static func render(_ golden: RendererCase) -> String {
    let buffer = OutputBuffer()
    let sink: any EventSink
    switch golden.rendering {
    case .json:
      sink = JSONRenderer(
        output: { data in buffer.append(data) },
        now: { EventScript.date.addingTimeInterval(2) })
    case .quiet, .normal, .verbose:
      let verbosity: Verbosity = golden.rendering == .quiet ? .quiet : golden.rendering == .verbose ? .verbose : .normal
      sink = TextRenderer(
        verbosity: verbosity, style: Style(enabled: false), progress: false,
        output: { text in buffer.append(Data(text.utf8)) })
    }
    for event in golden.scenario.events { sink.emit(event) }
    return buffer.text
  }

  @Test("renderer golden", arguments: cases())
  func golden(_ golden: RendererCase) {
    let problem = GoldenFile.check(
      RendererGoldenTests.render(golden), path: RendererGoldenTests.directory + "/" + golden.fileName,
      rerecord: "CFI_RECORD=1 swift test --filter RendererGolden")
    if let problem { Issue.record(Comment(rawValue: problem)) }
  }

  /// Fails while recording, so that a recording run never looks like a passing one.
  @Test func recordingIsOff() {
    #expect(!GoldenFile.recording, "CFI_RECORD=1: expectations were rewritten; review them and run again without it")
  }

  /// Every file in `Golden/` is a rendering of a scenario.
  @Test func noOrphanFiles() throws {
    let names = Set(RendererGoldenTests.cases().map(\.fileName))
    for file in try FileManager.default.contentsOfDirectory(atPath: RendererGoldenTests.directory) {
      #expect(names.contains(file), "\(file) belongs to no scenario")
    }
  }

  /// Every JSON line is one object with an `event`, and the stream has one per event.
  @Test(arguments: scenarios)
  func jsonIsOneObjectPerEvent(_ scenario: RendererScenario) throws {
    let text = RendererGoldenTests.render(RendererCase(scenario: scenario, rendering: .json))
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.last == "")
    #expect(lines.count - 1 == scenario.events.count)
    for line in lines.dropLast() {
      let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
      #expect(object?["event"] is String, "\(line)")
    }
  }
}

@Suite struct ProgressLineTests {
  @Test func countsUnreachableHostsApartFromFailedOnes() {
    #expect(TextRenderer.progressLine("on group lab", done: 3, of: 12, failed: 0, unreachable: 0) == "on group lab: 3/12 hosts done")
    #expect(
      TextRenderer.progressLine("on group lab", done: 7, of: 12, failed: 1, unreachable: 2)
        == "on group lab: 7/12 hosts done, 1 failed, 2 unreachable")
    #expect(TextRenderer.progressLine("on all", done: 2, of: 2, failed: 0, unreachable: 2) == "on all: 2/2 hosts done, 2 unreachable")
  }
}
