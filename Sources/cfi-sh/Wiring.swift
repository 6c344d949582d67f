// Wiring the real fleet: how a run performs its actions.

import Runtime

/// The executor for a real run: the operations over OpenSSH and rsync, with the server's key
/// and known_hosts.
func makeExecutor(store: Store, identity: String?, sshConfig: String?) -> any StepExecutor {
  let configuration = SSHConfiguration(store: store, identityFile: identity, configFile: sshConfig)
  return ActionExecutor(transport: SSHTransport(configuration: configuration), store: store)
}
