// Running a program on this machine to its end, through swift-subprocess: the one process
// runner. Transports run ssh, rsync and sh with it, each in a process group of its own;
// `LocalProgram` runs helpers (ssh-keygen, avahi-daemon -r) with it.

import Subprocess

#if canImport(System)
  import System
#else
  import SystemPackage
#endif

enum LocalProcess {
  /// The most output kept per stream of a command; why: a runaway command must not eat the
  /// server's memory across hundreds of hosts.
  static let outputLimit = 16 << 20

  /// Runs `executable` (found on PATH) for a transport, in a process group of its own.
  /// Throws if it cannot start, its output overflows, or the task is cancelled.
  static func run(_ executable: String, _ arguments: [String], input: String? = nil) async throws -> ProgramResult {
    try await run(.name(executable), arguments, input: input, ownProcessGroup: true, outputLimit: outputLimit)
  }

  /// `run(_:_:input:)` with `standardInput` (nil: empty) as the program's stdin: rsync reads
  /// a checked store file or tree through it (`PushSource`). The descriptor stays ours (it is
  /// not closed) and reaches this child only: it is close-on-exec, and the child gets it as
  /// fd 0 by the spawn's own dup2.
  static func run(_ executable: String, _ arguments: [String], standardInput: Int32?) async throws -> ProgramResult {
    guard let standardInput else { return try await run(executable, arguments) }
    return try await run(
      .name(executable), arguments, input: .fileDescriptor(FileDescriptor(rawValue: standardInput), closeAfterSpawningProcess: false),
      ownProcessGroup: true, outputLimit: outputLimit)
  }

  /// Runs `executable` with `input` on its stdin (none: an empty stdin), returning its exit
  /// status (128 + n for signal n) and its output, invalid UTF-8 replaced.
  static func run(
    _ executable: Executable, _ arguments: [String], input: String?, ownProcessGroup: Bool, outputLimit: Int
  ) async throws -> ProgramResult {
    try await run(executable, arguments, input: .string(input ?? ""), ownProcessGroup: ownProcessGroup, outputLimit: outputLimit)
  }

  private static func run(
    _ executable: Executable, _ arguments: [String], input: some InputProtocol, ownProcessGroup: Bool, outputLimit: Int
  ) async throws -> ProgramResult {
    var platformOptions = PlatformOptions()
    // Why a group of its own: Ctrl-C on the terminal signals the whole foreground group, and
    // ssh or rsync dying of it would lose the connection the remote kill needs. cfi-sh itself
    // turns SIGINT into a cancellation that ends them in order.
    if ownProcessGroup { platformOptions.processGroupID = 0 }
    let result = try await Subprocess.run(
      executable, arguments: Arguments(arguments), platformOptions: platformOptions, input: input,
      output: .bytes(limit: outputLimit), error: .bytes(limit: outputLimit))
    let status: Int32 =
      switch result.terminationStatus {
      case .exited(let code): code
      case .signaled(let signal): 128 + signal
      }
    return ProgramResult(
      status: status, stdout: String(decoding: result.standardOutput, as: UTF8.self),
      stderr: String(decoding: result.standardError, as: UTF8.self))
  }

  /// Whether `error` says the program wrote more than the output limit (it was then stopped).
  static func isOutputLimit(_ error: any Error) -> Bool {
    (error as? SubprocessError)?.code == .outputLimitExceeded || (error as? MuxSession.Failure) == .outputLimit
  }
}
