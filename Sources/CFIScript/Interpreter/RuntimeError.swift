// How execution stops early: a runbook error (with a place), or a host that must stop.

import CFISyntax
import Runtime

/// An error in the runbook found while running it (a type error, a missing store file, …).
/// Outside `on` it stops the run; inside, it fails that host.
public struct RuntimeError: Error, Sendable {
  public var diagnostic: Diagnostic
  init(_ message: String, at range: SourceRange) {
    diagnostic = Diagnostic(.runtime, message, at: range)
  }
}

/// Ends a host's work in an `on` block.
enum HostStop: Error {
  /// An action failed or `fail` ran; `try` catches this.
  case failed(String)
  /// The host cannot be reached; nothing more can run there.
  case unreachable(Unreachable)
  /// The operator interrupted the run.
  case interrupted
}
