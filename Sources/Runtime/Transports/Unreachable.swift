// Why a host was not reached: a stable code for tools (`reason` in the JSON events and the
// audit log) and a sentence for people. The SSH transport tells them apart from ssh's own
// messages (`UnreachableReason.classify`), which are the only account ssh gives.

/// Why a host was not reached. The raw values are the stable codes of docs/json-events.md.
public enum UnreachableReason: String, Hashable, Sendable, CaseIterable {
  /// The host answered and nothing listens on the port: sshd is stopped.
  case refused
  /// The host is not on the network: no route to it, or its link is down (the server's ARP
  /// for it got no answer).
  case noRoute = "no_route"
  /// Nothing answered the TCP connect within the connect timeout: packets vanish on the way
  /// (a blackholed route, a firewall that drops, a host powered off behind a router).
  case connectTimeout = "connect_timeout"
  /// The TCP connection was made but ssh never got through its handshake: no SSH banner
  /// within the connect timeout, or a key exchange stalled past the liveness bound (a hung
  /// sshd, a listener that is not sshd).
  case handshakeTimeout = "handshake_timeout"
  /// The connection was up and then died: keep-alives went unanswered for the liveness bound,
  /// or it was reset. The command may have run, partly or wholly: it is never retried.
  case connectionLost = "connection_lost"
  /// The host refused the server's key.
  case authenticationFailed = "auth_failed"
  /// The host's name does not resolve.
  case unknownName = "unknown_name"
  /// A host told to reboot did not come back (a new boot id, sshd answering) within the
  /// reboot timeout.
  case rebootTimeout = "reboot_timeout"
  /// Another failure of ssh; the message is ssh's last line.
  case other
}

/// A host not reached: why, as a code and in the operator's words.
public struct Unreachable: Hashable, Sendable {
  public var reason: UnreachableReason
  /// One line for people; hosts unreachable for the same cause get the same text, so that a
  /// recap groups them.
  public var message: String

  public init(_ reason: UnreachableReason, _ message: String) {
    self.reason = reason
    self.message = message
  }
}
