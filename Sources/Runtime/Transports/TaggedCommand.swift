// A tagged command whose local side (a session over ssh's master, `MuxSession`, or sh for
// LocalTransport) may stop before the command does where it runs: an interrupt (Ctrl-C
// cancels the task, which closes the session or kills sh) or output over the limit. The
// command runs in a session of its own there, so the local side ending leaves it running: it
// is ended by its tag (`RemoteCommand.killScript`), and the step reports only once that kill
// has finished, so a recap or the REPL's next prompt never comes while the command still runs.
// A command's exit status is the one the shell around it reports (`ExitReport`), never the
// local side's: a local process or a master can end with 0 without running anything (ssh
// did, under `SessionType none` or `ForkAfterAuthentication yes`).

enum TaggedCommand {
  /// How a tagged command's local process ended.
  enum Ending {
    /// The local process ran to its end. `status` is the command's own exit status as the
    /// shell around it reported it, nil when no report came back (the command may not have
    /// run); `output` is the local process's, with that report taken out of its stderr.
    case finished(ProgramResult, status: Int32?)
    /// It did not: the result to report (the command has been killed where it ran).
    case stopped(CommandResult)
  }

  /// What `local` throws when the command did not start, with the result to report.
  struct Stop: Error {
    var result: CommandResult
    init(_ result: CommandResult) { self.result = result }
  }

  /// Runs `local`, the process carrying a command wrapped under `tag`. When it did not end on
  /// its own, `kill` ends the command by its tag, in a detached task (in the cancelled task
  /// the kill's own process would be stopped at once) that is awaited; `reachable` says
  /// whether the command can have started at all (an ssh that never connected started
  /// nothing, and its kill would only wait for another connect timeout). `program` names the
  /// local program in messages.
  static func run(
    program: String, tag: String, _ local: () async throws -> ProgramResult, reachable: () -> Bool,
    kill: @escaping @Sendable () async -> Bool
  ) async -> Ending {
    var overflow = false
    do {
      let output = try await local()
      if !Task.isCancelled {
        guard let (status, stderr) = ExitReport.take(from: output.stderr, tag: tag) else {
          return .finished(output, status: nil)
        }
        return .finished(ProgramResult(status: output.status, stdout: output.stdout, stderr: stderr), status: status)
      }
    } catch where LocalProcess.isOutputLimit(error) && !Task.isCancelled {
      overflow = true
    } catch let stop as Stop where !Task.isCancelled {
      return .stopped(stop.result)
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

/// The line `RemoteCommand.wrapped(tag:)` ends the command's stderr with: a newline (so that
/// stderr not ending in one keeps its last line), the tag's marker, a space, the exit status,
/// a newline. The marker holds the tag's id, fresh for every command, so that no other text
/// (ssh's own messages, a report of a cfi-sh run by the command) passes for it; the report
/// is searched from the end: what a background process of the command wrote after it (it
/// may hold stderr open past the shell's exit; ssh waits for it) stays in stderr.
enum ExitReport {
  /// The report's marker for `tag`: `cfi-exit-<id>`.
  static func marker(_ tag: String) -> String { "cfi-exit-" + tag.dropFirst("cfi-step-".count) }

  /// The status reported under `tag` in `stderr`, and `stderr` without the report; nil when
  /// there is none. Bytes, not characters: `\r` before the report's `\n` would join it into
  /// one Character, and the command's bytes must be kept as they were.
  static func take(from stderr: String, tag: String) -> (status: Int32, stderr: String)? {
    let bytes = Array(stderr.utf8)
    let head = Array(("\n" + marker(tag) + " ").utf8)
    let newline = UInt8(ascii: "\n")
    var start = bytes.count - head.count
    while start >= 0 {
      defer { start -= 1 }
      guard bytes[start..<start + head.count].elementsEqual(head) else { continue }
      let digits = bytes[(start + head.count)...].prefix { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
      let end = start + head.count + digits.count
      guard (1...3).contains(digits.count), end < bytes.count, bytes[end] == newline,
        let status = Int32(String(decoding: digits, as: UTF8.self)), status <= 255
      else { continue }
      return (status, String(decoding: bytes[..<start] + bytes[(end + 1)...], as: UTF8.self))
    }
    return nil
  }
}
