// LocalProgram: running a helper program on this machine (ssh-keygen, avahi-daemon -r) to its
// end, through the one process runner (`LocalProcess`), like the transports. For short-lived
// tools with small output; commands on hosts go through a Transport, never through this.

import Foundation
import Subprocess

// FilePath, as Subprocess itself picks it (System on Apple platforms, swift-system elsewhere).
#if canImport(System)
  import System
#else
  import SystemPackage
#endif

/// A program on this machine, by absolute path.
public struct LocalProgram: Hashable, Sendable, CustomStringConvertible {
  public let path: String

  public init(path: String) { self.path = path }

  /// The program `name` from PATH, or from /usr/sbin, /sbin, /usr/bin, /bin (the sbin
  /// directories are often missing from PATH, the others when PATH is unset).
  public static func find(_ name: String) -> LocalProgram? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
    return LocalProcess.search(name, in: directories).map(LocalProgram.init(path:))
  }

  /// `name` where `find` sees it, else at `fallback` (so a missing tool fails when it is
  /// run, with its path in the message, rather than when it is looked up).
  public static func find(_ name: String, fallback: String) -> LocalProgram {
    find(name) ?? LocalProgram(path: fallback)
  }

  /// ssh-keygen (OpenSSH's client package puts it in /usr/bin).
  public static var sshKeygen: LocalProgram { find("ssh-keygen", fallback: "/usr/bin/ssh-keygen") }

  /// The most output kept per stream; the helpers this runs print a few lines.
  public static let outputLimit = 1 << 20

  /// Runs the program with `arguments` and `input` on its stdin (none: an empty stdin) to its
  /// end. Throws when it cannot be started, writes more than `outputLimit`, or the task is
  /// cancelled; a non-zero exit is a result.
  public func run(_ arguments: [String], input: String? = nil) async throws -> ProgramResult {
    try await LocalProcess.run(
      .path(FilePath(path)), arguments, input: input, ownProcessGroup: false, outputLimit: LocalProgram.outputLimit)
  }

  public var description: String { path }
}

/// How a local program ended.
public struct ProgramResult: Hashable, Sendable {
  /// The exit status; 128 + the signal when a signal ended it.
  public var status: Int32
  public var stdout: String
  public var stderr: String

  public init(status: Int32, stdout: String, stderr: String) {
    self.status = status
    self.stdout = stdout
    self.stderr = stderr
  }

  public var succeeded: Bool { status == 0 }

  /// What the program said (stderr, then stdout), trimmed: for messages about a failure.
  public var message: String { (stderr + stdout).trimmingCharacters(in: .whitespacesAndNewlines) }
}
