// The exit status of a run, kept disjoint so cron jobs and scripts can tell causes apart.
// Documented in the README and in `cfi-sh --help`.

/// cfi-sh's exit statuses.
public enum ExitStatus {
  /// All hosts ok or changed (or nothing to do).
  public static let success: Int32 = 0
  /// The runbook is wrong (syntax, unknown name, bad argument, missing store file): nothing ran;
  /// or a runtime error on the server stopped the run (combined with the bits below).
  public static let runbookError: Int32 = 1
  /// Bit: some hosts failed.
  public static let hostsFailed: Int32 = 2
  /// Bit: some hosts were unreachable.
  public static let hostsUnreachable: Int32 = 4
  /// Bit: an `on` block's target matched no host (nothing ran there).
  public static let noHosts: Int32 = 8
  /// A command-line usage error (sysexits EX_USAGE).
  public static let usage: Int32 = 64
  /// Another run holds the store's lock and `--no-wait` was given (sysexits EX_TEMPFAIL).
  public static let locked: Int32 = 75
  /// Interrupted by SIGINT (128 + 2, as shells report it); the other signals that stop a
  /// run have theirs (`StopSignal.exitStatus`).
  public static let interrupted: Int32 = 130

  /// The status for a finished run: a signal's own when one stopped it.
  public static func of(_ end: RunEnd) -> Int32 {
    if let signal = end.stopSignal { return signal.exitStatus }
    if end.interrupted { return interrupted }
    var status: Int32 = end.runtimeError ? runbookError : success
    if end.outcomes.contains(where: { $0.status == .failed }) { status |= hostsFailed }
    if end.outcomes.contains(where: { $0.status == .unreachable }) { status |= hostsUnreachable }
    if end.unmatchedTargets > 0 { status |= noHosts }
    return status
  }
}

/// What stops a run from outside, every one the same way (remote commands killed, hosts
/// `interrupted`, the record written, connections closed, the lock released last); only the
/// exit status, 128 + the signal's number as shells report it, tells them apart.
public enum StopSignal: Sendable, CaseIterable {
  /// SIGINT: Ctrl-C.
  case interrupt
  /// SIGTERM: cron, systemd, `kill`.
  case terminate
  /// SIGHUP: the terminal closed.
  case hangup
  /// Standard output is a pipe nobody reads any more (`cfi-sh … | head`): SIGPIPE's status,
  /// though cfi-sh ignores the signal itself and acts on the broken pipe.
  case brokenPipe

  /// The signal's number.
  public var number: Int32 {
    switch self {
    case .interrupt: 2
    case .terminate: 15
    case .hangup: 1
    case .brokenPipe: 13
    }
  }

  /// The signal's name, as the audit log records it.
  public var name: String {
    switch self {
    case .interrupt: "SIGINT"
    case .terminate: "SIGTERM"
    case .hangup: "SIGHUP"
    case .brokenPipe: "SIGPIPE"
    }
  }

  public var exitStatus: Int32 { 128 + number }
}
