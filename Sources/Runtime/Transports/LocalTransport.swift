// LocalTransport: runs the commands cfi-sh would send to a host on this machine, with no ssh
// (the same wrapper: own session, tag, `timeout -k`), and pushes with a local rsync. For
// tests that need commands really run without a lab, and for a host that is this machine.

/// Runs commands on this machine with `sh`, whatever host they are for.
public final class LocalTransport: Transport {
  /// The shell that runs the wrapped command, as a host's login shell does (bash, dash).
  let shell: String

  /// A transport running commands with `shell` (a name found on PATH).
  public init(shell: String = "sh") {
    self.shell = shell
  }

  public func run(_ command: RemoteCommand, on host: Host) async -> CommandResult {
    let tag = RemoteCommand.newTag()
    let ending = await TaggedCommand.run(
      program: shell, tag: tag,
      { try await LocalProcess.run(shell, ["-c", command.wrapped(tag: tag)], input: command.standardInput) },
      reachable: { true },
      // The command's session outlives sh (setsid): end it as the remote kill does.
      kill: { (try? await LocalProcess.run("sh", ["-c", RemoteCommand.killScript(tag: tag)]))?.status == 0 })
    switch ending {
    case .stopped(let result): return result
    case .finished(let output, status: nil):
      return CommandResult(
        .notRun("no exit status came back: the command may not have run (\(shell) exited \(output.status))"),
        stdout: output.stdout, stderr: output.stderr)
    case .finished(let output, let status?):
      return CommandResult.finished(status: status, stdout: output.stdout, stderr: output.stderr, timeout: command.timeout)
    }
  }

  public func push(_ push: Push, to host: Host) async -> CommandResult {
    await push.run(["rsync"] + push.options + ["--", push.source.argument, push.destination])
  }

  public func pull(_ pull: Pull, from host: Host) async -> CommandResult {
    await pull.run(["rsync"] + pull.options + ["--", pull.source, pull.destination])
  }

  public func startNewRun() async {}
  public func shutdown() async {}
  public func forget(_ host: Host) async {}
  public var runsOnThisMachine: Bool { true }
}
