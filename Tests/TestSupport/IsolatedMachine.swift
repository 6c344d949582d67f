// The one place that decides what a cfi-sh started by a test sees of this machine: nothing.
// Every machine-wide path cfi-sh reads or writes by default (dsh groups, the client list, the
// store and so its known clients and pending hosts, the server's configuration, the audit log, the shell's history, avahi's service
// directory, the server key, ssh's configuration and control sockets, the system D-Bus that discovery browses)
// points into a temporary directory of the test's own, so a test sees only what its lab
// creates and never reaches a host outside it. Options a test gives and variables it sets win.

import Foundation

/// A temporary stand-in for this machine's files, as cfi-sh's environment variables name them.
public final class IsolatedMachine: Sendable {
  /// The directory holding every path below (removed with the value).
  public let directory: TemporaryDirectory
  /// The variables that point cfi-sh at `directory`.
  public let variables: [String: String]

  public init() throws {
    directory = try TemporaryDirectory()
    let root = directory.path
    for name in ["dsh-group", "store", "avahi-services", "run"] {
      try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
    }
    try directory.write("clients", "")
    try directory.write("ssh_config", "")
    variables = [
      "CFI_DSH_GROUPS": root + "/dsh-group",  // not /etc/dsh/group
      "CFI_CLIENTS": root + "/clients",  // not /etc/cfi/clients
      "CFI_STORE": root + "/store",  // not /var/lib/cfi (and its known clients and known_hosts)
      "CFI_AUDIT_LOG": root + "/audit.log",  // not /var/log/cfi/audit.log
      "CFI_HISTORY": root + "/history",  // not ~/.cfi_history
      "CFI_AVAHI_SERVICES": root + "/avahi-services",  // not /etc/avahi/services
      "CFI_IDENTITY": root + "/id_ed25519",  // not /etc/cfi/id_ed25519
      "CFI_SSH_CONFIG": root + "/ssh_config",  // not ~/.ssh/config and /etc/ssh/ssh_config
      "CFI_SERVER_CONF": root + "/server.conf",  // not /etc/cfi/server.conf (absent: the defaults)
      "CFI_RUNTIME_DIR": root + "/run",  // not /run/cfi or $XDG_RUNTIME_DIR/cfi (ssh control sockets)
      // No master outlives its run (it would outlive the test's directory), unless a test asks.
      "CFI_PERSIST": "0",
      // Discovery browses no avahi-daemon but the lab's (a test that wants it sets its bus).
      "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + root + "/no-system-bus",
    ]
  }

  /// The environment for a program a test starts: `base` (this process's), the isolated paths
  /// over it, then `overrides` (what the test sets itself).
  public func environment(
    _ overrides: [String: String], base: [String: String] = ProcessInfo.processInfo.environment
  ) -> [String: String] {
    base.merging(variables) { $1 }.merging(overrides) { $1 }
  }

  /// The variables that name machine-wide paths, for tests that check none leaks.
  public static let variableNames: Set<String> = [
    "CFI_DSH_GROUPS", "CFI_CLIENTS", "CFI_STORE", "CFI_AUDIT_LOG", "CFI_HISTORY", "CFI_AVAHI_SERVICES",
    "CFI_IDENTITY", "CFI_SSH_CONFIG", "CFI_SERVER_CONF", "CFI_RUNTIME_DIR", "DBUS_SYSTEM_BUS_ADDRESS",
  ]
}
