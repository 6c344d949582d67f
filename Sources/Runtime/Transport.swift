// Transport: the seam between "what to do on a host" and "how to reach it".
// The interpreter only ever talks to this protocol; ssh/rsync live behind it.

/// Performs actions on hosts. Implementations: the OpenSSH/rsync transport (real hosts) and
/// `RecordingTransport` (tests). A transport must be safe to call concurrently for
/// different hosts, must honour task cancellation (killing the remote work), and must never
/// throw for a host-side failure: it reports it in the `StepResult`.
public protocol Transport: Sendable {
  /// Performs `action` on `host`, returning what happened there.
  func perform(_ action: Action, on host: Host, options: StepOptions) async -> StepResult
  /// Releases everything held for the run (connections, control sockets). Called once at the end.
  func shutdown() async
  /// Starts a new run on the same connections (a session's next entry): hosts that could
  /// not be reached are tried again, per-run state (package lists refreshed) starts afresh;
  /// open connections stay. A runbook is one run and never calls it.
  func startNewRun() async
}

