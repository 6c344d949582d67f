// StepResult: what one action did on one host.

/// The outcome class of an action on a host, ordered from best to worst for recaps.
public enum StepStatus: String, Hashable, Sendable, Codable, CaseIterable, Comparable {
  /// Done, nothing needed changing.
  case ok
  /// Done, and something changed on the host.
  case changed
  /// Not attempted (check mode for a command, or the run stopped before this host).
  case skipped
  /// Attempted and failed on the host (non-zero exit, invalid input, …).
  case failed
  /// The host could not be reached.
  case unreachable
  /// Stopped by the operator (Ctrl-C).
  case interrupted

  private var rank: Int {
    switch self {
    case .skipped: 0
    case .ok: 1
    case .changed: 2
    case .failed: 3
    case .unreachable: 4
    case .interrupted: 5
    }
  }

  public static func < (lhs: StepStatus, rhs: StepStatus) -> Bool { lhs.rank < rhs.rank }
}

/// The result of one action on one host. A non-zero exit is a normal result, not an error.
public struct StepResult: Hashable, Sendable {
  /// The outcome class.
  public var status: StepStatus
  /// The remote exit code, when a command ran.
  public var exitCode: Int32?
  /// Standard output of the remote command (bounded by the transport).
  public var output: String
  /// Standard error of the remote command, or the transport's own explanation.
  public var errorOutput: String
  /// A one-line explanation for the operator: why it failed, what would change, …
  public var message: String?
  /// Why the host was not reached (`unreachable` only).
  public var reason: UnreachableReason?
  /// What changes (or would change) on the host, when asked for (`StepOptions.diff`): a unified
  /// diff per text file, a line per other file, `pkg 1.0 → 1.1` per package. Crypt hashes
  /// in it are redacted; nil when not asked for or nothing changes.
  public var diff: String?
  /// How long the step took.
  public var duration: Duration

  /// Creates a result.
  public init(
    status: StepStatus, exitCode: Int32? = nil, output: String = "", errorOutput: String = "",
    message: String? = nil, reason: UnreachableReason? = nil, diff: String? = nil, duration: Duration = .zero
  ) {
    self.status = status
    self.exitCode = exitCode
    self.output = output
    self.errorOutput = errorOutput
    self.message = message
    self.reason = reason
    self.diff = diff
    self.duration = duration
  }

  /// A failed result carrying only an explanation (no command ran).
  public static func failure(_ message: String) -> StepResult {
    StepResult(status: .failed, message: message)
  }
}

/// Per-step knobs the interpreter passes down to a transport.
public struct StepOptions: Hashable, Sendable {
  /// Dry run: report what would change, change nothing.
  public var check: Bool
  /// Show what changes (`StepResult.diff`): file contents before and after, package versions.
  public var diff: Bool
  /// Limit for the whole step on the host; `nil` means none.
  public var timeout: Duration?
  /// Limit for establishing the connection.
  public var connectTimeout: Duration
  /// Limit for a rebooted host to come back (`reboot`).
  public var rebootTimeout: Duration

  /// Creates options.
  public init(
    check: Bool = false, diff: Bool = false, timeout: Duration? = nil, connectTimeout: Duration = .seconds(10),
    rebootTimeout: Duration = RunSettings.defaultRebootTimeout
  ) {
    self.check = check
    self.diff = diff
    self.timeout = timeout
    self.connectTimeout = connectTimeout
    self.rebootTimeout = rebootTimeout
  }
}
