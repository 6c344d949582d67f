// The kills that interrupts start, by command tag. The interrupted command waits for its own
// before it reports (so the recap, and the REPL's next prompt, never come while the command
// still runs on the host); the run's end waits for every one before masters close.

import Synchronization

/// Kills in flight, each confirming (true) or not (false) that its command ended.
final class PendingKills: Sendable {
  private let tasks = Mutex<[String: Task<Bool, Never>]>([:])

  /// Starts the kill of the command tagged `tag` (from a cancellation handler: never blocks).
  func start(_ tag: String, _ kill: @escaping @Sendable () async -> Bool) {
    let task = Task.detached(operation: kill)
    tasks.withLock { $0[tag] = task }
  }

  /// Waits for the kill of `tag`; nil when none was started (the command was not interrupted).
  func confirm(_ tag: String) async -> Bool? {
    guard let task = tasks.withLock({ $0[tag] }) else { return nil }
    return await task.value
  }

  /// Waits for every kill, and forgets them.
  func finishAll() async {
    let all = tasks.withLock { tasks in
      defer { tasks = [:] }
      return Array(tasks.values)
    }
    for task in all { _ = await task.value }
  }

  /// The result of a command that an interrupt stopped, once its kill has been waited for.
  static func interrupted(confirmed: Bool) -> CommandResult {
    CommandResult(.interrupted(confirmed ? nil : "interrupted; could not confirm that the command ended on the host"))
  }
}
