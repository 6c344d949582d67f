// RemoteCommand, Push and CommandResult: what cfi-sh asks of a host, as values. Operations
// build them, transports run them, tests read them without a lab.

import Foundation

/// One command to run on a host: a shell script body (or an argv, quoted into one), what its
/// stdin carries, and how long it may take.
public struct RemoteCommand: Hashable, Sendable, CustomStringConvertible {
  /// The command itself.
  public enum Body: Hashable, Sendable {
    /// A script for `sh -c`.
    case script(String)
    /// Words run as one command, each quoted for `sh`.
    case argv([String])
  }

  /// What a command reads on its stdin.
  public enum Input: Hashable, Sendable, CustomStringConvertible {
    /// Plain text (a script uploaded through stdin).
    case text(String)
    /// A secret: only a transport writing it to the command's stdin reads it.
    case secret(Secret)

    /// The bytes the transport writes.
    public var revealed: String {
      switch self {
      case .text(let text): text
      case .secret(let secret): secret.revealed
      }
    }

    public var description: String {
      switch self {
      case .text(let text): text
      case .secret(let secret): secret.description
      }
    }
  }

  public var body: Body
  /// Its stdin; nil: empty.
  public var input: Input?
  /// Limit for the whole command on the host (enforced there: its process group is killed);
  /// nil: none.
  public var timeout: Duration?
  /// Limit for reaching the host.
  public var connectTimeout: Duration

  /// Creates a command.
  public init(_ body: Body, input: Input? = nil, timeout: Duration? = nil, connectTimeout: Duration = .seconds(10)) {
    self.body = body
    self.input = input
    self.timeout = timeout
    self.connectTimeout = connectTimeout
  }

  /// The command as one `sh` script.
  public var script: String {
    switch body {
    case .script(let text): text
    case .argv(let words): ShellQuote.join(words)
    }
  }

  /// The command as the host's login shell receives it: tagged with `tag` (so that an
  /// interrupt can find and kill everything it started, see `killScript`), in the login
  /// shell's process group, which is the command's own (sshd starts each session's shell as
  /// a session leader; a local `sh` is started in a group of its own), under `timeout -k`
  /// when it has a timeout (which signals its whole process group). No `setsid`: it would be
  /// one more program started for every command (about 2 ms of a host's CPU). It
  /// does not start when its kill came first (the kill's stop mark exists). The login shell
  /// stays to report the command's exit status as the last line of stderr (`ExitReport`):
  /// the status of ssh or of a local shell alone cannot tell a command that exited 0 from
  /// one that never ran. The shell reads no stdin (the command gets it all) and its stderr
  /// is its own, so a command that closes or redirects stderr is still reported.
  /// A script holding anything shaped like a crypt hash goes on stdin instead (see
  /// `standardInput`): a command line is readable by every user of the host and of this
  /// machine (`/proc/*/cmdline`), and `Secret.redactingHashes` cannot reach it there.
  public func wrapped(tag: String) -> String {
    let runs = scriptOnStandardInput ? Self.scriptFromStandardInput : "sh -c \(ShellQuote.quote(script))"
    var inner = "\(runs) \(tag)"
    if let timeout { inner = "timeout -k 5 \(Self.wholeSeconds(timeout)) " + inner }
    let stop = Self.stopMark(tag)
    return "if [ -e \(stop) ]; then rm -f \(stop); exit 130; fi; " + inner
      + "; s=$?; printf '\\n\(ExitReport.marker(tag)) %d\\n' $s >&2; exit $s"
  }

  /// Whether the script travels on stdin rather than on a command line.
  var scriptOnStandardInput: Bool { !Secret.hashRanges(in: script).isEmpty }

  /// What the transport writes to the command's stdin: the script as one line first when it
  /// travels that way, then `input`; nil: nothing.
  public var standardInput: String? {
    guard scriptOnStandardInput else { return input?.revealed }
    var line = ""
    for scalar in script.unicodeScalars {
      switch scalar {
      case "\\": line += "\\\\"
      case "\n": line += "\\n"
      default: line.unicodeScalars.append(scalar)
      }
    }
    return line + "\n" + (input?.revealed ?? "")
  }

  /// Runs the script `standardInput` starts with: `read` takes exactly one line (it reads a
  /// pipe byte by byte), so the rest of stdin stays the command's; `printf %b` undoes the
  /// line's escapes (`\\`, `\n`); both are builtins, so the script is never an argument.
  static let scriptFromStandardInput = #"sh -c 'IFS= read -r c; eval "$(printf %b "$c")"'"#

  /// The file a kill leaves for a command that has not started yet (Ctrl-C can overtake the
  /// command on its way to the host). Its name holds the tag's id but not the tag itself:
  /// the kill's own command line must not match the tag's pattern.
  static func stopMark(_ tag: String) -> String {
    "/tmp/.cfi-stop-" + tag.dropFirst("cfi-step-".count)
  }

  /// A fresh tag for `wrapped(tag:)`.
  public static func newTag() -> String {
    "cfi-step-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
  }

  /// A script ending the command tagged `tag` (TERM, then KILL): the process group of every
  /// process whose command line holds the tag (the login shell, `timeout`, the command's
  /// `sh`), whether or not that process leads it (a group outlives its leader); or keeping it
  /// from starting (the stop mark). It exits 0 once nothing of the command runs.
  public static func killScript(tag: String) -> String {
    // `[s]`: the pattern must not match this killer's own command line. `kill -s SIG -- -PGID`:
    // the one form of a group kill that dash's kill takes as well as bash's; `for g in`: ps
    // pads the group id with spaces, which the word splitting drops.
    let pattern = ShellQuote.quote(tag.replacingOccurrences(of: "cfi-step-", with: "cfi-[s]tep-"))
    return """
      : >\(stopMark(tag)); for s in TERM KILL; do for p in $(pgrep -f -- \(pattern)); do \
      for g in $(ps -o pgid= -p "$p"); do kill -s $s -- -"$g" 2>/dev/null; done; done; \
      pgrep -f -- \(pattern) >/dev/null || exit 0; sleep 1; done; exit 1
      """
  }

  /// Whole seconds, at least one: what `timeout`, `ConnectTimeout` and rsync's `--timeout` take.
  static func wholeSeconds(_ duration: Duration) -> Int64 { max(1, duration.components.seconds) }

  /// The command as the golden files show it: script, stdin (secrets redacted), limits.
  public var description: String {
    var lines = ["run: " + script]
    if let input { lines.append("stdin: " + input.description) }
    if let timeout { lines.append("timeout: \(Self.wholeSeconds(timeout))s") }
    lines.append("connect-timeout: \(Self.wholeSeconds(connectTimeout))s")
    return lines.joined(separator: "\n")
  }
}

/// A local tree or file sent to a host with rsync.
public struct Push: Hashable, Sendable, CustomStringConvertible {
  /// The local source (a store file or tree as checked, see `PushSource`).
  public var source: PushSource
  /// The absolute path on the host.
  public var destination: String
  /// rsync's options, except how it reaches the host (`-e`), which is the transport's.
  public var options: [String]
  /// Limit for reaching the host.
  public var connectTimeout: Duration

  /// Creates a push.
  public init(source: PushSource, destination: String, options: [String], connectTimeout: Duration = .seconds(10)) {
    self.source = source
    self.destination = destination
    self.options = options
    self.connectTimeout = connectTimeout
  }

  /// A push of a local path given as it is (`PushSource.path`); a trailing `/` sends a
  /// directory's contents.
  public init(source: String, destination: String, options: [String], connectTimeout: Duration = .seconds(10)) {
    self.init(source: .path(source), destination: destination, options: options, connectTimeout: connectTimeout)
  }

  /// rsync's I/O timeout (`--timeout`): how long rsync lets its link stay silent before it
  /// gives up. ssh's keep-alives already notice a dead link within the liveness bound; what
  /// this adds is a bound where the link lives and rsync's other end stalls (a stopped
  /// remote rsync, a hung disk): sshd answers keep-alives, so only rsync can tell. A healthy
  /// transfer is silent while the receiver checksums a large file or walks a large tree:
  /// minutes at most, hence 5 minutes; never longer than the whole step may take.
  public static func ioTimeout(step: Duration?) -> Duration {
    min(step ?? .seconds(300), .seconds(300))
  }

  public var description: String {
    (["push: \(source.shown) -> \(destination)"] + (source.how.map { ["source: " + $0] } ?? [])
      + ["rsync: " + ShellQuote.join(options), "connect-timeout: \(RemoteCommand.wholeSeconds(connectTimeout))s"])
      .joined(separator: "\n")
  }
}

/// What came of a command or a push. A non-zero exit is a result like any other; the other
/// endings say why the command did not finish on its own.
public struct CommandResult: Hashable, Sendable {
  /// How the command ended.
  public enum Termination: Hashable, Sendable {
    /// It ran and exited with this status (128 + n when a signal ended it).
    case exited(Int32)
    /// Its timeout ended it (it was killed on the host); `timeout`'s status.
    case timedOut(Int32)
    /// The host was not reached (the command never ran), or the connection died under the
    /// command (`connectionLost`: it may have run, and is never retried).
    case unreachable(Unreachable)
    /// It could not be run at all (no ssh, a changed host key, an invalid host): why.
    case notRun(String)
    /// The operator interrupted it; a message when there is more to say.
    case interrupted(String?)
  }

  public var termination: Termination
  /// Its output, decoded as UTF-8 (invalid bytes become U+FFFD) and bounded by the transport.
  public var stdout: String
  public var stderr: String

  /// Creates a result.
  public init(_ termination: Termination, stdout: String = "", stderr: String = "") {
    self.termination = termination
    self.stdout = stdout
    self.stderr = stderr
  }

  /// The result of a command that ran to its end with `status`: a timeout when the command
  /// had one and `timeout` reports having used it (124: TERM worked, 137: KILL was needed).
  static func finished(status: Int32, stdout: String, stderr: String, timeout: Duration?) -> CommandResult {
    let timedOut = timeout != nil && (status == 124 || status == 137)
    return CommandResult(timedOut ? .timedOut(status) : .exited(status), stdout: stdout, stderr: stderr)
  }
}

extension Push {
  /// Runs this push's rsync `argv` on this machine, with the checked source as rsync's stdin
  /// when it has one; the result's stdout is rsync's itemized list. The caller keeps `self`
  /// (and so the source's descriptor) alive until rsync has ended.
  func run(_ argv: [String]) async -> CommandResult {
    do {
      let output = try await LocalProcess.run(argv[0], Array(argv.dropFirst()), standardInput: source.standardInput)
      return CommandResult(.exited(output.status), stdout: output.stdout, stderr: output.stderr)
    } catch {
      return CommandResult(Task.isCancelled ? .interrupted(nil) : .notRun("cannot run rsync: \(error)"))
    }
  }
}
