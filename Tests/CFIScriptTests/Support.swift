// Helpers for the interpreter tests: a fleet of a dozen hosts, a temporary store, and
// `run(_:)`, which loads, resolves and runs a runbook on a RecordingExecutor.

import CFIScript
import CFISyntax
import Foundation
import Runtime
import Synchronization
import Testing
import TestSupport

/// The test fleet: lab has pc01…pc08, office has desk1, desk2, desk3, desk10 (listed out of
/// natural order on purpose); pc03 has an explicit address.
let labHosts = (1...8).map { String(format: "pc%02d", $0) }
let officeHosts = ["desk1", "desk2", "desk3", "desk10"]

func testInventory() -> Inventory {
  var hosts = labHosts.map { Runtime.Host(name: HostName($0)!, group: "lab", address: $0 == "pc03" ? "10.0.0.3" : nil) }
  hosts += ["desk10", "desk2", "desk1", "desk3"].map { Runtime.Host(name: HostName($0)!, group: "office") }
  return Inventory(hosts: hosts)
}

/// The server the interpreter tests run on: not this machine, so they do not depend on it.
let testServer = ServerIdentity(names: ["cfiserver.example.org", "cfiserver"], addresses: ["192.0.2.1", "2001:db8::1"])

/// What a test run left behind.
struct Outcome: Sendable {
  var result: RunResult
  var executor: RecordingExecutor
  var log: EventLog
  /// Resolver warnings (errors fail the test in `run`).
  var diagnostics: [Diagnostic]

  /// The final status of each host that took part.
  var statuses: [String: StepStatus] {
    Dictionary(result.outcomes.map { ($0.host.name.rawValue, $0.status) }, uniquingKeysWith: max)
  }
  /// The hosts that took part, in the order the run reports them.
  var hostNames: [String] { result.outcomes.map(\.host.name.rawValue) }
  /// The `run` commands performed on a host, in order.
  func commands(on host: String) -> [String] {
    executor.calls(on: host).compactMap { if case .run(let command) = $0 { command } else { nil } }
  }
  /// Every host that got at least one call, sorted.
  var touchedHosts: [String] { Set(executor.calls.map(\.host)).sorted() }
  /// The messages of hosts that ended with a message.
  func message(of host: String) -> String? { result.outcomes.first { $0.host.name.rawValue == host }?.message }
}

/// A responder that answers every call with `ok`, or what `answer` says for a command.
func commandResponder(
  _ answer: @escaping @Sendable (_ command: String, _ host: Runtime.Host) -> StepResult?
) -> RecordingExecutor.Responder {
  { action, host in
    if case .run(let command) = action, let result = answer(command, host) { return result }
    return StepResult(status: .ok)
  }
}

/// A temporary directory, removed by `remove()`.
struct TemporaryDirectory {
  let path: String

  init() throws {
    path = NSTemporaryDirectory() + "cfi-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  func write(_ relative: String, _ text: String) throws {
    let full = path + "/" + relative
    try FileManager.default.createDirectory(
      atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: full, atomically: true, encoding: .utf8)
  }

  func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Loads `source` as `DIR/main.cfi` (with `files` written next to it), checks it with the
/// resolver (any error fails the test), and runs it on a RecordingExecutor over the test
/// fleet and a store with `lab` and `office` trees, each holding a `packages.list`.
func run(
  _ source: String,
  files: [String: String] = [:],
  inventory: Inventory = testInventory(),
  settings: RunSettings = RunSettings(),
  lockedSettings: Set<String> = [],
  check: Bool = false,
  arguments: [String] = [],
  environment: [String: String] = [:],
  server: ServerIdentity = testServer,
  limit: RunLimit? = nil,
  discovery: LiveInventory? = nil,
  observe: @escaping @Sendable (Event) -> Void = { _ in },
  responder: @escaping RecordingExecutor.Responder = { _, _ in StepResult(status: .ok) },
  sourceLocation: SourceLocation = #_sourceLocation
) async throws -> Outcome {
  let directory = try TemporaryDirectory()
  defer { directory.remove() }
  try directory.write("store/lab/packages.list", "# lab extras\nemacs\n\nvim  # editor\n  gcc\n")
  try directory.write("store/office/packages.list", "libreoffice\n")
  for (path, text) in files { try directory.write(path, text) }
  let store = Store(root: directory.path + "/store")

  let runbook = Loader.load(text: Array(source.utf8), name: directory.path + "/main.cfi")
  let context = ResolverContext(knownGroups: Set(inventory.groupNames.map(\.rawValue)).union(store.groups()), store: store)
  let diagnostics = runbook.diagnostics + Resolver.check(runbook, context: context)
  let errors = diagnostics.filter { $0.severity == .error }
  #expect(
    errors.isEmpty, "the runbook has errors: \(DiagnosticRenderer(files: runbook.files).render(errors))",
    sourceLocation: sourceLocation)

  let executor = RecordingExecutor(responder: responder)
  let log = EventLog()
  let options = RunOptions(
    store: store, inventory: inventory, settings: settings, lockedSettings: lockedSettings, check: check,
    arguments: arguments, environment: environment, server: server, limit: limit, discovery: discovery)
  let result = await Interpreter.run(
    runbook, name: "main.cfi", executor: executor, sink: MultiplexSink([log, Observer(observe: observe)]), options: options)
  return Outcome(result: result, executor: executor, log: log, diagnostics: diagnostics)
}

/// Hands each event to a closure, as it is emitted.
struct Observer: EventSink {
  let observe: @Sendable (Event) -> Void
  func emit(_ event: Event) { observe(event) }
}

/// Records the start and end of calls, to check batching and overlap.
final class Timeline: Sendable {
  enum Mark: Hashable, Sendable {
    case start(String)
    case end(String)
  }

  private let marks = Mutex<[Mark]>([])
  /// The calls held at the gate, and how many have been let through.
  private let gate = Mutex<(waiting: [CheckedContinuation<Void, Never>], released: Int)>(([], 0))

  var all: [Mark] { marks.withLock { $0 } }

  /// A responder that holds each call at a gate until `width` calls are there together (the
  /// last ones: what is left of `total`), then lets them all through. Calls that may overlap
  /// therefore do overlap, however busy the machine; a run that allows fewer than `width` at
  /// once never opens the gate, and the suite's time limit fails it.
  func gatedResponder(width: Int, total: Int) -> RecordingExecutor.Responder {
    { _, host in
      self.marks.withLock { $0.append(.start(host.name.rawValue)) }
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        self.gate.withLock { gate in
          gate.waiting.append(continuation)
          guard gate.waiting.count == min(width, total - gate.released) else { return }
          gate.released += gate.waiting.count
          for waiting in gate.waiting { waiting.resume() }
          gate.waiting = []
        }
      }
      self.marks.withLock { $0.append(.end(host.name.rawValue)) }
      return StepResult(status: .ok)
    }
  }

  /// A responder that marks a call's start, then waits until it is cancelled.
  func responderUntilCancelled() -> RecordingExecutor.Responder {
    { _, host in
      self.marks.withLock { $0.append(.start(host.name.rawValue)) }
      while !Task.isCancelled { try? await Task.sleep(for: .seconds(60)) }
      self.marks.withLock { $0.append(.end(host.name.rawValue)) }
      return StepResult(status: .interrupted)
    }
  }

  /// Position of a mark in the timeline.
  func index(of mark: Mark) -> Int? { all.firstIndex(of: mark) }
}

/// The names of the twelve hosts in natural order.
let allHostsInOrder = ["desk1", "desk2", "desk3", "desk10"] + labHosts
