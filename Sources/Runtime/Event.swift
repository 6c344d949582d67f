// Events: what a run reports while it goes, for renderers (terminal, JSON Lines, audit).
// Producers never print; they emit events to a sink.

import Foundation
import Synchronization

/// Identifies one step (one action statement) of a run, for grouping results across hosts.
public struct StepInfo: Hashable, Sendable {
  /// The `on` block the step belongs to (1-based, in run order).
  public var block: Int
  /// Where the step is written, `file:line:column`.
  public var location: String
  /// The action as written, with secrets redacted, e.g. `run "uname -r"`.
  public var label: String
  /// Whether a failure here is tolerated (the step is inside a `try` block).
  public var tolerated: Bool

  public init(block: Int, location: String, label: String, tolerated: Bool = false) {
    self.block = block
    self.location = location
    self.label = label
    self.tolerated = tolerated
  }
}

/// Describes one `on` block as it starts.
public struct BlockInfo: Hashable, Sendable {
  /// 1-based, in run order.
  public var id: Int
  /// The target as written, e.g. `on group lab except pc03`.
  public var label: String
  /// Where the block is written, `file:line:column`.
  public var location: String
  /// The hosts the block will run on, in order.
  public var hosts: [Host]
  /// Hosts the target named that are this server (`ServerIdentity`), left out: the server is
  /// reached only when `on host NAME` names it.
  public var leftOut: [Host]

  public init(id: Int, label: String, location: String, hosts: [Host], leftOut: [Host] = []) {
    self.id = id
    self.label = label
    self.location = location
    self.hosts = hosts
    self.leftOut = leftOut
  }

  /// The note about the hosts left out, e.g. `on all: leaving out localhost (this server)`;
  /// nil when none was.
  public var leftOutNote: String? {
    guard !leftOut.isEmpty else { return nil }
    return "\(label): leaving out \(HostFolding.foldedString(leftOut.map(\.name))) (this server)"
  }
}

/// The end state of one host in one `on` block, or in a whole run.
public struct HostOutcome: Hashable, Sendable {
  public var host: Host
  public var status: StepStatus
  /// Why the host failed or was skipped, when known.
  public var message: String?
  /// Why the host was not reached (`unreachable` only).
  public var reason: UnreachableReason?

  public init(host: Host, status: StepStatus, message: String? = nil, reason: UnreachableReason? = nil) {
    self.host = host
    self.status = status
    self.message = message
    self.reason = reason
  }
}

/// Something that happened during a run.
public enum Event: Sendable {
  /// A run begins. `run` is its id (the audit log's), set by the `FleetRun` it runs in.
  case runStarted(runbook: String, check: Bool, date: Date, run: String? = nil)
  /// An `on` block begins.
  case blockStarted(BlockInfo)
  /// An `on` block's target matched no host (it comes right after the block's
  /// `blockStarted`): nothing ran there, which the run's exit status tells (bit 8).
  case noHosts(block: Int, target: String, location: String)
  /// Hosts the browse found while the block ran (it started before avahi had answered in
  /// full) join it: they run its body like the others, and count in its outcome.
  case hostsJoined(block: Int, hosts: [Host])
  /// A host begins a step.
  case stepStarted(StepInfo, host: Host)
  /// A host finished a step.
  case stepFinished(StepInfo, host: Host, result: StepResult)
  /// A host is done with a block (finished, stopped by a failure, or never started).
  case hostFinished(block: Int, HostOutcome)
  /// An `on` block ended; `stopped` is set when `max_fail` stopped it early.
  case blockFinished(id: Int, outcomes: [HostOutcome], stopped: Bool)
  /// A `print` statement's text; `host` is set when it ran inside an `on` block.
  case message(String, host: Host?)
  /// A run that delivers recorded a pending delivery for each of `hosts` (unreachable now),
  /// to run when they come back (`cfi-sh watch`); `expires`: when it is given up. Sent by
  /// the `FleetRun`, just before `runFinished`.
  case deliveriesRecorded(hosts: [HostName], expires: Date?)
  /// The run ended; one outcome per host that took part, worst status over all blocks.
  /// `exitStatus` and `run` are set by the `FleetRun` it runs in, which decides the status.
  case runFinished(outcomes: [HostOutcome], interrupted: Bool, error: String?, exitStatus: Int32? = nil, run: String? = nil)
}

/// Receives events. Called concurrently from host tasks: implementations must be
/// thread-safe and quick (buffer, don't block on I/O for long).
public protocol EventSink: Sendable {
  func emit(_ event: Event)
}

/// A sink that keeps every event in memory, for tests and for callers that render at the end.
public final class EventLog: EventSink {
  private let storage = Mutex<[Event]>([])

  public init() {}

  public func emit(_ event: Event) { storage.withLock { $0.append(event) } }

  /// The events so far, in emission order.
  public var events: [Event] { storage.withLock { $0 } }

  /// Every finished step, as (host, label, result), in emission order.
  public var steps: [(host: String, label: String, result: StepResult)] {
    events.compactMap {
      if case .stepFinished(let step, let host, let result) = $0 { (host.name.rawValue, step.label, result) } else { nil }
    }
  }

  /// The texts of `print` statements, in order.
  public var messages: [String] {
    events.compactMap { if case .message(let text, _) = $0 { text } else { nil } }
  }

  /// The final per-host outcomes of the run, if it finished.
  public var finalOutcomes: [String: StepStatus] {
    for event in events.reversed() {
      if case .runFinished(let outcomes, _, _, _, _) = event {
        return Dictionary(outcomes.map { ($0.host.name.rawValue, $0.status) }, uniquingKeysWith: max)
      }
    }
    return [:]
  }
}
