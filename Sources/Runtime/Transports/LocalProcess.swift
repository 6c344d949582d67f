// Running a program on this machine for a transport (ssh, rsync, sh), in a process group of
// its own, its output bounded and decoded whatever its bytes.

import Subprocess

enum LocalProcess {
  struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  /// The most output kept per stream of a command; why: a runaway command must not eat the
  /// server's memory across hundreds of hosts.
  static let outputLimit = 16 << 20

  /// Runs `executable` (found on PATH), returning exit status (128 + n for signal n) and
  /// output, invalid UTF-8 replaced. Throws only if it cannot start or its output overflows.
  static func run(_ executable: String, _ arguments: [String], input: String? = nil) async throws -> Output {
    // Each child in a process group of its own; why: Ctrl-C on the terminal signals the whole
    // foreground group, and ssh or rsync dying of it would lose the connection the remote
    // kill needs. cfi-sh itself turns SIGINT into a cancellation that ends them in order.
    var platformOptions = PlatformOptions()
    platformOptions.processGroupID = 0
    let result = try await Subprocess.run(
      .name(executable), arguments: Arguments(arguments), platformOptions: platformOptions, input: .string(input ?? ""),
      output: .bytes(limit: outputLimit), error: .bytes(limit: outputLimit))
    let status: Int32
    switch result.terminationStatus {
    case .exited(let code): status = code
    case .signaled(let signal): status = 128 + signal
    }
    return Output(
      status: status, stdout: String(decoding: result.standardOutput, as: UTF8.self),
      stderr: String(decoding: result.standardError, as: UTF8.self))
  }
}
