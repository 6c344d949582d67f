// LocalTransport: runs the commands cfi-sh would send to a host on this machine, with no ssh
// (the same wrapper: own session, tag, `timeout -k`), and pushes with a local rsync. For
// tests that need commands really run without a lab, and for a host that is this machine.

/// Runs commands on this machine with `sh`, whatever host they are for.
public final class LocalTransport: Transport {
  public init() {}

  public func run(_ command: RemoteCommand, on host: Host) async -> CommandResult {
    let tag = RemoteCommand.newTag()
    let ending = await TaggedCommand.run(
      program: "sh", { try await LocalProcess.run("sh", ["-c", command.wrapped(tag: tag)], input: command.input?.revealed) },
      reachable: { true },
      // The command's session outlives sh (setsid): end it as the remote kill does.
      kill: { (try? await LocalProcess.run("sh", ["-c", RemoteCommand.killScript(tag: tag)]))?.status == 0 })
    switch ending {
    case .stopped(let result): return result
    case .finished(let output):
      return CommandResult.finished(status: output.status, stdout: output.stdout, stderr: output.stderr, timeout: command.timeout)
    }
  }

  public func push(_ push: Push, to host: Host) async -> CommandResult {
    await push.run(["rsync"] + push.options + ["--", push.source.argument, push.destination])
  }

  public func startNewRun() async {}
  public func shutdown() async {}
}
