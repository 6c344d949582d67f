// Pull: a file or tree taken from a host into a local directory with rsync (`fetch`), the
// mirror of `Push`. Operations build it, transports run it, tests read it without a lab.

import Foundation

/// A path on a host copied into a local directory with rsync.
public struct Pull: Hashable, Sendable, CustomStringConvertible {
  /// The absolute path on the host; without a trailing `/`, a directory arrives as a
  /// directory of that name inside `destination`.
  public var source: String
  /// The local directory it goes into (ends in `/`). Made, with any missing parents, owner
  /// only (0700), before rsync runs, unless the pull is a dry run.
  public var destination: String
  /// rsync's options, except how it reaches the host (`-e`), which is the transport's.
  public var options: [String]
  /// Limit for reaching the host.
  public var connectTimeout: Duration

  /// Creates a pull.
  public init(source: String, destination: String, options: [String], connectTimeout: Duration = .seconds(10)) {
    self.source = source
    self.destination = destination
    self.options = options
    self.connectTimeout = connectTimeout
  }

  /// Whether rsync only says what it would do.
  public var isDryRun: Bool { options.contains("--dry-run") }

  public var description: String {
    [
      "pull: \(source) -> \(destination)", "rsync: " + ShellQuote.join(options),
      "connect-timeout: \(RemoteCommand.wholeSeconds(connectTimeout))s",
    ].joined(separator: "\n")
  }

  /// Runs this pull's rsync `argv` on this machine, after making the destination directory;
  /// the result's stdout is rsync's itemized list.
  func run(_ argv: [String]) async -> CommandResult {
    if !isDryRun, let problem = Self.makeDirectory(destination) {
      return CommandResult(.notRun("cannot make \(destination): \(problem)"))
    }
    do {
      let output = try await LocalProcess.run(argv[0], Array(argv.dropFirst()))
      return CommandResult(.exited(output.status), stdout: output.stdout, stderr: output.stderr)
    } catch {
      return CommandResult(Task.isCancelled ? .interrupted(nil) : .notRun("cannot run rsync: \(error)"))
    }
  }

  /// Makes `path` and its missing parents, each new one 0700 (what is fetched may be secret);
  /// existing directories are left as they are. Returns what went wrong, if anything.
  static func makeDirectory(_ path: String) -> String? {
    var made = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
      made += "/" + component
      if mkdir(made, 0o700) != 0 && errno != EEXIST { return String(cString: strerror(errno)) }
    }
    var status = stat()
    guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { return "not a directory" }
    return nil
  }
}
