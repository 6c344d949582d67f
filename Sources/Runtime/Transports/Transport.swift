// Transport: the seam between "what to send to a host" and "how to reach it". Transports
// know nothing about actions: operations (Operations/) turn actions into commands and
// pushes, the ActionExecutor runs them through a transport.

/// Runs commands on hosts, pushes trees to them and pulls files from them. Implementations:
/// `SSHTransport` (OpenSSH and rsync), `LocalTransport` (this machine, no ssh) and
/// `RecordingTransport` (tests). A transport must be safe to call concurrently for different
/// hosts, must honour task cancellation (a command: its whole session where it runs is ended
/// before `run` returns; a push or pull: the local rsync is stopped, and its remote side ends
/// with the connection), and never throws: whatever happens is a `CommandResult`.
public protocol Transport: Sendable {
  /// Runs `command` on `host`.
  func run(_ command: RemoteCommand, on host: Host) async -> CommandResult
  /// Sends `push.source` to `push.destination` on `host` with rsync; its stdout is rsync's.
  func push(_ push: Push, to host: Host) async -> CommandResult
  /// Copies `pull.source` from `host` into the local `pull.destination` with rsync (made
  /// first, owner only); its stdout is rsync's.
  func pull(_ pull: Pull, from host: Host) async -> CommandResult
  /// Starts a new run on the same connections (a session's next entry): hosts that could
  /// not be reached are tried again; open connections stay. A runbook is one run and never
  /// calls it.
  func startNewRun() async
  /// Keeps the connections opened from now on open for `window` after the run, for a later
  /// run to reuse; zero (the default): `shutdown` closes them.
  func keepConnections(for window: Duration) async
  /// The run sends nothing more to `host`: its connection, unless kept for a window, may
  /// close now rather than at `shutdown`. A later command would connect afresh.
  func release(_ host: Host) async
  /// Releases everything held for the run (connections, control sockets), but connections
  /// kept for a window. Called once at the end.
  func shutdown() async
  /// Closes `host`'s connection, if one is open, and forgets how connecting to it went: its
  /// next command connects afresh (a host that rebooted).
  func forget(_ host: Host) async
  /// Whether the commands run on this machine, whatever host they are for: such a
  /// transport must never be sent a reboot.
  var runsOnThisMachine: Bool { get }
}

extension Transport {
  /// Connections that outlive a run are SSHTransport's; other transports hold none.
  public func keepConnections(for window: Duration) async {}
  /// Nothing to release before the end where no connection is held per host.
  public func release(_ host: Host) async {}
}
