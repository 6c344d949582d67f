// One signal policy for runbooks and the shell. SIGINT (Ctrl-C), SIGTERM (cron, systemd),
// SIGHUP (a closed terminal) and a broken stdout (`cfi-sh … | head`) each stop a run the same
// way: the run's task is cancelled, so remote commands are killed by their tag over the
// masters and their hosts reported `interrupted`, the masters are closed and the control
// directory removed, the audit record is written, and the store lock is released last (the
// run's `FleetRun` orders those); the process then exits with the signal's status (130, 143,
// 129, 141). Never a sudden death that would leave remote commands running beside the next run.
// In the shell, SIGINT stops the entry and keeps the session; the others end the session after
// the same cleanup. At the prompt, SIGINT clears the line. A second signal while a run stops
// quits at once (for Ctrl-C: the second press of a runbook, the third of the shell, where a
// stray double press must not end the session): the cleanup's steps are each bounded, the
// kernel releases the lock, and the next run removes what is left (`ControlDirectory`).
// SIGPIPE itself is ignored: the broken pipe is seen where stdout is written (EPIPE) or,
// for a pipe or socket, as soon as its reader goes, by a thread polling it.

import Foundation
import CFIScript
import Runtime
import Synchronization

/// The write end of the pipe the signal handler writes to (set once, before the handler is
/// installed; the handler only reads it). `nonisolated(unsafe)`: a C signal handler cannot
/// capture, and this is the one value it needs.
nonisolated(unsafe) private var signalPipe: Int32 = -1

/// Routes stop signals to the line editor, the running task, or the exit.
final class StopSignals: Sendable {
  /// Signals are the process's: one policy for it.
  static let shared = StopSignals()

  private enum Mode {
    /// Before a runbook's run starts (inventory, lock): nothing to clean up, a signal exits.
    case waiting
    /// At the shell's prompt, or between its entries.
    case reading(LineEditor)
    /// A run (its task, once it has one: a signal before that cancels it as it comes); the
    /// editor to go back to, if any.
    case running(Task<RunResult, Never>?, LineEditor?)
    /// After a run, or the session's end: what is left (the record, the lock, the masters)
    /// finishes, then the process exits with the status of a signal received meanwhile.
    case finishing
    /// Between the runs of a long-lived command (`cfi-sh watch`): a signal is handed to
    /// `stop`, which ends the command after what it does (a second one quits at once).
    case idle(stop: @Sendable (StopSignal) -> Void)
  }

  private struct State {
    var mode = Mode.waiting
    /// The shell (SIGINT stops an entry, not the session), or a runbook.
    var shell = false
    /// The signal that stopped the current run (or arrived after it), and the Ctrl-C presses since.
    var received: StopSignal?
    var presses = 0
    /// The signal that ends the session or the process (any but SIGINT in the shell).
    var ending: StopSignal?
    var started = false
    var brokenPipe = false

    /// The Ctrl-C press that quits at once while a run stops: the second in a runbook, the
    /// third in the shell, where a stray double press must not end the session.
    var pressesToQuit: Int { shell ? 3 : 2 }
  }

  private enum Action {
    case none
    case exit(Int32)
    case cancel(Task<RunResult, Never>?, StopSignal)
    case wake(LineEditor)
    case stop(@Sendable (StopSignal) -> Void, StopSignal)
  }

  private let state = Mutex(State())

  private init() {}

  /// Takes the stop signals over, for the rest of the process; with an editor, for the shell,
  /// at its prompt.
  func start(editor: LineEditor? = nil) {
    let first = state.withLock { state in
      state.shell = editor != nil
      if let editor { state.mode = .reading(editor) }
      defer { state.started = true }
      return !state.started
    }
    guard first else { return }
    signal(SIGPIPE, SIG_IGN)
    // A handler of our own that writes the signal's number to a pipe, read by a thread of its
    // own: installed before `start` returns (a dispatch signal source registers later, and a
    // signal meanwhile would be lost), and never starved by a cooperative pool a blocking
    // wait (the store lock's flock) fills.
    var ends: [Int32] = [-1, -1]
    guard pipe(&ends) == 0 else { fatalError("cfi-sh: pipe: \(String(cString: strerror(errno)))") }
    for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    _ = fcntl(ends[1], F_SETFL, O_NONBLOCK)
    signalPipe = ends[1]
    let reader = ends[0]
    Thread.detachNewThread { [self] in
      var number: UInt8 = 0
      while true {
        let count = read(reader, &number, 1)
        if count < 0 && errno == EINTR { continue }
        guard count == 1 else { return }
        if let stop = StopSignal.allCases.first(where: { $0.number == Int32(number) }) { receive(stop) }
      }
    }
    for stop in [StopSignal.interrupt, .terminate, .hangup] {
      signal(stop.number) { number in
        let saved = errno
        var byte = UInt8(truncatingIfNeeded: number)
        _ = write(signalPipe, &byte, 1)
        errno = saved
      }
    }
    watchOutput()
  }

  /// A run starts (its body, before its task exists): a signal now stops it. In the shell, a
  /// signal that ends the session and came before stops it at once.
  func starting() {
    state.withLock { state in
      state.received = state.ending
      state.presses = 0
      switch state.mode {
      case .reading(let editor): state.mode = .running(nil, editor)
      default: state.mode = .running(nil, nil)
      }
    }
  }

  /// The run's task: cancelled now if a signal came since `starting()`.
  func running(_ task: Task<RunResult, Never>) {
    let stopped = state.withLock { state in
      if case .running(nil, let editor) = state.mode { state.mode = .running(task, editor) }
      return state.received != nil
    }
    if stopped { task.cancel() }
  }

  /// The run's task has ended: the signal that stopped it, if any (it goes into the record).
  /// The shell goes back to its prompt (unless the session ends); a runbook finishes.
  @discardableResult
  func ran() -> StopSignal? {
    state.withLock { state in
      if case .running(_, let editor?) = state.mode, state.ending == nil {
        state.mode = .reading(editor)
      } else {
        state.mode = .finishing
      }
      return state.received
    }
  }

  /// Between runs of a long-lived command: a signal now (or one that came during the last
  /// run) is handed to `stop`.
  func idle(stop: @escaping @Sendable (StopSignal) -> Void) {
    let signal = state.withLock { state in
      state.mode = .idle(stop: stop)
      return state.received
    }
    if let signal { stop(signal) }
  }

  /// The session is ending (its masters being closed): a signal now only quits sooner.
  func finishing() {
    state.withLock { $0.mode = .finishing }
  }

  /// The signal that ends the session or the process, if one came.
  var ending: StopSignal? { state.withLock { $0.ending } }

  /// The signal received since the last run started, if any (a late one still decides the status).
  var received: StopSignal? { state.withLock { $0.received } }

  /// Standard output is broken (EPIPE on a write, or its reader gone): stop as for a signal, once.
  func outputBroken() {
    guard state.withLock({ state in defer { state.brokenPipe = true }; return !state.brokenPipe }) else { return }
    receive(.brokenPipe)
  }

  /// Whether standard output was found broken (nothing more is written to it).
  var isOutputBroken: Bool { state.withLock { $0.brokenPipe } }

  private func receive(_ signal: StopSignal) {
    let action = state.withLock { state -> Action in
      let previous = state.ending
      if previous == nil, signal != .interrupt || !state.shell { state.ending = signal }
      switch state.mode {
      case .waiting:
        return .exit(signal.exitStatus)
      case .reading(let editor):
        // SIGINT clears the line; the shell's loop ends the session on any other.
        return .wake(editor)
      case .finishing:
        if let previous { return .exit(previous.exitStatus) }
        if state.received == nil { state.received = signal }
        return .none
      case .idle(let stop):
        if let previous, state.received != nil { return .exit(previous.exitStatus) }
        state.received = signal
        return .stop(stop, signal)
      case .running(let task, _):
        guard let first = state.received else {
          state.received = signal
          state.presses = 1
          return .cancel(task, signal)
        }
        if first == .interrupt, signal == .interrupt {
          state.presses += 1
          return state.presses >= state.pressesToQuit ? .exit(first.exitStatus) : .none
        }
        return .exit((state.ending ?? first).exitStatus)
      }
    }
    switch action {
    case .none: break
    case .exit(let status): Foundation.exit(status)
    case .wake(let editor): editor.interrupt()
    case .stop(let stop, let signal): stop(signal)
    case .cancel(let task, let signal):
      Stream.standardError.write(stopping(signal))
      task?.cancel()
    }
  }

  private func stopping(_ signal: StopSignal) -> String {
    guard signal == .interrupt else {
      let cause = signal == .brokenPipe ? "standard output closed" : signal.name
      return "cfi-sh: \(cause): stopping remote commands (another signal quits at once)\n"
    }
    let more = state.withLock { $0.pressesToQuit } - 1
    let hint = more == 1 ? "Ctrl-C again to quit now" : "Ctrl-C \(more) times more to quit cfi-sh"
    return "\ninterrupting: stopping remote commands (\(hint))\n"
  }

  /// When stdout is a pipe or a socket, its reader going away shows in poll() at once (POLLERR,
  /// POLLHUP), long before the next write: a run waiting on a long command must stop then.
  private func watchOutput() {
    var status = stat()
    guard fstat(1, &status) == 0, [S_IFIFO, S_IFSOCK].contains(status.st_mode & S_IFMT) else { return }
    Thread.detachNewThread { [self] in
      var watched = pollfd(fd: 1, events: 0, revents: 0)
      while poll(&watched, 1, -1) < 0 && errno == EINTR {}
      if watched.revents & Int16(POLLERR | POLLHUP) != 0 { outputBroken() }
    }
  }
}
