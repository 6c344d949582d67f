// RecordingTransport: a transport that runs nothing. It records every command, push and pull
// it is given and answers from a script, so that tests read exactly what cfi-sh would send.

import Synchronization

/// A transport that records commands and pushes and answers with scripted results.
public final class RecordingTransport: Transport {
  /// One recorded request.
  public enum Request: Hashable, Sendable {
    case run(RemoteCommand)
    case push(Push)
    case pull(Pull)
  }

  /// One recorded call: the host and what was asked of it.
  public struct Call: Hashable, Sendable {
    public var host: String
    public var request: Request
  }

  /// Decides the result of a request; runs concurrently for different hosts.
  public typealias Responder = @Sendable (Request, Host) async -> CommandResult

  private let responder: Responder
  private let state = Mutex(State())

  private struct State {
    var calls: [Call] = []
    var newRuns = 0
    var shutdowns = 0
    var forgotten: [String] = []
  }

  /// Creates a transport answering with `responder` (default: every command exits 0, silently).
  public init(responder: @escaping Responder = { _, _ in CommandResult(.exited(0)) }) {
    self.responder = responder
  }

  public func run(_ command: RemoteCommand, on host: Host) async -> CommandResult {
    await record(.run(command), host)
  }

  public func push(_ push: Push, to host: Host) async -> CommandResult {
    await record(.push(push), host)
  }

  public func pull(_ pull: Pull, from host: Host) async -> CommandResult {
    await record(.pull(pull), host)
  }

  private func record(_ request: Request, _ host: Host) async -> CommandResult {
    state.withLock { $0.calls.append(Call(host: host.name.rawValue, request: request)) }
    if Task.isCancelled { return CommandResult(.interrupted(nil)) }
    return await responder(request, host)
  }

  public func startNewRun() async { state.withLock { $0.newRuns += 1 } }
  public func shutdown() async { state.withLock { $0.shutdowns += 1 } }
  public func forget(_ host: Host) async { state.withLock { $0.forgotten.append(host.name.rawValue) } }
  /// Records and answers as a transport to other machines would.
  public var runsOnThisMachine: Bool { false }

  /// Every call so far, in the order they were made.
  public var calls: [Call] { state.withLock { $0.calls } }
  /// What was asked of one host, in order.
  public func requests(on host: String) -> [Request] { calls.filter { $0.host == host }.map(\.request) }
  /// How many times `startNewRun()` was called.
  public var newRunCount: Int { state.withLock { $0.newRuns } }
  /// The hosts `forget(_:)` was called for, in order.
  public var forgotten: [String] { state.withLock { $0.forgotten } }
  /// How many times `shutdown()` was called.
  public var shutdownCount: Int { state.withLock { $0.shutdowns } }
}
