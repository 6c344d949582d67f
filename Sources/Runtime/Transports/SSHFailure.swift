// What ssh's failure to connect means. ssh says why only in its stderr, in messages that have
// been stable across OpenSSH releases; Tests/RuntimeTests/Golden/SSHFailures.golden holds
// the real messages (OpenSSH 9.2, made on the lab: `lab stop-sshd`, `unplug`, `blackhole`,
// `silent`) and what each becomes.

import Foundation

/// The reading of an ssh that could not open a host's master connection.
enum SSHFailure {
  /// The result for an ssh that exited without opening the master of `name`, given its
  /// stderr. `connectTimeout` and `liveness` (keep-alive interval × count) are the bounds it
  /// ran under, for the messages.
  ///
  /// ssh bounds every phase of connecting itself, so no local timer is needed: the TCP
  /// connect and the wait for the SSH banner by ConnectTimeout, the key exchange and the
  /// authentication after it by the keep-alives (ServerAliveInterval × ServerAliveCountMax
  /// apply from the first packet). A stalled key exchange is the one failure it reports at
  /// a level below ERROR ("Connection to … timed out"), so under LogLevel=ERROR it is the
  /// one that exits 255 in silence.
  static func classify(_ name: HostName, stderr: String, connectTimeout: Duration, liveness: Duration) -> CommandResult {
    // ssh ends its lines with "\r\n" (for a terminal in raw mode).
    let text = stderr.replacingOccurrences(of: "\r\n", with: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    if text.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") || text.contains("Host key verification failed") {
      return CommandResult(
        .notRun(
          "host key of \(name) has changed; if the host was reinstalled, run 'cfi-sh hosts forget \(name)' to accept its new key"),
        stderr: text)
    }
    return CommandResult(.unreachable(unreachable(text, connectTimeout: connectTimeout, liveness: liveness)), stderr: text)
  }

  /// ssh's line saying that it could not make a master's control socket, if `stderr` (of an
  /// ssh that opened the master) holds one: it then goes on with a connection of its own,
  /// exits 0 all the same, and nothing answers on the socket ("ControlSocket … already
  /// exists, disabling multiplexing", also said for a path it cannot bind).
  static func noControlSocket(_ stderr: String) -> String? {
    stderr.split(whereSeparator: \.isNewline).first { $0.contains("disabling multiplexing") }
      .map { $0.trimmingCharacters(in: .whitespaces) }
  }

  /// The reason in `text` (ssh's stderr, trimmed). Order matters: the handshake's timeouts
  /// before the connect's, as all of them say "timed out".
  static func unreachable(_ text: String, connectTimeout: Duration, liveness: Duration) -> Unreachable {
    func has(_ words: String...) -> Bool { words.contains { text.contains($0) } }
    if has("during banner exchange") {
      return Unreachable(.handshakeTimeout, "handshake timeout: connected, but no SSH banner within \(connectTimeout.cfiText)")
    }
    if text.isEmpty || has("not responding") || timedOutAfterConnect(text) {
      return Unreachable(.handshakeTimeout, "handshake timeout: connected, but the key exchange got no answer within \(liveness.cfiText)")
    }
    if has("Connection refused") { return Unreachable(.refused, "connection refused (no sshd listening)") }
    if has("No route to host", "Network is unreachable", "Host is unreachable") {
      return Unreachable(.noRoute, "no route to host")
    }
    if has("Connection timed out", "Operation timed out") {
      return Unreachable(.connectTimeout, "connect timeout after \(connectTimeout.cfiText)")
    }
    if has("Permission denied") {
      return Unreachable(.authenticationFailed, "authentication failed (is the server's key in root's authorized_keys?)")
    }
    if has("Could not resolve hostname", "Name or service not known", "Temporary failure in name resolution") {
      return Unreachable(.unknownName, "its name does not resolve")
    }
    let last = text.split(separator: "\n").last.map { String($0).replacingOccurrences(of: "ssh: ", with: "") }
    return Unreachable(.other, last ?? "cannot connect")
  }

  /// "Connection to HOST port N timed out": ssh's own timer ran out after the TCP connect
  /// (the key exchange), which ssh writes with the host and port in the middle.
  private static func timedOutAfterConnect(_ text: String) -> Bool {
    text.split(separator: "\n").contains { $0.hasPrefix("Connection to ") && $0.hasSuffix(" timed out") }
  }
}
