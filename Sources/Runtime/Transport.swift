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
  /// Forgets hosts that could not be reached, so that the next step tries them again; open
  /// connections stay. A runbook never calls it (an unreachable host stays so for the run);
  /// a session calls it before each entry.
  func retryUnreachable()
}

extension Transport {
  public func retryUnreachable() {}
}
