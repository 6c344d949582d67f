// LocalTransport: runs the commands cfi-sh would send to a host on this machine, with no ssh
// (the same wrapper: own session, tag, `timeout -k`), and pushes with a local rsync. For
// tests that need commands really run without a lab, and for a host that is this machine.

import Foundation

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
      { try await Self.run(shell, ["-c", command.wrapped(tag: tag)], input: command.standardInput) },
      reachable: { true },
      // What the command started outlives sh: end it as the remote kill does.
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

  /// Runs `executable` with `input` on its stdin from an unlinked temporary file rather than a
  /// pipe: a command that does not read its input must not meet a writer whose pipe closed
  /// (swift-subprocess stops the process on a write that fails that way).
  private static func run(_ executable: String, _ arguments: [String], input: String?) async throws -> ProgramResult {
    guard let input, !input.isEmpty else { return try await LocalProcess.run(executable, arguments) }
    var template = Array((NSTemporaryDirectory() + "/cfi-input-XXXXXX").utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    defer { close(fd) }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    let bytes = Array(input.utf8)
    var written = 0
    while written < bytes.count {
      let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
      written += count
    }
    lseek(fd, 0, SEEK_SET)
    return try await LocalProcess.run(executable, arguments, standardInput: fd)
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
