// RecordingExecutor: an in-memory executor for tests of the language above the Runtime.
// It performs nothing; it records each action and answers from a script. (Tests that need
// the commands an action sends use ActionExecutor over a RecordingTransport.)

import Synchronization

/// An executor that records every action and answers with a scripted result.
/// Use it to test the interpreter without hosts; never as a stand-in for fleet tests.
public final class RecordingExecutor: StepExecutor {
  /// One recorded call.
  public struct Call: Hashable, Sendable {
    public var host: String
    public var action: Action
    public var options: StepOptions
  }

  /// Decides the result of a call; runs concurrently for different hosts.
  public typealias Responder = @Sendable (Action, Host) async -> StepResult

  private let responder: Responder
  private let state = Mutex(State())

  private struct State {
    var calls: [Call] = []
    var running = 0
    var peakRunning = 0
    var shutdowns = 0
    var windows: [Duration] = []
    var releases: [(host: String, afterCalls: Int)] = []
  }

  /// Creates an executor answering with `responder` (default: `ok`, with `run` echoing nothing).
  public init(responder: @escaping Responder = { _, _ in StepResult(status: .ok) }) {
    self.responder = responder
  }

  public func perform(_ action: Action, on host: Host, options: StepOptions) async -> StepResult {
    state.withLock {
      $0.calls.append(Call(host: host.name.rawValue, action: action, options: options))
      $0.running += 1
      $0.peakRunning = max($0.peakRunning, $0.running)
    }
    defer { state.withLock { $0.running -= 1 } }
    if Task.isCancelled { return StepResult(status: .interrupted) }
    return await responder(action, host)
  }

  public func shutdown() async { state.withLock { $0.shutdowns += 1 } }

  public func release(_ host: Host) async {
    state.withLock { state in
      state.releases.append((host.name.rawValue, state.calls.filter { $0.host == host.name.rawValue }.count))
    }
  }

  public func keepConnections(for window: Duration) async { state.withLock { $0.windows.append(window) } }

  /// Nothing is kept from run to run here.
  public func startNewRun() async {}

  /// Every call so far, in the order they were made.
  public var calls: [Call] { state.withLock { $0.calls } }
  /// The calls made on one host, in order.
  public func calls(on host: String) -> [Action] { calls.filter { $0.host == host }.map(\.action) }
  /// The most calls that were in flight at once.
  public var peakConcurrency: Int { state.withLock { $0.peakRunning } }
  /// The windows `keepConnections(for:)` was given, in order.
  public var keptWindows: [Duration] { state.withLock { $0.windows } }
  /// The hosts `release(_:)` was given, in order, each with how many calls had been made on
  /// it by then.
  public var releases: [(host: String, afterCalls: Int)] { state.withLock { $0.releases } }
  /// How many times `shutdown()` was called.
  public var shutdownCount: Int { state.withLock { $0.shutdowns } }
}
