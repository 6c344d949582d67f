// A tagged command whose local process (ssh, or sh for LocalTransport) may stop before the
// command does where it runs: an interrupt (Ctrl-C cancels the task, which kills the local
// process) or output over the limit. The command runs in a session of its own there, so the
// local process dying leaves it running: it is ended by its tag (`RemoteCommand.killScript`),
// and the step reports only once that kill has finished, so a recap or the REPL's next
// prompt never comes while the command still runs.

enum TaggedCommand {
  /// How a tagged command's local process ended.
  enum Ending {
    /// It ran to its end: the caller reads its status.
    case finished(ProgramResult)
    /// It did not: the result to report (the command has been killed where it ran).
    case stopped(CommandResult)
  }

  /// Runs `local`, the process carrying a command wrapped under a tag. When it did not end on
  /// its own, `kill` ends the command by its tag, in a detached task (in the cancelled task
  /// the kill's own process would be stopped at once) that is awaited; `reachable` says
  /// whether the command can have started at all (an ssh that never connected started
  /// nothing, and its kill would only wait for another connect timeout). `program` names the
  /// local program in messages.
  static func run(
    program: String, _ local: () async throws -> ProgramResult, reachable: () -> Bool,
    kill: @escaping @Sendable () async -> Bool
  ) async -> Ending {
    var overflow = false
    do {
      let output = try await local()
      if !Task.isCancelled { return .finished(output) }
    } catch where LocalProcess.isOutputLimit(error) && !Task.isCancelled {
      overflow = true
    } catch where !Task.isCancelled {
      return .stopped(CommandResult(.notRun("cannot run \(program): \(error)")))
    } catch {}
    guard reachable() else { return .stopped(CommandResult(.interrupted("interrupted while connecting"))) }
    let ended = await Task.detached(operation: kill).value
    let where_ = ended ? "" : "; could not confirm that it ended on the host"
    if overflow {
      return .stopped(CommandResult(.notRun("its output was larger than \(LocalProcess.outputLimit >> 20) MiB; it was stopped\(where_)")))
    }
    return .stopped(CommandResult(.interrupted(ended ? nil : "interrupted" + where_)))
  }
}
