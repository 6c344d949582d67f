// Wiring the real fleet: which transport a run uses.

import Runtime

/// The transport for a real run: OpenSSH and rsync, with the server's key and known_hosts.
func makeTransport(store: Store, identity: String?, sshConfig: String?) -> any Transport {
  SSHTransport(configuration: SSHConfiguration(store: store, identityFile: identity, configFile: sshConfig), store: store)
}
