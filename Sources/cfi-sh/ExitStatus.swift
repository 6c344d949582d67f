// The exit status of cfi-sh, kept disjoint so cron jobs and scripts can tell causes apart.

import ArgumentParser
import Runtime

/// cfi-sh's exit statuses (documented in README and `--help`).
enum ExitStatus {
  /// All hosts ok or changed (or nothing to do).
  static let success: Int32 = 0
  /// The runbook is wrong (syntax, unknown name, bad argument, missing store file): nothing ran;
  /// or a runtime error on the server stopped the run (combined with the bits below).
  static let runbookError: Int32 = 1
  /// Bit: some hosts failed.
  static let hostsFailed: Int32 = 2
  /// Bit: some hosts were unreachable.
  static let hostsUnreachable: Int32 = 4
  /// A command-line usage error (sysexits EX_USAGE).
  static let usage: Int32 = 64
  /// Another run holds the store's lock and `--no-wait` was given (sysexits EX_TEMPFAIL).
  static let locked: Int32 = 75
  /// Interrupted by SIGINT (128 + 2, as shells report it).
  static let interrupted: Int32 = 130

  /// The status for a finished run.
  static func of(outcomes: [HostOutcome], runtimeError: Bool, interrupted: Bool) -> Int32 {
    if interrupted { return ExitStatus.interrupted }
    var status: Int32 = runtimeError ? runbookError : success
    if outcomes.contains(where: { $0.status == .failed }) { status |= hostsFailed }
    if outcomes.contains(where: { $0.status == .unreachable }) { status |= hostsUnreachable }
    return status
  }
}

/// Ends the command with a status, without ArgumentParser printing anything more.
func exit(with status: Int32) -> ExitCode { ExitCode(status) }
