// Wiring the real fleet: which transport a run uses.

import Runtime

/// The transport for a real run.
func makeTransport(store: Store) throws -> any Transport {
  SSHTransport(configuration: SSHConfiguration(store: store), store: store)
}
