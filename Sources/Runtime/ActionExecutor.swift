// ActionExecutor: performs actions on hosts by running their operations' plans on a
// transport. The one place where a host's result takes its final shape.

import Synchronization

/// Performs actions on hosts: what the interpreter calls for each step. Implementations:
/// `ActionExecutor` (operations over a transport) and `RecordingExecutor` (tests of the
/// language, which answer per action).
public protocol StepExecutor: Sendable {
  /// Performs `action` on `host`; a host-side failure is a result, never a thrown error.
  func perform(_ action: Action, on host: Host, options: StepOptions) async -> StepResult
  /// Starts a new run on the same connections (a session's next entry): per-run state (hosts
  /// found unreachable, package lists refreshed) starts afresh.
  func startNewRun() async
  /// Keeps the connections opened from now on open for `window` after the run (`set
  /// persist`); zero: closed at its end.
  func keepConnections(for window: Duration) async
  /// The run sends nothing more to `host`: what it holds for the host alone, and would
  /// otherwise release at the end, may go now (`Transport.release`).
  func release(_ host: Host) async
  /// Releases everything held for the run. Called once at the end.
  func shutdown() async
}

extension StepExecutor {
  /// An executor without connections of its own keeps none.
  public func keepConnections(for window: Duration) async {}
  public func release(_ host: Host) async {}
}

/// Performs actions with the operations of Operations/ over a transport, reading the store
/// for what they need.
public final class ActionExecutor: StepExecutor {
  public let transport: any Transport
  private let store: Store
  /// Hosts whose package lists were refreshed in this run (apt-get update once per host).
  private let aptListsRefreshed = Mutex<Set<HostName>>([])

  /// The first pause between tries while a host reboots (`RebootWait.firstPause`; tests shorten it).
  private let rebootPause: Duration

  /// An executor sending commands through `transport`, store inputs from `store`.
  public convenience init(transport: any Transport, store: Store) {
    self.init(transport: transport, store: store, rebootPause: RebootWait.firstPause)
  }

  init(transport: any Transport, store: Store, rebootPause: Duration) {
    self.transport = transport
    self.store = store
    self.rebootPause = rebootPause
  }

  public func perform(_ action: Action, on host: Host, options: StepOptions) async -> StepResult {
    let clock = ContinuousClock()
    let start = clock.now
    var result = await execute(action, on: host, options: options)
    if Task.isCancelled && result.status != .ok && result.status != .changed { result.status = .interrupted }
    result.duration = clock.now - start
    return result
  }

  private func execute(_ action: Action, on host: Host, options: StepOptions) async -> StepResult {
    if case .reboot = action, transport.runsOnThisMachine {
      return .failure("refusing to reboot \(host.name): this transport runs its commands on this machine")
    }
    let prepared: PreparedAction
    do throws(StoreError) { prepared = try PreparedAction.prepare(action, for: host, store: store) } catch {
      return .failure(error.message)
    }
    let refreshed = aptListsRefreshed.withLock { $0.contains(host.name) }
    var plan = Operations.plan(prepared, facts: HostFacts(host: host, options: options, aptListsRefreshed: refreshed))
    while true {
      switch plan {
      case .done(let result, let learned):
        if learned.contains(.aptListsRefreshed) { _ = aptListsRefreshed.withLock { $0.insert(host.name) } }
        return result
      case .command(let command, let then):
        // An interrupted step sends nothing more (its first command may have been stopped).
        if Task.isCancelled { return StepResult(status: .interrupted) }
        plan = Self.after(await transport.run(command, on: host), timeout: command.timeout, then)
      case .push(let push, let then):
        if Task.isCancelled { return StepResult(status: .interrupted) }
        plan = Self.after(await transport.push(push, to: host), timeout: nil, then)
      case .pull(let pull, let then):
        if Task.isCancelled { return StepResult(status: .interrupted) }
        plan = Self.after(await transport.pull(pull, from: host), timeout: nil, then)
      case .read(let read, let then):
        plan = then(read.perform())
      case .awaitReboot(let wait, let then):
        guard let outcome = await awaitReboot(wait, on: host) else {
          return StepResult(status: .interrupted, message: "interrupted while waiting for the host to come back")
        }
        plan = then(outcome)
      }
    }
  }

  /// What comes after a command, push or pull: what its decoder `then` decides when it ran
  /// to its end, else the step's end (`ending(of:timeout:)`).
  static func after(_ outcome: CommandResult, timeout: Duration?, _ then: (Exited) -> Plan) -> Plan {
    guard case .exited(let status) = outcome.termination else { return .done(ending(of: outcome, timeout: timeout)) }
    return then(Exited(status: status, stdout: outcome.stdout, stderr: outcome.stderr))
  }

  /// Waits for `host` to come back from a reboot: closes its master (dead, or about to die
  /// with its sshd), then tries the probe until it answers with a new boot id, pausing
  /// between tries (`RebootWait.firstPause`, 1s, doubling up to 8s) until `wait.timeout`
  /// after the reboot began. The master of the try that found the host back stays open for
  /// the steps after it. Nil when interrupted.
  private func awaitReboot(_ wait: RebootWait, on host: Host) async -> RebootWait.Outcome? {
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start + wait.timeout
    var pause = rebootPause
    while true {
      await transport.forget(host)
      if Task.isCancelled { return nil }
      var probe = wait.probe
      probe.connectTimeout = max(.seconds(1), min(probe.connectTimeout, deadline - clock.now))
      let last = await transport.run(probe, on: host)
      switch last.termination {
      case .interrupted: return nil
      case .exited(0):
        if let bootID = RebootWait.bootID(in: last.stdout), bootID != wait.previousBootID {
          return .back(after: clock.now - start)
        }
      default: break
      }
      let left = deadline - clock.now
      guard left > .zero else {
        await transport.forget(host)
        return RebootWait.lastOutcome(last)
      }
      do { try await Task.sleep(for: min(pause, left)) } catch { return nil }
      pause = min(pause * 2, rebootPause * 8)
    }
  }

  /// The step's result when a command did not run to its own end (one that exited goes to
  /// the plan's decoder instead). `timeout` is the command's, for the message.
  static func ending(of outcome: CommandResult, timeout: Duration?) -> StepResult {
    switch outcome.termination {
    case .exited(let status):
      return StepResult(status: status == 0 ? .ok : .failed, exitCode: status, output: outcome.stdout, errorOutput: outcome.stderr)
    case .timedOut(let status):
      return StepResult(
        status: .failed, exitCode: status, output: outcome.stdout, errorOutput: outcome.stderr,
        message: "timed out after \(timeout?.cfiText ?? "its timeout") (the command was killed on the host)")
    case .unreachable(let unreachable):
      return StepResult(
        status: .unreachable, output: outcome.stdout, errorOutput: outcome.stderr, message: unreachable.message,
        reason: unreachable.reason)
    case .notRun(let message):
      return StepResult(status: .failed, errorOutput: outcome.stderr, message: message)
    case .interrupted(let message):
      return StepResult(status: .interrupted, message: message)
    }
  }

  public func startNewRun() async {
    aptListsRefreshed.withLock { $0 = [] }
    await transport.startNewRun()
  }

  public func keepConnections(for window: Duration) async { await transport.keepConnections(for: window) }

  public func release(_ host: Host) async { await transport.release(host) }

  public func shutdown() async { await transport.shutdown() }
}
