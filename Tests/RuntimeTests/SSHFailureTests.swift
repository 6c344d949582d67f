// How ssh's failures to connect become reasons: a golden table of the messages OpenSSH 9.2
// really writes (bytes as captured on the lab, "\r\n" included, under LogLevel=ERROR), each
// with the result cfi-sh makes of it. `CFI_RECORD=1 swift test --filter SSHFailure` records.

import Foundation
import TestSupport
import Testing

@testable import Runtime

@Suite("SSHFailure")
struct SSHFailureTests {
  /// What broke, and what ssh said about it.
  static let cases: [(String, String)] = [
    ("sshd stopped (lab stop-sshd)", "ssh: connect to host 10.234.242.2 port 22: Connection refused\r\n"),
    ("link down, ARP unanswered (lab unplug)", "ssh: connect to host 10.234.242.3 port 22: No route to host\r\n"),
    ("no route on the server", "ssh: connect to host 10.9.0.1 port 22: Network is unreachable\r\n"),
    ("packets dropped (lab blackhole)", "ssh: connect to host 10.234.242.4 port 22: Connection timed out\r\n"),
    ("a listener that never speaks (lab silent)", "Connection timed out during banner exchange\r\n"),
    ("the banner, then a stalled key exchange (silent under LogLevel=ERROR)", ""),
    ("the same at LogLevel=INFO (a user's ssh_config)", "Connection to 127.0.0.1 port 2301 timed out\r\n"),
    ("keep-alives unanswered before the session", "Timeout, server 10.234.242.4 not responding.\r\n"),
    ("the server's key not authorized", "root@10.234.242.2: Permission denied (publickey).\r\n"),
    ("a name that does not resolve", "ssh: Could not resolve hostname nonexistent.invalid: Name or service not known\r\n"),
    ("sshd closes at once (MaxStartups)", "kex_exchange_identification: Connection closed by remote host\r\nConnection closed by 10.234.242.2 port 22\r\n"),
    (
      "a reinstalled host",
      "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n"
        + "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\r\nHost key verification failed.\r\n"
    ),
  ]

  @Test func sshMessagesBecomeReasons() throws {
    let name: HostName = "pc01"
    var text = ""
    for (label, stderr) in Self.cases {
      let result = SSHFailure.classify(name, stderr: stderr, connectTimeout: .seconds(3), liveness: .seconds(15))
      let outcome: String
      switch result.termination {
      case .unreachable(let unreachable): outcome = "unreachable \(unreachable.reason.rawValue): \(unreachable.message)"
      case .notRun(let message): outcome = "not run: \(message)"
      default: outcome = "\(result.termination)"
      }
      let shown = stderr.replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\n", with: "\\n")
      text += "# \(label)\nstderr: \(shown)\n=> \(outcome)\n\n"
    }
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/SSHFailures.golden").path
    if let problem = GoldenFile.check(text, path: path, rerecord: "CFI_RECORD=1 swift test --filter SSHFailure") {
      Issue.record("\(problem)")
    }
  }

  /// Every reason has a case that yields it, so the table covers the codes that
  /// docs/json-events.md promises (connection lost comes from a dead master, not from a
  /// message; reboot timeout from a rebooted host that did not come back).
  @Test func everyConnectReasonIsReached() throws {
    let name: HostName = "pc01"
    let reached = Set(Self.cases.compactMap { _, stderr -> UnreachableReason? in
      guard case .unreachable(let unreachable) = SSHFailure.classify(
        name, stderr: stderr, connectTimeout: .seconds(3), liveness: .seconds(15)).termination
      else { return nil }
      return unreachable.reason
    })
    #expect(reached == Set(UnreachableReason.allCases).subtracting([.connectionLost, .rebootTimeout]))
  }

  /// The line an ssh that opened a master says when it could not make the control socket
  /// (as OpenSSH 9.2 says it, over "\r\n" endings), and nothing for what else it may say.
  @Test func anSSHThatCouldNotMakeItsControlSocketIsToldApart() {
    let said = "ControlSocket /run/cfi/ssh-1-abcdef/pc01 already exists, disabling multiplexing\r\n"
    #expect(SSHFailure.noControlSocket(said) == "ControlSocket /run/cfi/ssh-1-abcdef/pc01 already exists, disabling multiplexing")
    #expect(SSHFailure.noControlSocket("Warning: Permanently added 'pc01' (ED25519) to the list of known hosts.\r\n" + said) != nil)
    #expect(SSHFailure.noControlSocket("") == nil)
    #expect(SSHFailure.noControlSocket("Warning: Permanently added 'pc01' (ED25519) to the list of known hosts.\r\n") == nil)
  }
}
