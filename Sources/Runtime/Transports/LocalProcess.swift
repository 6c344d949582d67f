// Running a program on this machine to its end, through swift-subprocess: the one process
// runner. Transports run ssh, rsync and sh with it, each in a process group of its own;
// `LocalProgram` runs helpers (ssh-keygen, avahi-daemon -r) with it.

import Foundation
import Subprocess
import Synchronization

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
    try await run(Self.executable(executable), arguments, input: input, ownProcessGroup: true, outputLimit: outputLimit)
  }

  /// `run(_:_:input:)` with `standardInput` (nil: empty) as the program's stdin: rsync reads
  /// a checked store file or tree through it (`PushSource`). The descriptor stays ours (it is
  /// not closed) and reaches this child only: it is close-on-exec, and the child gets it as
  /// fd 0 by the spawn's own dup2.
  static func run(_ executable: String, _ arguments: [String], standardInput: Int32?) async throws -> ProgramResult {
    guard let standardInput else { return try await run(executable, arguments) }
    return try await run(
      Self.executable(executable), arguments, input: .fileDescriptor(FileDescriptor(rawValue: standardInput), closeAfterSpawningProcess: false),
      ownProcessGroup: true, outputLimit: outputLimit)
  }

  /// The programs found along PATH so far, by PATH and name.
  private static let found = Mutex<[String: String]>([:])

  /// `name` as found along PATH, looked up once per process, as a shell hashes a command.
  /// Why: spawned by name, each host's ssh would try every directory of PATH in turn in the
  /// child, a failed exec each, while the spawning thread waits (on a PATH with six
  /// directories before /usr/bin, the first ssh of a run on 50 hosts started 40–70 ms later).
  /// A name with a slash is a path; a name not found is left to the spawn, which fails as it
  /// would have.
  static func executable(_ name: String) -> Executable {
    if name.contains("/") { return .path(FilePath(name)) }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let key = path + "\0" + name
    if let known = found.withLock({ $0[key] }) { return .path(FilePath(known)) }
    let directories = path.split(separator: ":", omittingEmptySubsequences: false).map { $0.isEmpty ? "." : String($0) }
    guard let candidate = search(name, in: directories) else { return .name(name) }
    found.withLock { $0[key] = candidate }
    return .path(FilePath(candidate))
  }

  /// The first executable file (not a directory) named `name` in `directories`.
  static func search(_ name: String, in directories: [String]) -> String? {
    for directory in directories {
      let candidate = directory + "/" + name
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
        FileManager.default.isExecutableFile(atPath: candidate)
      {
        return candidate
      }
    }
    return nil
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
