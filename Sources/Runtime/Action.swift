// Action: the typed operations a runbook asks of a host. The Runtime knows how to perform
// them (a Transport does); the language only builds them. How an action is written in
// CFIScript (step labels) is the syntax layer's business, not this type's.

/// One operation on one host, with typed parameters.
public enum Action: Hashable, Sendable {
  /// Push `STORE/<group>/<path>` to the same path on the host, or to `destination`.
  case copy(path: String, destination: String?)
  /// Push the whole `STORE/<group>/` tree to the host's `/`.
  case sync
  /// Run a shell command on the host.
  case run(command: String)
  /// Upload a script from the store, run it with arguments, remove it.
  case script(path: String, arguments: [String])
  /// Set a user's password from a crypt hash.
  case password(user: String, hash: Secret)
  /// Install packages with apt.
  case install(packages: [String])
  /// Remove packages with apt.
  case remove(packages: [String])
  /// Upgrade all packages with apt.
  case upgrade
  /// Push the pkgsync lists and run pkgsync.
  case pkgsync
  /// Reboot the host and wait until it is back (a new boot id, sshd answering); with
  /// `onlyIfNeeded`, only where `/run/reboot-required` exists.
  case reboot(onlyIfNeeded: Bool)

  /// The action's keyword, as in the language (`copy`, `run`, …).
  public var name: String {
    switch self {
    case .copy: "copy"
    case .sync: "sync"
    case .run: "run"
    case .script: "script"
    case .password: "password"
    case .install: "install"
    case .remove: "remove"
    case .upgrade: "upgrade"
    case .pkgsync: "pkgsync"
    case .reboot: "reboot"
    }
  }
}
