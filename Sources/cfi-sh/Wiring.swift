// Wiring the real fleet: the FleetRun a command uses (OpenSSH and rsync, the server's key and
// known_hosts, the inventory sources the command line names), and how its errors end the command.

import ArgumentParser
import CFIScript
import Runtime

extension CFISh {
  /// The fleet of this command line's store, reached over OpenSSH.
  func makeFleetRun(
    audit: FleetRun.AuditPolicy, state: StateDatabase? = nil, notice: @escaping @Sendable (String) -> Void
  ) -> FleetRun {
    let store = Store(root: storeRoot)
    let configuration = SSHConfiguration(store: store, identityFile: identityFile, configFile: sshConfigFile)
    let executor = ActionExecutor(transport: SSHTransport(configuration: configuration), store: store)
    let sources = InventorySources(
      store: store, clientList: clientList, dshDirectory: dshGroupDirectory, discovery: !noDiscovery,
      configurationFile: CFISh.configurationFile)
    // What stops recording (the state database locked or broken) is said whatever the verbosity.
    return FleetRun(
      store: store, sources: sources, executor: executor, audit: audit, history: !noHistory, state: state, notice: notice,
      warning: { Stream.standardError.write("cfi-sh: \($0)\n") })
  }

  /// The audit log this command line asks for (`--audit-log none` turns it off).
  func auditPolicy(required: Bool) -> FleetRun.AuditPolicy {
    let path = auditLogPath
    if path == "none" { return .none }
    return required ? .required(path: path) : .bestEffort(path: path)
  }
}

/// An error that ends the command with a message and a status (no usage text).
struct CommandFailure: Error {
  var message: String
  var status: Int32

  init(message: String, status: Int32) {
    self.message = message
    self.status = status
  }

  /// A client list that cannot be read is a usage error; a wrong line in it, a runbook error.
  init(_ error: InventorySourceError) {
    switch error {
    case .unreadable: self.init(message: error.description, status: ExitStatus.usage)
    case .invalid: self.init(message: error.description, status: ExitStatus.runbookError)
    }
  }

  /// A run that could not start; `whenLocked` says what to do about a lock another run holds.
  init(_ error: FleetRunError, whenLocked advice: String) {
    switch error {
    case .locked(let store, let holder):
      self.init(message: "another run holds the lock of \(store) (\(holder?.description ?? "pid ?")); \(advice)", status: ExitStatus.locked)
    case .lockUnavailable(let message):
      self.init(message: message, status: ExitStatus.usage)
    case .auditLogUnavailable(let path, let reason):
      self.init(message: "cannot open the audit log '\(path)': \(reason)", status: ExitStatus.usage)
    }
  }
}

extension CommandFailure {
  /// A usage error found after parsing (a bad host pattern): the message, no usage text.
  static func usage(_ message: String) -> ExitCode { CommandFailure(message: message, status: ExitStatus.usage).end() }

  /// Ends a tool (`hosts`, `nodeset`, …) that is not run by `CFISh`: says the message on
  /// stderr and gives the exit code to throw.
  func end() -> ExitCode {
    Stream.standardError.write("cfi-sh: \(message)\n")
    return ExitCode(status)
  }
}
