// The shell's notices (on stderr) while it waits at its prompt. The browse that the shell
// starts with goes on in the background (the prompt does not wait for it), and what it has to
// say (avahi not answering in full, hosts waiting for acceptance) may come while a line is
// being typed: written then, it would break into the line readline is drawing. So it is held
// while the prompt is up and said once the line is read, before the entry runs.

import Foundation
import Synchronization

final class HeldNotices: Sendable {
  private let state = Mutex<(holding: Bool, held: [String])>((false, []))

  /// Says `message` on stderr, or holds it while the prompt is up.
  func say(_ message: String) {
    let held = state.withLock { state -> Bool in
      if state.holding { state.held.append(message) }
      return state.holding
    }
    if !held { Self.write(message) }
  }

  /// Holds what comes from now on, until `release`.
  func hold() {
    state.withLock { $0.holding = true }
  }

  /// Says what was held, and what comes from now on.
  func release() {
    let held = state.withLock { state -> [String] in
      defer { state = (false, []) }
      return state.held
    }
    held.forEach(Self.write)
  }

  private static func write(_ message: String) {
    Stream.standardError.write("cfi-sh: \(message)\n")
  }
}
