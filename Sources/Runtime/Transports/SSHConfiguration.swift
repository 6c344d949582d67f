// How the server reaches its clients with OpenSSH: keys, pinned host keys, options.

import Foundation

/// The OpenSSH settings of a run.
public struct SSHConfiguration: Sendable {
  /// The server's private key (`cfi-sh server init` creates it); nil: ssh's defaults.
  public var identityFile: String?
  /// The server's own known_hosts: the first contact pins a host's key here.
  public var knownHostsFile: String
  /// An ssh_config passed to ssh and rsync (`--ssh-config`); nil: the user's usual config.
  public var configFile: String?
  /// Seconds between keep-alive probes, and how many may go unanswered before ssh gives up:
  /// a dead host mid-command is noticed within interval × count.
  public var serverAliveInterval = 5
  public var serverAliveCountMax = 3
  /// How long a dead connection goes unnoticed at most: the liveness bound.
  public var liveness: Duration { .seconds(serverAliveInterval * serverAliveCountMax) }
  /// Where control sockets live during a run (a private directory, removed at the end).
  public var controlDirectory: String?

  /// The default server key.
  public static let defaultIdentityFile = "/etc/cfi/id_ed25519"

  /// A configuration for a store: known_hosts at `STORE/.ssh/known_hosts` (a name no group can
  /// have), the server key if it exists.
  public init(store: Store, identityFile: String? = nil, configFile: String? = nil) {
    let defaultKey = FileManager.default.fileExists(atPath: SSHConfiguration.defaultIdentityFile)
      ? SSHConfiguration.defaultIdentityFile : nil
    self.identityFile = identityFile ?? defaultKey
    self.knownHostsFile = store.root + "/.ssh/known_hosts"
    self.configFile = configFile
  }
}
