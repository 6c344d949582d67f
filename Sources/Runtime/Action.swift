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
  /// `apt-get full-upgrade`: upgrades that need new or removed packages too (new kernels).
  case fullUpgrade
  /// Bring a systemd unit to a state with systemctl.
  case service(unit: String, state: ServiceState)
  /// Copy a file or directory of the host (an absolute path) into `STORE/.fetched/HOST/`.
  case fetch(path: String)
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
    case .upgrade, .fullUpgrade: "upgrade"
    case .pkgsync: "pkgsync"
    case .service: "service"
    case .fetch: "fetch"
    case .reboot: "reboot"
    }
  }
}

/// What `service` makes of a unit. `started`/`stopped` and `enabled`/`disabled` act only when
/// the unit is not so already; `restarted` and `reloaded` always act. Enabling does not start.
public enum ServiceState: String, Hashable, Sendable, CaseIterable {
  case started, stopped, restarted, reloaded, enabled, disabled
}
