// The JSON Lines renderer (`--json`): one object per event on stdout, for other tools.
// The schema is documented in docs/json-events.md; keep the two in step.

import Foundation
import Runtime
import Synchronization

/// Writes each event as one JSON object on its own line.
final class JSONRenderer: EventSink {
  private let lock = Mutex(())
  /// Where lines go: standard output, or a test's buffer. Called under the renderer's lock.
  private let output: @Sendable (Data) -> Void
  /// The time `run_finished` reports (a test fixes it).
  private let now: @Sendable () -> Date
  private let encoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
  }()

  /// One line of output. Absent fields are omitted.
  struct Record: Encodable {
    var event: String
    /// In `run_started` only: the version of this format (docs/json-events.md).
    var schema: Int?
    /// In `run_started` and `run_finished`: the run's id, the audit log's.
    var run: String?
    var time: String?
    var runbook: String?
    var check: Bool?
    var block: Int?
    var target: String?
    var location: String?
    var hosts: [String]?
    var leftOut: [String]?
    var host: String?
    var group: String?
    var step: String?
    var tolerated: Bool?
    var status: String?
    var exitCode: Int32?
    var stdout: String?
    var stderr: String?
    var diff: String?
    var message: String?
    var reason: String?
    var durationMs: Int64?
    var stopped: Bool?
    var interrupted: Bool?
    var error: String?
    var exitStatus: Int32?
    var outcomes: [Outcome]?
    /// In `deliveries_recorded`: when the deliveries are given up (absent: never).
    var expires: String?

    struct Outcome: Encodable {
      var host: String
      var group: String
      var status: String
      var message: String?
      var reason: String?
    }

    enum CodingKeys: String, CodingKey {
      case event, schema, run, time, runbook, check, block, target, location, hosts, leftOut = "left_out", host, group, step, tolerated, status
      case exitCode = "exit_code", stdout, stderr, diff, message, reason, durationMs = "duration_ms", stopped, interrupted, error
      case exitStatus = "exit_status", outcomes, expires
    }

    init(_ event: String) { self.event = event }
  }

  /// The version of the event format; raised when a field changes meaning or goes away
  /// (new fields and events do not raise it).
  static let schema = 1

  init(
    output: @escaping @Sendable (Data) -> Void = { FileHandle.standardOutput.write($0) },
    now: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.output = output
    self.now = now
  }

  func emit(_ event: Event) {
    let record = JSONRenderer.record(for: event, now: now)
    guard let data = try? encoder.encode(record) else { return }
    lock.withLock { _ in
      output(data + Data("\n".utf8))
    }
  }

  private static func outcomes(_ outcomes: [HostOutcome]) -> [Record.Outcome] {
    outcomes.map {
      Record.Outcome(
        host: $0.host.name.rawValue, group: $0.host.group.rawValue, status: $0.status.rawValue, message: $0.message,
        reason: $0.reason?.rawValue)
    }
  }

  static func record(for event: Event, now: () -> Date) -> Record {
    switch event {
    case .runStarted(let runbook, let check, let date, let run):
      var record = Record("run_started")
      record.schema = JSONRenderer.schema
      record.run = run
      record.runbook = runbook
      record.check = check
      record.time = ISO8601DateFormatter().string(from: date)
      return record
    case .blockStarted(let info):
      var record = Record("block_started")
      record.block = info.id
      record.target = info.label
      record.location = info.location
      record.hosts = info.hosts.map(\.name.rawValue)
      if !info.leftOut.isEmpty { record.leftOut = info.leftOut.map(\.name.rawValue) }
      return record
    case .hostsJoined(let block, let hosts):
      var record = Record("hosts_joined")
      record.block = block
      record.hosts = hosts.map(\.name.rawValue)
      return record
    case .noHosts(let block, let target, let location):
      var record = Record("no_hosts")
      record.block = block
      record.target = target
      record.location = location
      return record
    case .stepStarted(let step, let host):
      var record = Record("step_started")
      record.block = step.block
      record.step = step.label
      record.location = step.location
      record.host = host.name.rawValue
      return record
    case .stepFinished(let step, let host, let result):
      var record = Record("step_finished")
      record.block = step.block
      record.step = step.label
      record.location = step.location
      record.tolerated = step.tolerated ? true : nil
      record.host = host.name.rawValue
      record.status = result.status.rawValue
      record.exitCode = result.exitCode
      record.stdout = result.output
      record.stderr = result.errorOutput
      record.diff = result.diff
      record.message = result.message
      record.reason = result.reason?.rawValue
      record.durationMs = result.duration.wholeMilliseconds
      return record
    case .hostFinished(let block, let outcome):
      var record = Record("host_finished")
      record.block = block
      record.host = outcome.host.name.rawValue
      record.group = outcome.host.group.rawValue
      record.status = outcome.status.rawValue
      record.message = outcome.message
      record.reason = outcome.reason?.rawValue
      return record
    case .blockFinished(let id, let outcomes, let stopped):
      var record = Record("block_finished")
      record.block = id
      record.stopped = stopped
      record.outcomes = Self.outcomes(outcomes)
      return record
    case .message(let text, let host):
      var record = Record("message")
      record.message = text
      record.host = host?.name.rawValue
      return record
    case .deliveriesRecorded(let hosts, let expires):
      var record = Record("deliveries_recorded")
      record.hosts = hosts.map(\.rawValue)
      record.expires = expires.map { ISO8601DateFormatter().string(from: $0) }
      return record
    case .runFinished(let outcomes, let interrupted, let error, let exitStatus, let run):
      var record = Record("run_finished")
      record.run = run
      record.exitStatus = exitStatus
      record.interrupted = interrupted
      record.error = error
      record.outcomes = Self.outcomes(outcomes)
      record.time = ISO8601DateFormatter().string(from: now())
      return record
    }
  }
}
