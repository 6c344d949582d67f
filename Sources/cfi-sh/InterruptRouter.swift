// Ctrl-C: SIGINT becomes a cancellation of the running run (remote commands are killed over
// the masters, hosts reported `interrupted`), never a sudden death that would leave remote
// commands running. At the REPL's prompt it clears the line instead. If stopping hangs (a
// host that does not answer the remote kill), more presses quit at once with status 130.

import Foundation
import CFIScript
import Runtime
import Synchronization

/// Routes SIGINT to the line editor or the running task.
final class InterruptRouter {
  private enum Mode {
    case idle
    /// At the prompt (REPL).
    case reading(LineEditor)
    /// A run; the editor to go back to, if any.
    case running(Task<RunResult, Never>, LineEditor?)
  }

  /// Shared with the signal handler, which runs on a dispatch queue.
  private final class State: Sendable {
    let mode = Mutex<Mode>(.idle)
    /// Presses since the running task started, and how many quit.
    let presses = Mutex(0)
    let pressesToQuit: Int

    init(pressesToQuit: Int) { self.pressesToQuit = pressesToQuit }

    func interrupt() {
      switch mode.withLock({ $0 }) {
      case .idle: break
      case .reading(let editor): editor.interrupt()
      case .running(let task, _):
        let pressed = presses.withLock { $0 += 1; return $0 }
        if pressed == 1 {
          let more = pressesToQuit - 1
          let hint = more == 1 ? "Ctrl-C again to quit now" : "Ctrl-C \(more) times more to quit cfi-sh"
          Stream.standardError.write("\ninterrupting: stopping remote commands (\(hint))\n")
          task.cancel()
        } else if pressed >= pressesToQuit {
          Foundation.exit(ExitStatus.interrupted)
        }
      }
    }
  }

  private let state: State
  private let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())

  /// `pressesToQuit`: the press that quits (2 for a runbook: the second; 3 for the REPL,
  /// where a stray double press must not end the session).
  init(pressesToQuit: Int) {
    state = State(pressesToQuit: pressesToQuit)
  }

  /// Takes SIGINT over; with an editor, at its prompt.
  func start(editor: LineEditor? = nil) {
    if let editor { state.mode.withLock { $0 = .reading(editor) } }
    signal(SIGINT, SIG_IGN)
    source.setEventHandler { [state] in state.interrupt() }
    source.resume()
  }

  func running(_ task: Task<RunResult, Never>) {
    state.presses.withLock { $0 = 0 }
    state.mode.withLock { mode in
      switch mode {
      case .reading(let editor): mode = .running(task, editor)
      default: mode = .running(task, nil)
      }
    }
  }

  /// Back at the prompt.
  func reading() {
    state.mode.withLock { mode in
      if case .running(_, let editor?) = mode { mode = .reading(editor) }
    }
  }

  func stop() {
    source.cancel()
    state.mode.withLock { $0 = .idle }
    signal(SIGINT, SIG_DFL)
  }
}
