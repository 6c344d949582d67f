// LocalTransport: runs the commands cfi-sh would send to a host on this machine, with no ssh
// (the same wrapper: own session, tag, `timeout -k`), and pushes with a local rsync. For
// tests that need commands really run without a lab, and for a host that is this machine.

/// Runs commands on this machine with `sh`, whatever host they are for.
public final class LocalTransport: Transport {
  private let kills = PendingKills()

  public init() {}

  public func run(_ command: RemoteCommand, on host: Host) async -> CommandResult {
    let start = ContinuousClock.now
    let tag = RemoteCommand.newTag()
    var result: CommandResult
    do {
      let output = try await withTaskCancellationHandler {
        try await LocalProcess.run("sh", ["-c", command.wrapped(tag: tag)], input: command.input?.revealed)
      } onCancel: {
        // The command's session outlives sh (setsid): end it as the remote kill does.
        kills.start(tag) { (try? await LocalProcess.run("sh", ["-c", RemoteCommand.killScript(tag: tag)]))?.status == 0 }
      }
      if let confirmed = await kills.confirm(tag) {
        result = PendingKills.interrupted(confirmed: confirmed)
      } else {
        result = CommandResult.finished(
          status: output.status, stdout: output.stdout, stderr: output.stderr, timeout: command.timeout)
      }
    } catch {
      if let confirmed = await kills.confirm(tag) {
        result = PendingKills.interrupted(confirmed: confirmed)
      } else {
        result = CommandResult(Task.isCancelled ? .interrupted(nil) : .notRun("cannot run sh: \(error)"))
      }
    }
    result.duration = ContinuousClock.now - start
    return result
  }

  public func push(_ push: Push, to host: Host) async -> CommandResult {
    let start = ContinuousClock.now
    var result: CommandResult
    do {
      let output = try await LocalProcess.run("rsync", push.options + ["--", push.source, push.destination])
      result = CommandResult(.exited(output.status), stdout: output.stdout, stderr: output.stderr)
    } catch {
      result = CommandResult(.notRun("cannot run rsync: \(error)"))
    }
    result.duration = ContinuousClock.now - start
    return result
  }

  public func startNewRun() async { await kills.finishAll() }
  public func shutdown() async { await kills.finishAll() }
}
